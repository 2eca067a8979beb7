"""`blinpump bench`, `demo`, `flash` (hil/cli.py) and the pytest plugin's options."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import shlex
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from blinpump.hil import build, cli

REPO = Path(__file__).resolve().parent.parent


def test_bench_runs_scenarios_prints_a_table_and_writes_junit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junit = tmp_path / "hil.xml"
    assert cli.bench_main(["flush-refused", "L2.4-crs-4", "--junit", str(junit)]) == 0
    out = capsys.readouterr().out
    assert "PASS    crs4-lockout" in out and "PASS    flush-refused" in out
    suite = ET.parse(junit).getroot()
    assert suite.get("tests") == "2" and suite.get("failures") == "0"
    names = [tc.get("name") for tc in suite.iter("testcase")]
    assert names == ["EXT-no-flush+L2-constant-rate:flush-refused", "L2.4-crs-4+EXT-pump:crs4-lockout"]


def test_bench_exits_non_zero_when_a_scenario_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"id": "bad", "title": "t", "clauses": ["EXT-no-flush"], "patient": {"indication": "mrd", '
                   '"weight_kg": 70}, "steps": [{"do": "setup"}, {"do": "flush", "expect": "OK"}]}')
    junit = tmp_path / "j.xml"
    assert cli.bench_main([str(bad), "--junit", str(junit)]) == 1
    assert "FAIL    bad" in capsys.readouterr().out
    assert ET.parse(junit).getroot().get("failures") == "1"
    assert cli.bench_main(["no-such-scenario"]) == 2


def test_demo_writes_a_report_and_junit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.demo_main(["--out", str(tmp_path), "--course-cycles", "1", "--no-prove", "--runtime", "cpython"]) == 0
    report = (tmp_path / "report.md").read_text()
    assert "Result: PASS" in report and "L2.2-step" in report and "matches this repository" in report
    assert ET.parse(tmp_path / "junit.xml").getroot().get("failures") == "0"


def test_demo_runs_the_scenarios_on_every_runtime_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """The default demo: every standard scenario on the CPython board, then on the MicroPython
    boards, WebAssembly and unix ports (here two short ones stand for the standard ones, which
    take two minutes on the WebAssembly port)."""
    from blinpump.hil import scenarios
    every = scenarios.standard
    monkeypatch.setattr(scenarios, "standard", lambda names=None: every(["flush-refused", "crs4-lockout"]))
    assert cli.demo_main(["--out", str(tmp_path), "--course-cycles", "1", "--no-prove"]) == 0
    report = (tmp_path / "report.md").read_text()
    assert "- cpython runtime" in report and "- micropython runtime" in report and "- unix runtime" in report
    assert report.count("matches this repository") == 3
    cases = ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")
    assert sorted(c.get("classname") for c in cases) == (["hil.scenarios[cpython]"] * 2 + ["hil.scenarios[micropython]"] * 2
                                                         + ["hil.scenarios[unix]"] * 2)


def test_flash_without_a_port_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.flash_main([]) == 2
    assert "no port given" in capsys.readouterr().err


def dry_run_sessions(out: str) -> list[list[str]]:
    """The mpremote sessions a dry run prints (shell-quoted), as argument lists after `connect PORT`."""
    words = shlex.split(out)
    starts = [i for i, w in enumerate(words) if w == "mpremote"]
    return [words[i + 3:j - 2] if j < len(words) else words[i + 3:] for i, j in zip(starts, starts[1:] + [len(words) + 2])]


def test_flash_dry_run_leaves_simulation_commands_off_the_board(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.flash_main(["--port", "/dev/ttyACM0", "--dry-run"]) == 0
    out = capsys.readouterr().out
    sessions = dry_run_sessions(out)
    assert len(sessions) == 2               # the copy and its read-back; then leave maintenance and reset
    copy = sessions[0]
    assert copy[0] == "exec" and "fs" in copy and ":main.py" in copy
    assert any(w.endswith("/kernel.mpy") for w in copy)
    # nothing of the simulation build is copied, and whatever is on the board but not in this
    # build is removed before the copy (the list kept is the build's)
    assert "simboard" not in out and "simhal" not in out
    assert "os.remove('firmware/' + name)" in copy[1]
    assert sessions[1][:2] == ["resume", "exec"] and sessions[1][-2:] == ["+", "reset"]


def test_pytest_plugin_options(tmp_path: Path) -> None:
    """The plugin is found through its pytest11 entry point: a bench's own tests just use `pump`."""
    test = tmp_path / "test_uses_pump.py"
    test.write_text(textwrap.dedent('''
        def test_flush_is_refused(pump):        # EXT-no-flush
            assert pump.info["build"] == "sim"
            assert pump.flush().name == "E_STATE"
            assert pump.status()["mode"] == 0
    '''))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for extra in ([], ["--pump-runtime", "micropython"]):
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               str(test), *extra], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "1 passed" in proc.stdout


EXTERNAL_TESTS = textwrap.dedent('''
    import pytest

    def test_flush_is_refused(pump):           # EXT-no-flush
        assert pump.flush().name == "E_STATE"

    @pytest.mark.sim_only
    def test_needs_time_warp(pump):
        assert pump.info["build"] == "sim"

    def test_no_patient(pump):
        assert pump.status()["mode"] == 0

    def test_no_patient_again(pump):
        assert pump.status()["mode"] == 0
''')


