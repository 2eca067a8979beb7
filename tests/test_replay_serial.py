"""Counterexample traces replayed over serial (`blinpump replay TRACE --runtime serial`): a planted
bug's trace is VIOLATED on a simulated board running that mutant, and not on the landed kernel's;
every kernel entry point has its bench action, and the board agrees with the kernel's CPython replay
step by step; what a board cannot be made to do is refused in one line (exit 2)."""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from blinpump.hil import micropython
from blinpump.hil.sim import SimBoard
from blinpump.verify import cli
from blinpump.verify.engine import FALSIFIED, prove
from blinpump.verify.properties import by_id
from blinpump.verify.randomtest import random_step
from blinpump.verify.replay import ReplayError, load_module, load_trace, replay, replay_cpython
from blinpump.verify.subset import load_kernel
from blinpump.verify.translation import _therapy

REPO = Path(__file__).resolve().parent.parent
KERNEL = REPO / "firmware" / "kernel.py"
# the planted bug of tests/test_verify_planted.py: START no longer checks the bag against the cap
START_CAP_CHECK = """    if s.bag_ng_per_day > s.cap_ng_per_day:
        return E_DOSE_CAP                                   # L2.2-step, L2.4-restart-9
"""


def S(entry: str, **args: int) -> dict[str, Any]:
    return {"entry": entry, "args": args}


# A 70 kg consolidation patient on a 48 h bag at 28 mcg/day; an ICANS grade 2 resolved opens the
# 7 days at 9 mcg/day (L2.4-restart-9), and START of the loaded 28 mcg/day bag must be refused.
# Ticks, a stop and a power cut come first, so those bench actions are on the violating path too.
RESTART_ABOVE_CAP = [
    S("setup", patient_id=1, indication=3, weight_g=70000, bsa_cm2=0, course_cycles=3),
    S("bag", patient_id=1, bag_id=1, drug_ng=58333, volume_ul=250000, rate_ul_per_h=5000, duration_h=48,
      preservative=0, room_min=0, fridge_min=0),
    S("ack", what=2), S("ack", what=1), S("start"),
    S("tick"), S("tick"), S("tick"),
    S("stop", reason=1), S("power_up", outage_min=30),
    S("reaction", kind=3, grade=2, scale=1), S("resolved", kind=3),
    S("start"),
]

# every entry point of the kernel, in a therapy on the landed kernel
TOUR = [
    S("setup", patient_id=7, indication=2, weight_g=70000, bsa_cm2=0, course_cycles=0),
    S("flush"),
    S("bag", patient_id=7, bag_id=1, drug_ng=9375, volume_ul=250000, rate_ul_per_h=10000, duration_h=24,
      preservative=0, room_min=0, fridge_min=0),
    S("update_patient", weight_g=72000, bsa_cm2=0),
    S("ack", what=1), S("ack", what=2), S("start"),
    S("tick"), S("tick"), S("tick"),
    S("stop", reason=1), S("start"),
    S("overdose"), S("ack_alarm", bits=255),
    S("fault"), S("clear_fault"),
    S("clock_fault"), S("clear_fault"), S("remove_bag"),
    S("power_up", outage_min=-1),
    S("reaction", kind=5, grade=4, scale=1), S("decide", discontinue=0), S("resolved", kind=5),
    S("cycle_decision", new_cycle=1),
    S("tick"), S("tick"),
    S("power_up", outage_min=10),
    S("end_therapy"),
    S("setup", patient_id=8, indication=1, weight_g=30000, bsa_cm2=10000, course_cycles=0),
]


