"""Vacuity: a property whose premise is never true fails loudly, and every guarded case of the
landed proofs is shown to exist (satisfiable, and most reached from the initial state)."""
from __future__ import annotations

from pathlib import Path

from blinpump.verify.engine import PROVED, UNKNOWN, prove
from blinpump.verify.properties import L, Property, by_id, Check, running
from blinpump.verify.vacuity import antecedents

REPO = Path(__file__).resolve().parent.parent
KERNEL = REPO / "firmware" / "kernel.py"


def _prop(text, fn):
    return Property("planted-vacuous", "a property with a premise that no state meets", ["L2-dose-28"],
                    step=[Check(text, fn)])


def test_L2_dose_28_a_premise_never_true_makes_the_property_fail_loudly():
    # mode 3 does not exist: the implication is proved by any kernel, which is exactly the danger
    p = _prop("mode 3 -> the motor is stopped",
              lambda pre, post, st: L.Implies(post.mode == 3, post.motor_ul_per_h == 0))
    run = prove(KERNEL, [p], depth=0, max_k=1, vacuity=True)
    (res,) = run.properties
    assert res.status == UNKNOWN and res.detail.startswith("VACUOUS")
    assert "mode 3 -> the motor is stopped" in res.detail
    (v,) = run.vacuity
    assert [g.check for g in v.vacuous] == ["mode 3 -> the motor is stopped"]


def test_L2_dose_28_the_same_check_with_a_possible_premise_is_proved():
    p = _prop("running -> the flow is the bag's",
              lambda pre, post, st: L.Implies(running(post), post.motor_ul_per_h == post.bag_ul_per_h))
    run = prove(KERNEL, [p], depth=0, max_k=1, vacuity=True, witness_depth=3)
    (res,) = run.properties
    assert res.status == PROVED, res.detail
    (v,) = run.vacuity
    assert v.premise_satisfiable and len(v.guards) == 1 and v.guards[0].witness_depth is not None


def test_antecedents_are_logged_in_the_same_order_symbolic_and_concrete():
    import z3
    from blinpump.verify.properties import S, Step
    (p,) = by_id(["fault-latch"])
    c = p.step[0]
    names = ["fault", "mode", "motor_ul_per_h"]
    sym = antecedents(c.fn, S({n: z3.Int("pre." + n) for n in names}), S({n: z3.Int("post." + n) for n in names}),
                      Step(None, {}, z3.Int("ret")))
    con = antecedents(c.fn, S({"fault": 1, "mode": 1, "motor_ul_per_h": 0}),
                      S({"fault": 1, "mode": 1, "motor_ul_per_h": 0}), Step("start", {}, 16))
    assert len(sym) == len(con) == 1 and con == [True]
