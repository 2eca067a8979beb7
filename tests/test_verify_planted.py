"""Planted bugs (source edits of a copy of the landed kernel) turn the proof red, and the
counterexample trace replays on CPython (and on MicroPython) showing the violation."""
from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from planting import plant

from blinpump.verify import cli
from blinpump.verify.engine import FALSIFIED, PROVED, UNKNOWN, prove, rlimit_count
from blinpump.verify.properties import by_id
from blinpump.verify.replay import load_trace, replay_cpython, replay_micropython

REPO = Path(__file__).resolve().parent.parent
KERNEL = REPO / "firmware" / "kernel.py"


def falsify(path: Path, pid: str, tmp_path: Path, depth: int = 8, **limits):
    """No wall-clock budget (bmc_budget_s=None): the BMC search is bounded by Z3 resource units
    only (bmc_rlimit, engine.BMC_RLIMIT by default), so a loaded machine gets the same verdict."""
    run = prove(path, by_id([pid]), depth=depth, max_k=1, trace_dir=tmp_path / "traces", bmc_budget_s=None, **limits)
    (res,) = run.properties
    return run, res


START_CAP_CHECK = """    if s.bag_ng_per_day > s.cap_ng_per_day:
        return E_DOSE_CAP                                   # L2.2-step, L2.4-restart-9
"""