def write_trace(folder: Path, steps: list[dict[str, Any]], kernel: Path = KERNEL, prop: str = "rate-cap",
                name: str = "trace.json", **top: Any) -> Path:
    doc = {"kernel": str(kernel), "property": prop, "kind": "bmc", "initial": {}, "steps": steps}
    doc.update(top)
    path = folder / name
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture(scope="module")
def mutant(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("startcap")
    src = KERNEL.read_text()
    assert src.count(START_CAP_CHECK) == 1
    path = folder / "kernel.py"
    path.write_text(src.replace(START_CAP_CHECK, ""))
    return path


@pytest.fixture(scope="module")
def mutant_trace(mutant: Path) -> Path:
    return write_trace(mutant.parent, RESTART_ABOVE_CAP, mutant)


def run_replay(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = cli.replay_main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_L2_5_min_weight_a_falsified_propertys_trace_from_prove_replays_violated_over_serial(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The planted bug of tests/test_verify_planted.py (preservative bags allowed from 5 kg):
    `prove` finds the trace, and it is VIOLATED on CPython, then over serial on a board running
    the mutant; on the landed kernel's board the bag is refused (E_MIN_WEIGHT)."""
    src = KERNEL.read_text()
    old = "if preservative == 1 and s.weight_g < WEIGHT_PRESERVATIVE_MIN_G:"
    assert src.count(old) == 1
    mutant = tmp_path / "kernel.py"
    mutant.write_text(src.replace(old, "if preservative == 1 and s.weight_g < 5000:"))
    run = prove(mutant, by_id(["bag-limits"]), depth=3, max_k=1, trace_dir=tmp_path / "traces", bmc_budget_s=None)
    (res,) = run.properties
    assert res.status == FALSIFIED
    assert replay_cpython(load_trace(res.trace))["violated"]
    rc, out, err = run_replay(capsys, res.trace, "--runtime", "serial")
    assert rc == 1, out + err
    assert "accepted preservative bag -> weight_g >= 5400" in out
    n = len(load_trace(res.trace)["steps"])
    assert "VIOLATED on serial at step %d:" % n in out
    rc, out, err = run_replay(capsys, res.trace, "--runtime", "serial", "--kernel", str(KERNEL))
    assert rc == 0, out + err
    assert "kernel 8 E_MIN_WEIGHT | board BAG -> 8 E_MIN_WEIGHT" in out


def test_L2_4_restart_9_mutant_trace_is_violated_over_serial_on_a_board_running_the_mutant(
        mutant_trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = load_trace(mutant_trace)
    assert replay_cpython(doc)["violated"] and replay_cpython(doc)["step"] == 13
    rc, out, err = run_replay(capsys, str(mutant_trace), "--runtime", "serial")
    assert rc == 1, out + err
    assert "(the replayed kernel)" in out and "warning" not in err + out
    assert "VIOLATED on serial at step 13:" in out
    assert "post: running -> bag_ng_per_day <= cap_ng_per_day" in out
    # step by step: the kernel's return value and the board's answer, and the mode on both sides
    assert "step 13: start() -> kernel 0 OK | board START -> 0 OK | mode running / running" in out
    assert "steps 6-8: tick() x3 -> kernel 0 OK | board ADVANCE 3 -> 0 OK" in out
    assert "step 10: power_up(outage_min=30) -> kernel 0 OK | board FAULT power_cut 30" in out


def test_L2_4_restart_9_the_same_trace_on_the_landed_kernels_board_is_not_violated(
        mutant_trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run_replay(capsys, str(mutant_trace), "--runtime", "serial", "--kernel", str(KERNEL))
    assert rc == 0, out + err
    assert "step 13: start() -> kernel 9 E_DOSE_CAP | board START -> 9 E_DOSE_CAP | mode stopped / stopped" in out
    assert out.rstrip().endswith("not violated on serial")


def test_L2_4_restart_9_a_board_that_does_not_run_the_mutant_diverges_and_does_not_reproduce_it(
        mutant_trace: Path) -> None:
    """The mutant's trace against a landed board on --port: STATUS's start_status already says
    E_DOSE_CAP before the START, where the mutant would start: the comparison stops there."""
    doc = load_trace(mutant_trace)
    with SimBoard("cpython") as board:
        rep = replay(doc, "serial", None, port=board.path)
    assert not rep["violated"] and rep["cpython"] == {"violated": True, "step": 13}
    assert rep["diverged_at"] == 12 and not rep["board_runs_kernel"]
    assert rep["steps"][11]["differs"] == {"start_status": [0, 9]}
    assert "warning: the board's kernel" in rep["note"]


def test_L2_dose_28_mutant_trace_is_violated_on_a_micropython_board_running_the_mutant(
        mutant_trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not micropython.runtime_available():
        pytest.fail("MicroPython runtime missing: install Node.js and run `npm ci`")
    rc, out, err = run_replay(capsys, str(mutant_trace), "--runtime", "serial", "--sim-runtime", "micropython")
    assert rc == 1, out + err
    assert "the simulated board (micropython)" in out and "(the replayed kernel)" in out
    assert "VIOLATED on serial at step 13:" in out


def test_EXT_pump_every_entry_point_has_its_bench_action_and_the_board_agrees_with_the_kernel(
        tmp_path: Path) -> None:
    assert {s["entry"] for s in TOUR} == set(load_kernel(KERNEL).entries)
    rep = replay(load_trace(write_trace(tmp_path, TOUR, prop="kernel-invariant")), "serial")
    assert rep["diverged_at"] is None and not rep["violated"] and rep["board_runs_kernel"]
    rows = {r["entry"]: r for r in rep["steps"]}
    assert rows["fault"]["board_status"] == 23 and rows["fault"]["answer_compared"]    # E_FAULT
    assert rows["flush"]["board_status"] == rows["flush"]["kernel_return"] == 19       # E_NO_FLUSH
    assert not rows["clock_fault"]["answer_compared"] and not rows["power_up"]["answer_compared"]
    assert all(r["agrees"] for r in rep["steps"])
    observed = [r for r in rep["steps"] if r["observed"]]
    assert len(observed) == len(TOUR) - 3       # three runs of ticks, each read once at its end
    assert rep["states"][-1]["patient_id"] == 8


def _random_trace(seed: int, draws: int = 30) -> list[dict[str, Any]]:
    """A valid start of therapy, then random steps of the verifier's baseline (label boundary
    values, long runs of ticks); a new patient after each end of therapy (the board refuses a
    set-up of a patient whose archived record holds a lock, a hold or the 12 h after an overdose:
    its rule, not the kernel's), and outages a power cut can last."""
    rng = random.Random(seed)
    kernel = load_kernel(KERNEL)
    steps = [S(e, **a) for e, a, _ in _therapy(rng, load_module(KERNEL))]
    patient = 7
    for _ in range(draws):
        entry, args, repeat = random_step(rng, kernel, patient)
        if entry == "power_up":
            args["outage_min"] = max(args["outage_min"], -1)
        steps += [S(entry, **args)] * repeat
        if entry == "end_therapy":
            patient += 100
    return steps


@pytest.mark.parametrize("seed", range(8))
def test_L2_5_errors_random_therapies_run_the_same_on_the_board_and_the_kernel(seed: int, tmp_path: Path) -> None:
    rep = replay(load_trace(write_trace(tmp_path, _random_trace(seed), prop="fault-latch")), "serial")
    bad = [r for r in rep["steps"] if not r["agrees"]]
    assert rep["diverged_at"] is None, bad[:1]
    assert not rep["violated"]


def test_EXT_pump_a_step_no_board_can_be_given_is_refused_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = write_trace(tmp_path, [TOUR[0], S("power_up", outage_min=-2)])
    rc, out, err = run_replay(capsys, str(trace), "--runtime", "serial")
    assert rc == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "field=steps[1].entry: step 2, power_up(outage_min=-2) cannot be produced over serial" in err


def test_EXT_pump_plant_faults_need_the_simulated_board_of_this_process(tmp_path: Path) -> None:
    """On --port the replay cannot move the board's flash or clock: refused before any command."""
    trace = load_trace(write_trace(tmp_path, [TOUR[0], S("tick"), S("clock_fault")]))
    with SimBoard("cpython") as board:
        with pytest.raises(ReplayError, match=r"field=steps\[2\]\.entry: step 3, clock_fault\(\) cannot be "
                                              r"produced over serial: needs the simulated board of this process"):
            replay(trace, "serial", None, port=board.path)
        assert board.sim.board.controller.s.mode == 0        # nothing was sent: no set-up


def test_EXT_pump_an_entry_point_of_a_kernel_that_no_board_has_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kernel = tmp_path / "kernel.py"
    kernel.write_text(KERNEL.read_text() + '\n\ndef warp(s):\n    """Not a command of any board."""\n    return OK\n')
    trace = write_trace(tmp_path, [TOUR[0], S("warp")], kernel)
    rc, out, err = run_replay(capsys, str(trace), "--runtime", "serial")
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "field=steps[1].entry: step 2, warp()" in err


def test_a_trace_from_an_arbitrary_state_is_refused_over_serial(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    trace = write_trace(tmp_path, [S("start")], kind="induction-step", initial={"mode": 1})
    rc, _, err = run_replay(capsys, str(trace), "--runtime", "serial")
    assert rc == 2 and "field=kind" in err
    trace = write_trace(tmp_path, [S("start")], initial={"now_min": 5})
    rc, _, err = run_replay(capsys, str(trace), "--runtime", "serial")
    assert rc == 2 and "field=initial.now_min" in err
