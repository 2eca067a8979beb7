"""Flashing through real mpremote, against a board with a real MicroPython REPL: the REPL board
(hil/replboard.py, the MicroPython unix port behind a pseudo-terminal). No stand-in for
mpremote: these run `python -m mpremote` and `blinpump flash` / `blinpump keys provision` as a
device engineer does, and the flashed board boots into the pump and answers over the same port."""
from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from blinpump.firmware import hal, journal, kernel as k
from blinpump.firmware import main as fw_main
from blinpump.firmware import protocol as P
from blinpump.hil import auth as host_auth
from blinpump.hil import build, cli, scenarios
from blinpump.hil.client import Pump, PumpError
from blinpump.hil.replboard import ReplBoard

from pumps import running_patient


@pytest.fixture
def board() -> Iterator[ReplBoard]:
    with ReplBoard() as b:
        yield b


def mpremote(board: ReplBoard, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mpremote", "connect", board.path, *args],
                          capture_output=True, text=True, timeout=60)


def test_mpremote_drives_the_repl_board(board: ReplBoard, tmp_path: Path) -> None:
    r = mpremote(board, "exec", "print(6 * 7)")
    assert (r.returncode, r.stdout) == (0, "42\n"), r.stderr
    local = tmp_path / "hello.py"
    local.write_text("print('hello from the board')\n" + "# padding\n" * 300)   # > several raw-paste windows
    r = mpremote(board, "fs", "cp", str(local), ":hello.py", "+", "fs", "ls", "+", "fs", "sha256sum", ":hello.py")
    assert r.returncode == 0, r.stderr
    assert "hello.py" in r.stdout and hashlib.sha256(local.read_bytes()).hexdigest() in r.stdout
    assert (board.flash / "hello.py").read_bytes() == local.read_bytes()
    r = mpremote(board, "run", str(local))
    assert (r.returncode, r.stdout) == (0, "hello from the board\n"), r.stderr
    # a soft reset restarts the interpreter (globals gone) and keeps the filesystem
    assert mpremote(board, "exec", "x = 5", "+", "resume", "exec", "print(x)").stdout == "5\n"
    lives = board.lives
    r = mpremote(board, "soft-reset", "+", "exec", "print('x' in globals())", "+", "fs", "ls")
    assert r.returncode == 0 and "False" in r.stdout and "hello.py" in r.stdout, r.stdout + r.stderr
    assert board.lives > lives and "soft-raw" in board.resets
    # an error on the board is mpremote's error, with the board's traceback
    r = mpremote(board, "exec", "raise ValueError('on the board')")
    assert r.returncode != 0 and "ValueError: on the board" in r.stdout + r.stderr


def test_the_repl_boards_watchdog_resets_a_board_that_stops_feeding_it(board: ReplBoard) -> None:
    assert mpremote(board, "exec", "import machine\nw = machine.WDT(timeout=300)\nw.feed()").returncode == 0
    end = time.monotonic() + 5
    while "watchdog" not in board.resets and time.monotonic() < end:
        time.sleep(0.05)
    assert "watchdog" in board.resets
    assert mpremote(board, "exec", "print('back')").stdout == "back\n"     # it came back to its REPL


