"""The simulated board behind a real pseudo-terminal (CPython runtime): the standard scenarios
(named by the label clauses they exercise), `blinpump sim`, and the scenario runner itself."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial

from blinpump.firmware import journal
from blinpump.firmware import kernel as k
from blinpump.hil import scenarios
from blinpump.hil.client import Pump, PumpError
from blinpump.hil.pytest_plugin import pump, pump_board, pump_session  # noqa: F401  (fixtures; the plugin may not be registered)
from blinpump.hil.sim import SimBoard

REPO = Path(__file__).resolve().parent.parent
STANDARD = scenarios.standard()


def test_standard_library_covers_issue_5(shared_label: Path) -> None:
    """Every scenario cites clauses of the label; needs ../shared/LABEL.md beside the checkout."""
    ids = {s.id for s in STANDARD}
    assert ids >= {"rr-cycle1-step-up", "interruption-5h-reinit", "interruption-8d-new-cycle", "crs3-restart-9",
                   "crs4-lockout", "bag-expiry-storage", "infant-7day-bag-refused", "flush-refused",
                   "power-cut-mid-bag"}
    text = shared_label.read_text()
    for sc in STANDARD:
        assert sc.clauses, sc.id
        for clause in sc.clauses:
            assert "| %s |" % clause in text, (sc.id, clause)


@pytest.mark.parametrize("scenario", STANDARD, ids=[s.test_id for s in STANDARD])
def test_scenario_on_the_cpython_board_over_a_pty(pump: Pump, scenario: scenarios.Scenario) -> None:
    result = scenarios.run(pump, scenario)
    assert result.ok, scenarios.table([result])


def test_the_pty_is_a_real_raw_tty(pump_board: SimBoard) -> None:
    assert os.path.realpath(pump_board.path).startswith("/dev/pts/")
    with serial.Serial(pump_board.path, 115200, timeout=1) as ser:   # any serial tool can open it
        ser.write(bytes.fromhex("7e020101002001020000009b486bac7e"))   # HELLO vector, raw bytes
        reply = ser.read(8)
        assert reply[:5] == bytes.fromhex("7e02020100")


def test_a_wrong_expectation_fails_the_scenario(pump: Pump, tmp_path: Path) -> None:
    data = json.loads((scenarios.SCENARIO_DIR / "flush_refused.json").read_text())
    data["steps"].append({"check": {"course_ng": "cap_full + 1"}})
    data["steps"].append({"do": "flush", "expect": "OK"})
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data))
    result = scenarios.run(pump, scenarios.load(path))
    assert not result.ok and len(result.failures) == 2
    assert "course_ng" in result.failures[0] and "E_NO_FLUSH" in result.failures[1]


def test_expectations_come_from_the_model() -> None:
    adult = scenarios.model_names({"indication": "rr", "weight_kg": 70})
    infant = scenarios.model_names({"indication": "mrd", "weight_kg": 5, "bsa_m2": 0.27})
    assert (adult["cap_full"], adult["cap_low"]) == (28000, 9000)
    assert (infant["cap_full"], infant["cap_low"], infant["preservative_allowed"]) == (4050, 1350, 0)
    assert scenarios.evaluate("7 * cap_low + 3 * cap_full", adult) == 147000
    assert scenarios.check_value(9000, "<= cap_low", adult) is None
    assert scenarios.check_value(9001, "<= cap_low", adult)
    assert scenarios.minutes("1d12h30m") == 2190
    with pytest.raises(scenarios.ScenarioError):
        scenarios.evaluate("__import__('os')", adult)


def test_two_cycles_of_a_planned_course_over_serial(pump: Pump) -> None:
    course = scenarios.run_course(pump, "rr", 70.0, cycles=2)
    assert course["ok"], course
    assert course["planned_ng"] == 7 * 9000 + 21 * 28000 + 28 * 28000


def test_blinpump_sim_prints_a_path_any_serial_tool_can_open(tmp_path: Path) -> None:
    link = tmp_path / "pump0"
    proc = subprocess.Popen([sys.executable, "-m", "blinpump", "sim", "--link", str(link)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        path = proc.stdout.readline().strip()     # type: ignore[union-attr]
        assert path.startswith("/dev/pts/")
        deadline = time.monotonic() + 60          # a poll that ends when ready: generous for a loaded machine
        while not link.is_symlink() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert os.path.realpath(link) == os.path.realpath(path)
        with Pump(str(link)) as p:
            assert p.info["build"] == "sim" and p.kernel_matches()
            assert p.setup(4242, k.IND_RR, 70000, 0).ok
            assert p.status()["cap_ng_per_day"] == 9000
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    assert not link.exists()


def test_the_client_takes_any_pyserial_url() -> None:
    """socket:// (a board behind a TCP bridge) works like a tty."""
    import socket
    import threading

    from blinpump.firmware import simboard
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    sim = simboard.make_board()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                conn.sendall(sim.board.feed(data))
    threading.Thread(target=serve, daemon=True).start()
    with Pump("socket://127.0.0.1:%d" % server.getsockname()[1]) as p:
        assert p.info["build"] == "sim"
        assert p.flush().name == "E_STATE"
    server.close()


