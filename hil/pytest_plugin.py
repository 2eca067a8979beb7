"""pytest plugin: a `pump` fixture, a blinpump.hil.client.Pump on a fresh pump.

Installing blinpump registers it (entry point `pytest11`, name `blinpump`), so no `-p` is needed:

    pytest                                               # a simulated board (CPython) behind a pty
    pytest --pump-runtime micropython
    pytest --pump-port /dev/ttyACM0                      # a real board (needs a fresh pump per test)

    def test_flush_is_refused(pump):                     # EXT-no-flush
        assert pump.flush().name == "E_STATE"

The simulated board is started once per session (`pump_board`); each test gets its own
connection, and a simulated pump is reset (record erased) before the test.
Without the plugin registered, a test module can import the fixtures:
`from blinpump.hil.pytest_plugin import pump, pump_board`; the options then take their defaults.
"""
from __future__ import annotations

from typing import Any, Iterator

import pytest

from blinpump.hil.client import Pump
from blinpump.hil.sim import RUNTIMES, SimBoard

BOOT_WAIT_S = 5.0       # a real board may be resetting when the port opens


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("blinpump", "BLINCYTO pump hardware-in-the-loop")
    group.addoption("--pump-port", default=None, metavar="URL",
                    help="pyserial URL of the pump (/dev/ttyACM0, socket://host:port); "
                         "default: start a simulated board behind a pseudo-terminal")
    group.addoption("--pump-runtime", default="cpython", choices=RUNTIMES,
                    help="runtime of the simulated board (default: cpython)")
    group.addoption("--pump-keys", default=None, metavar="FILE",
                    help="key file for authenticated commands (docs/security.md); default: the "
                         "simulation test keys, which only a simulated board accepts")


def _option(config: pytest.Config, name: str, default: Any) -> Any:
    value = config.getoption(name, default=default)
    return default if value is None else value


@pytest.fixture(scope="session")
def pump_board(request: pytest.FixtureRequest) -> Iterator[SimBoard | None]:
    """The simulated board of this session, or None when --pump-port names a real one."""
    if _option(request.config, "--pump-port", None):
        yield None
        return
    board = SimBoard(_option(request.config, "--pump-runtime", "cpython"))
    try:
        yield board
    finally:
        board.close()


@pytest.fixture
def pump(request: pytest.FixtureRequest, pump_board: SimBoard | None) -> Iterator[Pump]:
    """A connected Pump with a session; a simulated pump is reset to a fresh one first."""
    port = pump_board.path if pump_board else _option(request.config, "--pump-port", None)
    keys = _option(request.config, "--pump-keys", "sim")
    with Pump(port, boot_wait_s=0.0 if pump_board else BOOT_WAIT_S, keys=keys) as p:
        if p.info.get("build") == "sim":
            p.reset()
        yield p