def _external_pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest in a bench's own folder, as the README shows it: nothing but the installed package."""
    (tmp_path / "test_bench.py").write_text(EXTERNAL_TESTS)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_bench.py", *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=180)


def test_pytest_plugin_with_xdist_gives_each_worker_its_own_board_and_loads_with_p_too(tmp_path: Path) -> None:
    for args in (["-n", "2"], ["-p", "blinpump.hil.pytest_plugin"]):
        proc = _external_pytest(tmp_path, *args)
        assert proc.returncode == 0 and "4 passed" in proc.stdout, proc.stdout + proc.stderr


def test_pytest_plugin_ends_the_session_once_for_a_bad_port_or_key_file(tmp_path: Path) -> None:
    proc = _external_pytest(tmp_path, "--pump-port", str(tmp_path / "no-such-port"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    for stream in (proc.stdout, proc.stderr):         # pytest shows an exit on both: once on each
        assert len([line for line in stream.splitlines() if "field=--pump-port" in line]) == 1, stream
    assert "Traceback" not in proc.stdout + proc.stderr and "passed" not in proc.stdout
    (tmp_path / "bad.keys.json").write_text("{}")
    proc = _external_pytest(tmp_path, "--pump-keys", str(tmp_path / "bad.keys.json"))
    assert proc.returncode == 2 and "field=--pump-keys" in proc.stdout + proc.stderr
    proc = _external_pytest(tmp_path, "-n", "2", "--pump-port", str(tmp_path / "one-port"))
    assert proc.returncode == 2 and "worker gw1 has no board" in proc.stdout + proc.stderr, proc.stdout


def test_pytest_plugin_skips_sim_only_tests_on_a_real_port(tmp_path: Path) -> None:
    from blinpump.hil.sim import SimBoard
    with SimBoard("cpython") as board:          # a pty like a board's USB port
        proc = _external_pytest(tmp_path, "--pump-port", board.path, "-rs")
    assert proc.returncode == 0 and "3 passed, 1 skipped" in proc.stdout, proc.stdout + proc.stderr
    assert "sim_only: needs a simulated board" in proc.stdout


def test_every_clause_the_kernel_enforces_has_a_standard_scenario_and_list_says_so(
        capsys: pytest.CaptureFixture[str]) -> None:
    from blinpump.hil import scenarios
    every = scenarios.standard()
    cited = scenarios.enforced_clauses()
    assert {"L1.1", "L2.4-neuro-4", "L2.6-bag-*", "L2.x-course"} <= set(cited)
    assert scenarios.clauses_without_scenario(every) == []
    # both sides: without its scenario, a clause is reported
    assert scenarios.clauses_without_scenario([s for s in every if s.id != "neuro4-lockout"]) == ["L2.4-neuro-4"]
    assert cli.bench_main(["--list"]) == 0
    out = capsys.readouterr().out
    assert all(s.id in out for s in every)
    assert out.rstrip().endswith("clauses the kernel enforces without a standard scenario: none")


def test_bench_on_two_boards_runs_each_scenario_once_with_one_log_per_board(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json
    junit, results, logs = tmp_path / "hil.xml", tmp_path / "results.json", tmp_path / "logs"
    chosen = ["flush-refused", "crs4-lockout", "neuro4-lockout", "overdose-12h-wait"]
    assert cli.bench_main(chosen + ["--boards", "2", "--junit", str(junit), "--results", str(results),
                                    "--log-dir", str(logs)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[-1] == "board"
    rows = json.loads(results.read_text())
    assert sorted(r["scenario"] for r in rows) == sorted(chosen) and all(r["ok"] for r in rows)
    assert {r["board"] for r in rows} <= {"sim1", "sim2"}
    assert sorted(p.name for p in logs.iterdir()) == ["board-sim1.log", "board-sim2.log"]
    logged = [line.split()[1] for p in logs.iterdir() for line in p.read_text().splitlines()[1:]
              if line.startswith(("PASS", "FAIL"))]
    assert sorted(logged) == sorted(chosen)            # each scenario once, on one board
    suite = ET.parse(junit).getroot()
    assert suite.get("tests") == "4" and all(tc.get("classname").startswith("hil.scenarios[sim")
                                            for tc in suite.iter("testcase"))


@pytest.mark.parametrize("argv, field", [
    (["--boards", "0"], "--boards"),
    (["--boards", "17"], "--boards"),
    (["--boards", "2", "--port", "/dev/null"], "--boards"),
    (["--port", "loop://", "--port", "loop://"], "--port"),
    (["--boards", "2", "--course"], "--course"),
])
def test_bench_board_options_are_refused_in_one_line(argv: list[str], field: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.bench_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ("field=%s:" % field) in err[0]


def test_the_readme_example_of_the_plugin_runs_as_shown(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text().split("### Test benches")[1]
    (tmp_path / "test_from_readme.py").write_text(readme.split("```python\n")[1].split("```")[0])
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_from_readme.py"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "2 passed" in proc.stdout, proc.stdout + proc.stderr
