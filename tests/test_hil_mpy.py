"""The simulated board on real MicroPython behind a pseudo-terminal: handshake, scenarios, power
cuts. Two ports run the mpy-cross compiled firmware: the WebAssembly port under Node
(hil/mpy_board.mjs, runtime "micropython") and the unix port on a pseudo-terminal of its own
(firmware.simboard.run_console over main.ConsoleTransport, runtime "unix")."""
from __future__ import annotations

from typing import Iterator

import pytest

from blinpump.firmware import protocol as P
from blinpump.hil import scenarios
from blinpump.hil.client import Pump
from blinpump.hil.sim import SimBoard

# the power cut, the lock-out (31 simulated days) and a refusal: at least three, including the power cut
CHOSEN = scenarios.standard(["power-cut-mid-bag", "crs4-lockout", "infant-7day-bag-refused", "flush-refused"])


@pytest.fixture(scope="module", params=("micropython", "unix"))
def mpy_board(request: pytest.FixtureRequest) -> Iterator[SimBoard]:
    board = SimBoard(request.param)
    try:
        yield board
    finally:
        board.close()


@pytest.fixture
def mpy_pump(mpy_board: SimBoard) -> Iterator[Pump]:
    with Pump(mpy_board.path, timeout_s=2.0) as p:
        yield p


def test_hello_names_the_compiled_kernel(mpy_pump: Pump) -> None:
    info = mpy_pump.info
    assert (info["protocol_version"], info["build"]) == (P.VERSION, "sim")
    assert info["hash_kind"] == P.HASH_EMBEDDED      # the proven kernel.py's, embedded by the build
    assert mpy_pump.kernel_matches()


@pytest.mark.parametrize("scenario", CHOSEN, ids=[s.test_id for s in CHOSEN])
def test_scenario_on_the_micropython_board(mpy_pump: Pump, scenario: scenarios.Scenario) -> None:
    result = scenarios.run(mpy_pump, scenario)
    assert result.ok, scenarios.table([result])


def test_same_end_state_on_both_runtimes(mpy_pump: Pump) -> None:
    sc = scenarios.standard(["crs3-restart-9"])[0]
    with SimBoard("cpython") as cpy_board, Pump(cpy_board.path) as cpy_pump:
        assert scenarios.run(cpy_pump, sc).ok
        cpython_status = cpy_pump.status()
    assert scenarios.run(mpy_pump, sc).ok
    assert mpy_pump.status() == cpython_status