@pytest.fixture(scope="module")
def start_cap_bug(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("startcap")
    path = plant(tmp, START_CAP_CHECK, "")
    run, res = falsify(path, "rate-cap", tmp)
    return path, run, res


def test_L2_dose_28_planted_missing_start_cap_check_is_falsified(start_cap_bug):
    path, run, res = start_cap_bug
    assert not run.all_proved
    assert res.status == FALSIFIED and res.engine == "bmc"
    doc = load_trace(res.trace)
    assert doc["kernel"] == str(path) and doc["property"] == "rate-cap" and doc["kind"] == "bmc"
    assert len(doc["kernel_sha256"]) == 64
    assert doc["initial"]["mode"] == 0 and doc["steps"][0]["entry"] == "setup"
    assert doc["steps"][-1]["entry"] == "start"
    rep = replay_cpython(doc)
    assert rep["violated"] and rep["step"] == len(doc["steps"])
    assert "post: running -> bag_ng_per_day <= cap_ng_per_day" in rep["failing_checks"]
    # the same trace is harmless on the landed kernel
    assert not replay_cpython(doc, kernel_path=KERNEL)["violated"]


def test_L2_4_restart_9_planted_bug_trace_replays_through_the_cli(start_cap_bug):
    _, _, res = start_cap_bug
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(io.StringIO()):
        rc = cli.replay_main([res.trace])
    assert rc == 1
    assert "VIOLATED on cpython at step" in out.getvalue()
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        assert cli.replay_main([res.trace, "--kernel", str(KERNEL)]) == 0


def test_L2_dose_28_planted_bug_replays_on_micropython(start_cap_bug):
    from blinpump.hil import micropython
    if not micropython.runtime_available():
        pytest.fail("MicroPython runtime missing: install Node.js and run `npm ci`")
    _, _, res = start_cap_bug
    rep = replay_micropython(load_trace(res.trace))
    assert rep["runtime"] == "micropython"
    assert rep["violated"] and rep["step"] == len(load_trace(res.trace)["steps"])


def test_L2_reinit_4h_planted_bug_is_falsified(tmp_path):
    path = plant(tmp_path, "if off_min >= REINIT_MIN or", "if off_min >= 241 or")
    _, res = falsify(path, "reinit", tmp_path)
    assert res.status == FALSIFIED, res.detail
    doc = load_trace(res.trace)
    rep = replay_cpython(doc)
    assert rep["violated"]
    assert any("interruption >= 240 min" in c for c in rep["failing_checks"])


def test_L2_reinit_4h_planted_bug_with_a_spent_resource_limit_is_unknown_not_a_pass(tmp_path):
    """A BMC search stopped by its resource limit is UNKNOWN (never FALSIFIED, never a pass), and
    the detail names the limit; the same search with the default limit finds the violation."""
    path = plant(tmp_path, "if off_min >= REINIT_MIN or", "if off_min >= 241 or")
    run, res = falsify(path, "reinit", tmp_path, bmc_rlimit=2_000_000)
    assert res.status == UNKNOWN and not run.all_proved
    assert "BMC stopped: resource limit of 2000000 Z3 units (bmc_rlimit)" in res.detail
    run, res = falsify(path, "reinit", tmp_path, rlimit=1000)
    assert res.status == UNKNOWN and not run.all_proved
    assert "(rlimit)" in res.detail


def test_L2_4_neuro_3_planted_missing_withhold_is_falsified(tmp_path):
    path = plant(tmp_path, """    if s.now_min - g3_min < NEURO3_MIN_WITHHOLD_MIN:
        return E_WITHHOLD                                   # L2.4-neuro-3: at least 3 days
""", "")
    _, res = falsify(path, "lockout", tmp_path, depth=4)
    assert res.status == FALSIFIED, res.detail
    doc = load_trace(res.trace)
    assert [s["entry"] for s in doc["steps"]][-1] == "resolved"
    rep = replay_cpython(doc)
    assert rep["violated"] and any(c.startswith("grade 3 neurologic hold released -> 3 days or more")
                                   for c in rep["failing_checks"])


def test_L2_5_min_weight_planted_bug_is_falsified(tmp_path):
    path = plant(tmp_path, "if preservative == 1 and s.weight_g < WEIGHT_PRESERVATIVE_MIN_G:",
                 "if preservative == 1 and s.weight_g < 5000:")
    _, res = falsify(path, "bag-limits", tmp_path, depth=3)
    assert res.status == FALSIFIED, res.detail
    rep = replay_cpython(load_trace(res.trace))
    assert rep["violated"] and "accepted preservative bag -> weight_g >= 5400" in rep["failing_checks"]


def test_L2_5_min_weight_a_proof_spends_the_same_z3_units_whatever_ran_before_it(tmp_path):
    """Z3's search depends on the terms made before it in its context: each prove starts a new
    one (engine.fresh_context), so a planted bug costs the same units, and gets the same
    verdict, alone or after other proofs in the same process (as in the test suite)."""
    path = plant(tmp_path, "if preservative == 1 and s.weight_g < WEIGHT_PRESERVATIVE_MIN_G:",
                 "if preservative == 1 and s.weight_g < 5000:")
    _, first = falsify(path, "bag-limits", tmp_path, depth=3)
    alone = rlimit_count()                          # the units of the context that prove began
    prove(KERNEL, by_id(["reinit", "lockout"]), depth=2, max_k=1)
    _, again = falsify(path, "bag-limits", tmp_path, depth=3)
    assert rlimit_count() == alone > 1_000_000
    assert first.status == again.status == FALSIFIED
    assert first.trace_data["steps"] == again.trace_data["steps"]


def test_EXT_overdose_12h_planted_bug_gives_an_induction_trace_that_replays(tmp_path):
    """Without BMC (depth 0) the proof is not PROVED (UNKNOWN, never a pass); the trace
    from the failed induction step starts in an arbitrary invariant state and replays."""
    path = plant(tmp_path, "s.now_min - s.overdose_min < OVERDOSE_WAIT_MIN", "s.now_min - s.overdose_min < 700")
    run, res = falsify(path, "lockout", tmp_path, depth=0)
    assert res.status == UNKNOWN and not run.all_proved
    doc = json.loads(Path(res.trace).read_text())
    assert doc["kind"] == "induction-step" and len(doc["steps"]) == 1 and doc["steps"][0]["entry"] == "start"
    rep = replay_cpython(doc)
    assert rep["violated"] and "motor starts -> no overdose in the last 720 min" in rep["failing_checks"]


def test_EXT_no_flush_landed_kernel_flush_changes_nothing(tmp_path):
    path = plant(tmp_path, "    return E_NO_FLUSH\n", "    s.course_ng = s.course_ng + 1\n    return E_NO_FLUSH\n")
    _, res = falsify(path, "daily-cap", tmp_path, depth=2)
    assert res.status == FALSIFIED, res.detail
    assert prove(KERNEL, by_id(["daily-cap"]), depth=0).properties[0].status == PROVED


def test_L2_4_neuro_3_a_milder_reaction_replacing_a_grade_3_rule_is_falsified(tmp_path):
    """A kind entered again while its hold is open must not lower its grade (0.2.0 found this with
    one hold for every kind): planted here as an ICANS grade 2 entry overwriting an open grade 3."""
    path = plant(tmp_path, "        s.rx_icans = max(s.rx_icans, grade)                 # L2.4-icans-2 (2), L2.4-neuro-3 (3)\n",
                 "        s.rx_icans = grade\n")
    _, res = falsify(path, "lockout", tmp_path, depth=4)
    assert res.status == FALSIFIED, res.detail
    doc = load_trace(res.trace)
    assert [s["entry"] for s in doc["steps"]][-1] == "reaction"
    rep = replay_cpython(doc)
    assert rep["violated"] and any("never weakened by a later entry" in c for c in rep["failing_checks"])


def test_L2_4_neuro_3_one_onset_for_every_open_reaction_is_falsified(tmp_path):
    """Each reaction keeps its own onset (ICANS can follow CRS, 5.2): a kernel whose ICANS hold
    takes its onset from an earlier entry (here: it never records its own) is caught."""
    path = plant(tmp_path, """        if s.rx_icans == 0:
            s.rx_icans_onset_min = s.now_min
""", "")
    _, res = falsify(path, "lockout", tmp_path, depth=4)
    assert res.status == FALSIFIED, res.detail
    rep = replay_cpython(load_trace(res.trace))
    assert rep["violated"]


def test_EXT_rates_a_bag_run_at_volume_over_duration_is_falsified(tmp_path):
    """0.2.0 ran a bag at volume / duration: with the overfill, a 12.5% overdose (EXT-rates)."""
    path = plant(tmp_path, "    s.bag_ul_per_h = rate_ul_per_h                          # EXT-rates: the labelled rate\n",
                 "    s.bag_ul_per_h = volume_ul // 24\n")       # what 0.2.0 did with a 24 h bag
    _, res = falsify(path, "constant-rate", tmp_path, depth=2)     # set-up, then the bag
    assert res.status == FALSIFIED, res.detail
    rep = replay_cpython(load_trace(res.trace))
    assert rep["violated"] and any("the labelled rate" in c for c in rep["failing_checks"])


def test_EXT_pump_power_up_with_a_backwards_clock_must_stop_the_motor(tmp_path):
    """The bug the verifier found in the landed kernel (fixed there): power_up(-2) returned
    E_ARG and left the kernel running, so the controller drove the motor again after a power loss."""
    path = plant(tmp_path, """    was_running = s.mode == MODE_RUNNING
    _stop_motor(s, STOP_POWER)
    if was_running:
        s.alarm = s.alarm | AL_POWER
""", """    if outage_min < -1:
        return E_ARG
    was_running = s.mode == MODE_RUNNING
    _stop_motor(s, STOP_POWER)
    if was_running:
        s.alarm = s.alarm | AL_POWER
""")
    _, res = falsify(path, "stop-commands", tmp_path, depth=6)
    assert res.status == FALSIFIED, res.detail
    doc = load_trace(res.trace)
    assert doc["steps"][-1]["entry"] == "power_up" and doc["steps"][-1]["args"]["outage_min"] < -1
    rep = replay_cpython(doc)
    assert rep["violated"] and "power-up -> motor stopped" in rep["failing_checks"]