def test_a_new_board_flashed_boots_into_the_pump_and_answers_the_bench(board: ReplBoard,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.flash_main(["--port", board.path, "--with-sim", "--no-pump"]) == 0
    out = capsys.readouterr().out
    assert "the pump answers HELLO" in out and "MISMATCH" not in out
    assert board.files() == sorted(["main.py"] + ["firmware/%s.mpy" % m for m in (
        "__init__", "auth", "codes", "hal", "journal", "kernel", "kernel_sha", "main", "protocol", "pump",
        "simboard", "simhal")])
    with Pump(board.path, timeout_s=2.0) as p:
        assert p.info["build"] == "sim" and p.kernel_matches()
        # the kernel it names is the proven source's: the sha256 `blinpump prove` reports
        assert (p.info["hash_kind"], p.info["kernel_sha256"]) == (
            P.HASH_EMBEDDED, build.source_hashes()["firmware/kernel.py"])
        chosen = scenarios.standard(["flush-refused", "crs4-lockout", "power-cut-mid-bag"])
        results = scenarios.run_all(p, chosen)
        assert all(r.ok for r in results), scenarios.table(results)
    board.power_cycle()                       # it boots into the pump again, not to a REPL
    with Pump(board.path, timeout_s=2.0, boot_wait_s=10.0) as p:
        assert p.info["build"] == "sim"
    assert "power" in board.resets


def test_flash_goes_through_maintenance_and_never_interrupts_an_infusion(
        board: ReplBoard, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.flash_main(["--port", board.path, "--with-sim", "--no-pump"]) == 0
    with Pump(board.path) as p:
        running_patient(p)
    before = {f: (board.flash / f).read_bytes() for f in board.files()}
    lives = board.lives
    capsys.readouterr()
    keys = tmp_path / "k.json"
    host_auth.save_keys(keys, host_auth.new_keys())
    assert cli.flash_main(["--port", board.path, "--with-sim"]) == 1
    assert "is infusing" in capsys.readouterr().err
    assert cli.keys_main(["provision", "--port", board.path, "--keys", str(keys)]) == 1
    assert "is infusing" in capsys.readouterr().err
    assert board.lives == lives and {f: (board.flash / f).read_bytes() for f in board.files()} == before
    with Pump(board.path) as p:
        assert p.status()["mode"] == k.MODE_RUNNING       # nothing was done
    # told to, it stops the infusion through the protocol (logged), then MAINTENANCE, then flashes
    assert cli.flash_main(["--port", board.path, "--with-sim", "--stop-infusion"]) == 0
    out = capsys.readouterr().out
    assert "stopped through the protocol" in out and "went into maintenance" in out
    assert "the pump answers HELLO" in out
    assert board.resets[-1] == "hard" and "hard" in board.resets[:-1]   # into maintenance, then out of it


def test_production_flash_then_keys_provision_and_maintenance_needs_the_clinician(
        board: ReplBoard, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # left over from a simulation build and from sources copied by hand: a stale kernel.py would
    # be imported instead of kernel.mpy, simboard must never be on a pump
    (board.flash / "firmware").mkdir()
    for stale in ("simboard.mpy", "simhal.mpy", "kernel.py"):
        (board.flash / "firmware" / stale).write_bytes(b"stale")
    assert cli.flash_main(["--port", board.path, "--no-pump"]) == 0
    assert "production build" in capsys.readouterr().out
    assert not [f for f in board.files() if "sim" in f or f.endswith(".py") and f != "main.py"]
    assert _watchdog_ms(board, hal.WDT_TIMEOUT_MS) == hal.WDT_TIMEOUT_MS     # the pump started it
    with Pump(board.path, keys=None) as p:
        assert (p.info["build"], p.info["auth_roles"]) == ("production", 0)
        with pytest.raises(PumpError):
            p.status()                                    # no keys: nothing but HELLO (fail closed)
    keys = tmp_path / "k.json"
    host_auth.save_keys(keys, host_auth.new_keys())
    # a board with no keys takes MAINTENANCE from anyone: it could not have run therapy
    assert cli.keys_main(["provision", "--port", board.path, "--keys", str(keys)]) == 0
    assert "went into maintenance" in capsys.readouterr().out
    assert "keys.bin" in board.files()
    with Pump(board.path, keys=str(keys)) as p:
        assert p.info["auth_roles"] == 7
        assert p.status()["mode"] == k.MODE_NO_PATIENT
        codes = [e["code"] for e in p.events()]
        # the pump's first boot, MAINTENANCE, the boot with the keys (in maintenance the pump never booted)
        assert codes == [journal.EV_BOOT, journal.EV_MAINTENANCE, journal.EV_BOOT], codes
    # now MAINTENANCE needs the clinician's key: the simulation keys are refused, nothing is done
    lives = board.lives
    assert cli.flash_main(["--port", board.path]) == 1
    err = capsys.readouterr().err
    assert "refused MAINTENANCE" in err and "clinician key; nothing was done" in err
    assert board.lives == lives
    assert cli.flash_main(["--port", board.path, "--pump-keys", str(keys)]) == 0
    assert _watchdog_ms(board, hal.WDT_TIMEOUT_MS) == hal.WDT_TIMEOUT_MS
    assert fw_main.MAINTENANCE_PATH not in board.files()


def _watchdog_ms(board: ReplBoard, want: int) -> int:
    """The board's watchdog timeout once it is `want` (its report crosses a pipe), or as it is."""
    end = time.monotonic() + 3
    while board.watchdog_ms != want and time.monotonic() < end:
        time.sleep(0.02)
    return board.watchdog_ms


def test_the_maintenance_flag_keeps_the_pump_and_its_watchdog_off_at_boot(board: ReplBoard) -> None:
    assert cli.flash_main(["--port", board.path, "--no-pump"]) == 0
    assert _watchdog_ms(board, hal.WDT_TIMEOUT_MS) == hal.WDT_TIMEOUT_MS
    (board.flash / fw_main.MAINTENANCE_PATH).write_text("by hand\n")
    lives = board.lives
    board.power_cycle()
    assert board.wait_lives(lives + 1)
    r = mpremote(board, "exec", "print('at the REPL')")
    assert r.stdout == "at the REPL\n", r.stdout + r.stderr
    assert _watchdog_ms(board, 0) == 0 and board.resets[-1] != "watchdog"
    (board.flash / fw_main.MAINTENANCE_PATH).unlink()
    board.power_cycle()
    with Pump(board.path, keys=None, boot_wait_s=10.0) as p:
        assert p.info["build"] == "production"
    assert _watchdog_ms(board, hal.WDT_TIMEOUT_MS) == hal.WDT_TIMEOUT_MS


def test_mpremote_mip_installs_the_firmware_package_into_the_board(board: ReplBoard) -> None:
    """firmware/package.json, for `mpremote mip install`: the production sources, no simulation."""
    r = mpremote(board, "mip", "install", "--target", "/", str(Path(cli.REPO) / "firmware" / "package.json"))
    assert r.returncode == 0, r.stdout + r.stderr
    sources = {"firmware/" + p.name: p.read_bytes() for p in build.firmware_sources(production=True)}
    assert board.files() == sorted(sources)
    assert all((board.flash / name).read_bytes() == data for name, data in sources.items())
    r = mpremote(board, "exec", "from firmware import main\nprint(main.FIRMWARE_VERSION, main.kernel_hash()[0])")
    assert r.stdout.split() == [str(fw_main.FIRMWARE_VERSION), "1"], r.stdout + r.stderr    # 1: kernel.py's sha256


def test_bad_options_are_refused_before_anything_is_sent(board: ReplBoard, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """One line naming the option, exit 2, and the board untouched (no MAINTENANCE)."""
    lives = board.lives
    for argv, field in ((["--pump-port", ""], "--pump-port"), (["--pump-keys", ""], "--pump-keys"),
                        (["--pump-keys", str(tmp_path / "missing.json")], "--pump-keys"),
                        (["--no-pump", "--stop-infusion"], "--stop-infusion"),
                        (["--pump-port", str(tmp_path / "no-such-device")], "--pump-port")):
        for dry in ([], ["--dry-run"]):
            if dry and field == "--pump-port" and argv[1]:
                continue                        # a dry run opens no port
            capsys.readouterr()
            assert cli.flash_main(["--port", board.path] + argv + dry) == 2, (argv, dry)
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and "field=%s" % field in err[0], err
    assert cli.flash_main(["--port", str(tmp_path / "ttyNOPE")]) == 2
    assert "field=--port" in capsys.readouterr().err
    assert board.lives == lives and board.files() == []


def test_a_refused_reset_of_the_counters_leaves_the_pump_running(board: ReplBoard, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.flash_main(["--port", board.path, "--no-pump"]) == 0
    keys = tmp_path / "k.json"
    host_auth.save_keys(keys, host_auth.new_keys())
    assert cli.keys_main(["provision", "--port", board.path, "--keys", str(keys)]) == 0
    capsys.readouterr()
    args = ["provision", "--port", board.path, "--keys", str(keys), "--pump-keys", str(keys), "--reset-counters"]
    assert cli.keys_main(args) == 2
    assert "field=--reset-counters" in capsys.readouterr().err
    assert fw_main.MAINTENANCE_PATH not in board.files()
    with Pump(board.path, keys=str(keys)) as p:             # back to the pump, keys and counters kept
        assert p.info["auth_roles"] == 7 and p.info["counter_clinician"] > 0


def test_the_bench_on_a_production_pump_runs_what_it_can_and_never_leaves_it_infusing(
        board: ReplBoard, tmp_path: Path) -> None:
    """A scenario that needs time warp or fault injection is refused before its first step on a
    production build (no therapy is started for it); one that fails there stops the pump."""
    assert cli.flash_main(["--port", board.path, "--no-pump"]) == 0
    keys = tmp_path / "k.json"
    host_auth.save_keys(keys, host_auth.new_keys())
    assert cli.keys_main(["provision", "--port", board.path, "--keys", str(keys)]) == 0
    with Pump(board.path, keys=str(keys)) as p:
        sim_only = scenarios.standard(["flush-refused"])[0]
        result = scenarios.run(p, sim_only)
        assert not result.ok and "needs a simulation build" in result.failures[0] and result.steps_run == 0
        assert p.status()["mode"] == k.MODE_NO_PATIENT
        # a scenario that fails part-way after START: the pump is stopped, and the failure says so
        steps = sim_only.steps[:sim_only.steps.index({"do": "start"}) + 1] + [{"check": {"mode": "stopped"}}]
        result = scenarios.run(p, dataclasses.replace(sim_only, steps=steps))
        assert not result.ok and any("stopped (STOP, logged)" in f for f in result.failures), result.failures
        assert p.status()["mode"] == k.MODE_STOPPED


# mpremote as it is, but the read-back of kernel.mpy says other bytes: a copy that went wrong
ALTERING_MPREMOTE = '''
import subprocess, sys
proc = subprocess.run([sys.executable, "-m", "mpremote"] + sys.argv[1:], capture_output=True, text=True)
lines = [("HASH firmware/kernel.mpy " + "0" * 64) if line.startswith("HASH firmware/kernel.mpy ") else line
         for line in proc.stdout.splitlines()]
sys.stdout.write("\\n".join(lines) + "\\n")
sys.stderr.write(proc.stderr)
sys.exit(proc.returncode)
'''


def test_a_read_back_that_differs_leaves_a_new_board_in_maintenance(board: ReplBoard, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """With --no-pump too: the flag goes on first, so a board whose copy cannot be shown whole
    boots to its REPL, never into the pump (nor its watchdog)."""
    wrapper = tmp_path / "mpremote_altering.py"
    wrapper.write_text(ALTERING_MPREMOTE)
    argv = ["--port", board.path, "--no-pump", "--mpremote", "%s %s" % (sys.executable, wrapper)]
    assert cli.flash_main(argv) == 1
    err = capsys.readouterr().err
    assert "firmware/kernel.mpy on the board differs" in err and "stays in maintenance" in err
    assert fw_main.MAINTENANCE_PATH in board.files() and "main.py" in board.files()
    lives = board.lives
    board.power_cycle()
    assert board.wait_lives(lives + 1)
    assert mpremote(board, "exec", "print('at the REPL')").stdout == "at the REPL\n"
    assert _watchdog_ms(board, 0) == 0
