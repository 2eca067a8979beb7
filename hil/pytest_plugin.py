"""pytest plugin: a `pump` fixture, a blinpump.hil.client.Pump on a fresh pump.

Installing blinpump registers it (entry point `pytest11`, named after the module as pytest-xdist's
are), so no `-p` is needed, and `-p blinpump.hil.pytest_plugin` loads it just the same:

    pytest                                               # a simulated board (CPython) behind a pty
    pytest --pump-runtime micropython
    pytest --pump-port /dev/ttyACM0 --pump-keys pump.keys.json      # a real board
    pytest -n 2 --pump-port /dev/ttyACM0 --pump-port /dev/ttyACM1   # two boards, pytest-xdist

    def test_flush_is_refused(pump):                     # EXT-no-flush
        assert pump.flush().name == "E_STATE"

    @pytest.mark.sim_only                                # needs ADVANCE (time warp): simulated boards only
    def test_a_week(pump): ...

The simulated board is started once per session (`pump_board`); each test gets its own
connection, and a simulated pump is reset (record erased) before the test. With pytest-xdist
every worker is a session of its own: its own simulated board, or its own --pump-port (the
option given once per board; worker gwN takes the N+1th). A port that answers nothing, or a key
file that cannot be used, ends the session once with one line naming the option (exit status
2), not a traceback per test. Tests marked `sim_only` are skipped on a real board.
Without the plugin registered, a test module can import the fixtures:
`from blinpump.hil.pytest_plugin import pump, pump_board`; the options then take their defaults.
"""
from __future__ import annotations

from typing import Any, Iterator

import pytest

from blinpump.hil.client import Pump
from blinpump.hil.sim import RUNTIMES, SimBoard

BOOT_WAIT_S = 5.0       # a real board may be resetting when the port opens
EXIT_USAGE = 2
_CHECKED = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("blinpump", "BLINCYTO pump hardware-in-the-loop")
    group.addoption("--pump-port", action="append", default=None, metavar="URL",
                    help="pyserial URL of the pump (/dev/ttyACM0, socket://host:port); once per board with "
                         "pytest-xdist (worker gwN takes the N+1th); default: start a simulated board behind a "
                         "pseudo-terminal")
    group.addoption("--pump-runtime", default="cpython", choices=RUNTIMES,
                    help="runtime of the simulated board (default: cpython)")
    group.addoption("--pump-keys", default=None, metavar="FILE",
                    help="key file for authenticated commands (docs/security.md); default: the "
                         "simulation test keys, which only a simulated board accepts")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sim_only: needs a simulated board (time warp, fault injection); "
                                       "skipped on a real one (--pump-port)")


def _option(config: pytest.Config, name: str, default: Any) -> Any:
    try:
        value = config.getoption(name, default=default)
    except ValueError:                  # the plugin's options are not registered (fixtures imported)
        return default
    return default if value is None else value


def _worker_index(config: pytest.Config) -> int:
    worker = getattr(config, "workerinput", {}).get("workerid", "gw0")      # pytest-xdist, or one process
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0


def _stop(option: str, message: str) -> None:
    pytest.exit("blinpump: error: field=%s: %s" % (option, " ".join(message.split())), returncode=EXIT_USAGE)


def _ports(config: pytest.Config) -> list[str]:
    ports = _option(config, "--pump-port", None) or []
    return [ports] if isinstance(ports, str) else [str(x) for x in ports]


def _port(config: pytest.Config) -> str | None:
    """This session's real port (with pytest-xdist, this worker's), or None for a simulated board."""
    ports = _ports(config)
    return ports[_worker_index(config)] if ports and _worker_index(config) < len(ports) else (
        ports[0] if ports else None)


def _check(config: pytest.Config) -> dict[str, Any]:
    """The key file and every port, checked once (in the controller with pytest-xdist): a problem
    ends the session with one line naming the option."""
    from blinpump.hil import auth as host_auth
    try:
        keys = host_auth.resolve(_option(config, "--pump-keys", "sim"))
    except host_auth.KeyFileError as exc:
        _stop("--pump-keys", str(exc))
    ports = _ports(config)
    workers = getattr(config.option, "numprocesses", None) or 0
    if ports and isinstance(workers, int) and workers > len(ports):
        _stop("--pump-port", "%d workers and %d boards: worker gw%d has no board; give --pump-port once per worker"
              % (workers, len(ports), len(ports)))
    for port in ports:
        try:
            with Pump(port, boot_wait_s=BOOT_WAIT_S, keys=keys):
                pass
        except Exception as exc:            # cannot open, not a pump, no answer: said once
            _stop("--pump-port", "no pump at %s: %s" % (port, exc))
    return {"keys": keys}


def pytest_sessionstart(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):     # the controller, or the only process
        session.config.stash[_CHECKED] = _check(session.config)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    port = _port(config)
    if port is None:
        return
    skip = pytest.mark.skip(reason="sim_only: needs a simulated board, and %s is a real one" % port)
    for item in items:
        if "sim_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def pump_session(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Where this session's pump is and how to sign for it (checked at the session's start)."""
    from blinpump.hil import auth as host_auth
    checked = request.config.stash.get(_CHECKED, None)
    if checked is None:                 # an xdist worker (the controller checked), or hooks not loaded
        try:
            checked = {"keys": host_auth.resolve(_option(request.config, "--pump-keys", "sim"))}
        except host_auth.KeyFileError as exc:
            _stop("--pump-keys", str(exc))
    return {"port": _port(request.config), "keys": checked["keys"]}


@pytest.fixture(scope="session")
def pump_board(request: pytest.FixtureRequest, pump_session: dict[str, Any]) -> Iterator[SimBoard | None]:
    """The simulated board of this session, or None when --pump-port names a real one."""
    if pump_session["port"] is not None:
        yield None
        return
    board = SimBoard(_option(request.config, "--pump-runtime", "cpython"))
    try:
        yield board
    finally:
        board.close()


@pytest.fixture
def pump(pump_session: dict[str, Any], pump_board: SimBoard | None) -> Iterator[Pump]:
    """A connected Pump with a session; a simulated pump is reset to a fresh one first."""
    port = pump_board.path if pump_board else pump_session["port"]
    with Pump(port, boot_wait_s=0.0 if pump_board else BOOT_WAIT_S, keys=pump_session["keys"]) as p:
        if p.info.get("build") == "sim":
            p.reset()
        yield p
