"""Never a traceback: every door of the command line answers bad input with one line on stderr
that names the field (and the label clause where one applies), exit status 2 for a bad invocation
or bad input, 1 for a failed check or scenario (hil/doors.py holds the table and the runner)."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from blinpump import cli as blinpump_cli
from blinpump.firmware import kernel as K
from blinpump.hil import auth as host_auth
from blinpump.hil import cli as hil_cli
from blinpump.hil import doors, scenarios
from blinpump.hil.sim import SimBoard, SimLinkError
from blinpump.model.errors import ModelError
from blinpump.model.patient import MAX_BSA_CM2, MIN_BSA_CM2, Patient

DOOR_IDS = [d.name for d in doors.DOORS]


@pytest.fixture(scope="module")
def walked() -> dict[str, doors.Outcome]:
    """Every door, run once in parallel (a subprocess each)."""
    return {o.door.name: o for o in doors.walk()}


@pytest.mark.parametrize("door", doors.DOORS, ids=DOOR_IDS)
def test_door_answers_bad_input_in_one_line_naming_the_field(door: doors.Door,
                                                           walked: dict[str, doors.Outcome]) -> None:
    out = walked[door.name]
    shown = "blinpump %s\n--- stderr:\n%s" % (" ".join(door.argv), out.stderr[-2000:])
    assert out.returncode is not None, "hung: " + shown
    assert "Traceback" not in out.stderr, shown
    assert out.returncode == door.code, shown
    if door.code:
        assert door.field in out.stderr, shown
        assert door.clause in out.stderr, shown
        assert doors.one_error_line(out.stderr), shown
    else:
        assert out.stderr == "", shown
    assert out.problems == [], shown


def test_the_table_counts_its_bad_inputs(walked: dict[str, doors.Outcome]) -> None:
    assert len(set(DOOR_IDS)) == len(DOOR_IDS), "door names are test ids: unique"
    tried, tracebacks = doors.summary(list(walked.values()))
    assert tried == len(doors.DOORS) >= 150
    assert tracebacks == 0
    subcommands = {d.argv[0] for d in doors.DOORS if d.argv}
    assert {"plan", "label", "prove", "replay", "bench", "sim", "demo", "keys", "flash"} <= subcommands


def test_walk_doors_reports_tried_and_tracebacks() -> None:
    assert doors.walk_doors(doors.DOORS[:2]) == (2, 0)


def test_the_judge_catches_a_traceback_and_a_wrong_field(tmp_path: Path) -> None:
    door = doors.Door("x", ("plan",), 2, "weight_kg")
    bad = doors.Outcome(door, 1, "", 'Traceback (most recent call last):\n  File "x"\nValueError: boom\n')
    assert {"a Python traceback on stderr", "exit status 1, expected 2"} <= set(doors.judge(door, bad, tmp_path))
    assert doors.summary([bad]) == (1, 1)
    wrong = doors.Outcome(door, 2, "", "blinpump plan: error: field=indication clause=L1: missing\n")
    assert doors.judge(door, wrong, tmp_path) == ["stderr does not name the field 'weight_kg'"]
    assert doors.one_error_line("usage: blinpump prove [-h]\n       [--depth DEPTH]\nblinpump prove: error: x\n")
    assert not doors.one_error_line("one\ntwo\n")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "blinpump", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def test_help_and_no_arguments(tmp_path: Path) -> None:
    for flag in ("--help", "-h"):
        r = run(flag, cwd=tmp_path)
        assert (r.returncode, r.stderr) == (0, "") and r.stdout.startswith("usage: blinpump SUBCOMMAND")
    r = run(cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == "" and len(r.stderr.splitlines()) == 1 and "plan" in r.stderr


def test_model_module_stops_quietly_on_a_closed_stdout(tmp_path: Path) -> None:
    r, w = os.pipe()
    os.close(r)
    try:
        proc = subprocess.run([sys.executable, "-m", "blinpump.model", "plan", "--indication", "rr",
                               "--weight-kg", "70"], cwd=tmp_path, stdout=w, stderr=subprocess.PIPE, timeout=60)
    finally:
        os.close(w)
    assert (proc.returncode, proc.stderr) == (0, b"")


def test_a_broken_pipe_that_is_not_stdout_is_not_hidden() -> None:
    def entry(args: list[str]) -> int:
        raise BrokenPipeError("a child's pipe")
    with pytest.raises(BrokenPipeError):
        blinpump_cli.run_quietly_on_closed_stdout(entry, [])


# ---------------------------------------------------------------- L2-dose-28: the planner refuses what the pump refuses

def test_L2_dose_28_planner_bsa_range_is_the_kernels() -> None:
    assert (MIN_BSA_CM2, MAX_BSA_CM2) == (K.BSA_MIN_CM2, K.BSA_MAX_CM2)
    for bsa_m2, ok in ((0.0499, False), (0.05, True), (3.5, True), (3.5001, False)):
        s = K.State()
        kernel_ok = K.setup(s, 1, K.IND_RR, 30000, round(bsa_m2 * 10000), 0) == K.OK
        assert kernel_ok == ok, bsa_m2
        if ok:
            assert Patient("rr", 30.0, bsa_m2).bsa_cm2 == round(bsa_m2 * 10000)
        else:
            with pytest.raises(ModelError) as err:
                Patient("rr", 30.0, bsa_m2)
            assert (err.value.field, err.value.clause) == ("bsa_m2", "L2-dose-28")


# ---------------------------------------------------------------- scenarios are checked before a pump is touched

def test_every_standard_scenario_passes_the_load_time_check() -> None:
    assert len(scenarios.standard()) >= 9


def test_a_broken_scenario_names_file_step_and_field(tmp_path: Path) -> None:
    data = json.loads((scenarios.SCENARIO_DIR / "flush_refused.json").read_text())
    data["steps"][7] = {"advance": "100000000d"}
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data))
    with pytest.raises(scenarios.ScenarioError) as err:
        scenarios.load(path)
    assert str(err.value).startswith("%s: field=steps[7].advance: " % path) and "400 days" in str(err.value)


def test_expressions_are_bounded_and_never_crash() -> None:
    names = scenarios.model_names({"indication": "rr", "weight_kg": 70})
    assert scenarios.evaluate("7 * cap_low + 3 * cap_full", names) == 147000
    for bad in ("1//0", "1/0", "10**400", "2**10", "-(" * 60 + "1" + ")" * 60, "1" * 300, True, 1.5, None):
        with pytest.raises(scenarios.ScenarioError):
            scenarios.evaluate(bad, names)      # type: ignore[arg-type]
    assert scenarios.minutes("400d") == scenarios.MAX_DURATION_MIN
    for bad_duration in ("401d", "-5m", -1, "9" * 5000 + "d", 1.5, True):
        with pytest.raises(scenarios.ScenarioError):
            scenarios.minutes(bad_duration)     # type: ignore[arg-type]


# ---------------------------------------------------------------- key files are the owner's only

def test_save_keys_makes_an_existing_0644_file_0600(tmp_path: Path) -> None:
    path = tmp_path / "pump.keys.json"
    path.write_text("{}")
    os.chmod(path, 0o644)
    host_auth.save_keys(path, host_auth.new_keys())
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(host_auth.load_keys(path)) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["pump.keys.json"]     # no temporary file left behind


def test_keys_new_force_and_export_write_0600(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys, board = tmp_path / "k.json", tmp_path / "keys.bin"
    for p in (keys, board):
        p.write_text("old")
        os.chmod(p, 0o644)
    assert hil_cli.keys_main(["new", "--out", str(keys), "--force"]) == 0
    assert hil_cli.keys_main(["export", "--keys", str(keys), "--out", str(board)]) == 0
    for p in (keys, board):
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o600, p
    assert host_auth.load_keys(board) == host_auth.load_keys(keys)


# ---------------------------------------------------------------- sim --link removes only its own link

def test_sim_link_is_removed_on_close_only_while_it_is_ours(tmp_path: Path) -> None:
    link = tmp_path / "pump0"
    with SimBoard("cpython", link=link) as board:
        assert os.readlink(link) == board.path
    assert not os.path.lexists(link)
    with SimBoard("cpython", link=link) as board:
        os.unlink(link)
        os.symlink(tmp_path / "elsewhere", link)       # someone else's link now
    assert os.readlink(link) == str(tmp_path / "elsewhere")


def test_sim_link_never_replaces_a_file(tmp_path: Path) -> None:
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    with pytest.raises(SimLinkError, match="not replaced"):
        SimBoard("cpython", link=precious)
    assert precious.read_text() == "keep me"