def test_the_client_takes_names_and_units(pump: Pump) -> None:
    """A bench writes `pump.setup(7, "rr", weight_kg=44.9995, bsa_m2=1.2)`, not kernel integers."""
    assert pump.setup(7, "rr", weight_kg=44.9995, bsa_m2=1.2).name == "OK"
    st = pump.status()
    assert (st["weight_g"], st["bsa_cm2"], st["indication"]) == (44999, 12000, 2)     # below 45 kg: per m2
    assert pump.bag_as_prepared(7, 1, 6.0, 168).name == "OK"                         # 5 mcg/m2 x 1.2 m2
    assert pump.status()["bag_ng_per_day"] == 6000
    assert pump.ack("premed").name == "OK" and pump.ack("supervision").name == "OK"
    assert pump.start().name == "OK"
    assert pump.reaction("icans", 2, "astct").name == "OK" and pump.status()["rx_icans"] == 2
    assert pump.resolved("ICANS").name == "OK"
    with pytest.raises(ValueError, match="field=kind: 'cr' is not one of crs"):
        pump.reaction("cr", 3)
    with pytest.raises(ValueError, match="field=weight_kg"):
        pump.update_patient(weight_g=40000, weight_kg=40.0)


def test_L2_cycle_42_the_end_of_day_28_logs_stop_with_the_cycle_end_reason(pump: Pump) -> None:
    """A STOP event always names a documented reason: the 28th day's end is STOP_CYCLE_END (10)."""
    assert pump.setup(7, "mrd", weight_kg=70).name == "OK"
    for bag_id in range(1, 5):
        assert pump.bag_as_prepared(7, bag_id, 28, 168).name == "OK"
        if bag_id == 1:
            assert pump.ack("premed").name == "OK" and pump.ack("supervision").name == "OK"
        assert pump.start().name == "OK"
        pump.advance(7 * 1440)
    stops = [e for e in pump.events() if e["code"] == journal.EV_STOP]
    assert [e["a"] for e in stops] == [k.STOP_BAG_END] * 3 + [k.STOP_CYCLE_END]
    assert pump.status()["phase"] == k.PHASE_FREE


def test_a_reboot_starts_both_refusal_counts_again(pump: Pump) -> None:
    """HELLO's auth_rejected and auth_unlogged are counts since boot: a power cut zeroes both."""
    keys, pump.keys = pump.keys, {}                               # a host without keys: refused
    try:
        for _ in range(12):                                      # more than 8 a minute: some unlogged
            with pytest.raises(PumpError, match="E_UNAUTHORISED"):
                pump.ack_alarm(0)
    finally:
        pump.keys = keys
    info = pump.hello()
    assert info["auth_rejected"] == 12 and info["auth_unlogged"] == 4
    pump.inject_fault("power_cut", 5)
    info = pump.hello()
    assert (info["auth_rejected"], info["auth_unlogged"]) == (0, 0)
