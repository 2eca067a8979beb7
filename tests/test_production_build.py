"""The production build has no test-only commands (DESIGN.md: "test-only commands (time warp, fault
injection) exist only in simulation builds"), and `blinpump flash` copies it by default."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from blinpump.hil import build, micropython

REPO = build.REPO
PROJECT_VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]

# Runs on the production .mpy files under MicroPython: a board with a RAM record and the
# firmware's own HMAC signer. Simulation commands must be unknown and the module absent.
PRODUCTION_BOARD = r'''
import struct
from firmware import auth, kernel, main, protocol as P, pump

class Ram:
    def __init__(self, n):
        self.data = bytearray(n)
    def size(self):
        return len(self.data)
    def read(self, off, n):
        return bytes(self.data[off:off + n])
    def write(self, off, data):
        self.data[off:off + len(data)] = data
        return True

class Clock:
    def ms(self):
        return 0
    def diff(self, a, b):
        return a - b

class Motor:
    def set_rate(self, ul_per_h):
        return True

from firmware import journal
KEY = bytes(range(32))
authority = auth.Auth({auth.ROLE_BENCH: KEY, auth.ROLE_CLINICIAN: KEY}, Ram(auth.TOTAL_BYTES))
board = main.Board(None, pump.Controller(Ram(journal.TOTAL_BYTES), Clock(), Motor()), P.BUILD_PRODUCTION, authority)
board.boot(-1)
board._take()
counter = [0]

def replies(data):
    dec = P.Decoder()
    out = []
    for b in data:
        if dec.push(b) == P.FRAME:
            ver, ftype, seq, cmd, n = dec.header()
            if ftype == P.T_REPLY:
                out.append(dec.ints(n))
            elif ftype == P.T_AUTH_REPLY:
                out.append(dec.ints(n)[:n - 10])     # without role, counter and MAC
    return out

def call(cmd, args, role):
    counter[0] += 1
    ints = list(args) + [role, counter[0]]
    body = bytearray(P.HEADER_BYTES + 4 * len(ints))
    struct.pack_into("<BBHBB", body, 0, P.VERSION, P.T_AUTH, counter[0], cmd, len(ints) + 8)
    for i in range(len(ints)):
        struct.pack_into("<i", body, P.HEADER_BYTES + 4 * i, ints[i])
    mac = authority.mac(role, body)
    for i in range(8):
        ints.append(struct.unpack_from("<i", mac, 4 * i)[0])
    return replies(board.feed(bytes(P.encode(bytearray(), P.T_AUTH, counter[0], cmd, ints))))[0]

hello = replies(board.feed(bytes(P.encode(bytearray(), P.T_REQUEST, 1, P.CMD_HELLO, [P.VERSION]))))[0]
print("HELLO", hello[3], hello[4])
for cmd, nargs in ((48, 1), (49, 2), (50, 0), (51, 0)):     # ADVANCE, FAULT, RESET, HEAP ids of a sim build
    print("SIM", cmd, call(cmd, [0] * nargs, auth.ROLE_BENCH)[0])
print("STATUS", call(P.CMD_STATUS, [], auth.ROLE_BENCH)[0])
print("SETUP", call(pump.CMD_SETUP, [4242, kernel.IND_MRD, 70000, 0, 0], auth.ROLE_CLINICIAN)[0])
for name in ("simboard", "simhal"):
    try:
        __import__("firmware." + name)
        print("IMPORTED", name)
    except ImportError:
        print("ABSENT", name)
'''


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[build.Compiled]]:
    out = tmp_path_factory.mktemp("production")
    assert build.main(["--production", "--out", str(out)]) == 0        # blinpump build --production
    return out, build.compile_firmware(out, production=True)


def test_production_build_leaves_out_the_simulation_modules(production: tuple[Path, list[build.Compiled]]) -> None:
    out, compiled = production
    names = sorted(p.name for p in (out / "firmware").glob("*.mpy"))
    assert "simboard.mpy" not in names and "simhal.mpy" not in names
    assert {"kernel.mpy", "main.mpy", "auth.mpy", "pump.mpy", "journal.mpy", "protocol.mpy"} <= set(names)
    assert build.check_production(compiled) == []


def test_no_production_mpy_contains_a_simulation_command(production: tuple[Path, list[build.Compiled]]) -> None:
    out, _ = production
    for mpy in (out / "firmware").glob("*.mpy"):
        data = mpy.read_bytes()
        for marker in build.SIM_MARKERS:
            assert marker not in data, "%s contains %r" % (mpy.name, marker)


def test_the_check_finds_simulation_code_in_a_simulation_build(tmp_path: Path) -> None:
    """The scan has teeth: the simulation build is flagged, by module and by content."""
    compiled = build.compile_firmware(tmp_path)
    problems = build.check_production(compiled)
    assert any("simboard.mpy is a simulation-only module" in p for p in problems)
    sim = next(c for c in compiled if c.module == "firmware.simboard")
    smuggled = build.Compiled("firmware.extra", sim.mpy_path, sim.size_bytes)   # renamed, same bytes
    assert any("CMD_ADVANCE" in p for p in build.check_production([smuggled]))


def test_production_board_answers_unknown_command_to_time_warp_and_fault_injection(
        production: tuple[Path, list[build.Compiled]]) -> None:
    out, _ = production
    r = micropython.run_script(PRODUCTION_BOARD, root=out, compile_first=False, timeout=120)
    assert r.returncode == 0, r.stdout
    lines = r.stdout.split("\n")
    assert "HELLO 0 0" in lines                    # build_kind production, max_advance_min 0
    for cmd in (48, 49, 50, 51):
        assert "SIM %d 102" % cmd in lines         # E_UNKNOWN_CMD, even from an authenticated bench
    assert "STATUS 0" in lines and "SETUP 0" in lines      # the board itself works
    assert "ABSENT simboard" in lines and "ABSENT simhal" in lines


def test_flash_copies_the_production_build_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    from blinpump.hil import cli
    assert cli.flash_main(["--port", "/dev/ttyACM0", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "build/production/firmware/kernel.mpy" in out
    # no simulation module is copied, nor kept: the board keeps only this build's files
    assert "simboard" not in out and "simhal" not in out
    assert "if name not in" in out and "os.remove(" in out


def test_the_manifest_freezes_the_production_build_and_nothing_else() -> None:
    """firmware/manifest.py, read as MicroPython's build tools run it (hil/build.py manifest_files):
    the production modules, each from its file in firmware/, and no simulation module."""
    meta, frozen = build.manifest_files(REPO / "firmware" / "manifest.py")
    production = {p.relative_to(REPO).as_posix(): p for p in build.firmware_sources(production=True)}
    generated = dict(frozen).pop(build.KERNEL_SHA_MODULE)
    assert {target: source for target, source in frozen if target != build.KERNEL_SHA_MODULE} == production
    # the frozen image names the proven kernel as the .mpy build does: the same generated module
    kernel_sha256 = build.source_hashes(production=True)["firmware/kernel.py"]
    assert generated.read_text() == build.KERNEL_SHA_SOURCE % (kernel_sha256, "")    # frozen: no kernel.mpy file
    sha_mpy = next(c for c in build.compile_firmware(production=True) if c.module == "firmware.kernel_sha")
    assert kernel_sha256.encode() in sha_mpy.mpy_path.read_bytes()
    assert not [t for t, _ in frozen if t in build.SIM_ONLY]
    assert meta["version"] == PROJECT_VERSION
    from blinpump.firmware import main as fw_main
    major, minor, patch = (int(x) for x in PROJECT_VERSION.split("."))
    assert fw_main.FIRMWARE_VERSION == major * 10000 + minor * 100 + patch     # what HELLO says
    # both sides: a manifest that would freeze the simulation board is told apart
    assert "firmware/simboard.py" not in dict(frozen) and "firmware/simboard.py" in {
        p.relative_to(REPO).as_posix() for p in build.firmware_sources()}


def test_the_mip_package_lists_the_production_build() -> None:
    doc = json.loads((REPO / "firmware" / "package.json").read_text())
    production = [p.relative_to(REPO).as_posix() for p in build.firmware_sources(production=True)]
    assert [target for target, _ in doc["urls"]] == production
    assert all((REPO / "firmware" / url).is_file() for _, url in doc["urls"])
    assert doc["version"] == PROJECT_VERSION


def test_the_manifest_is_not_a_module_of_any_build() -> None:
    for production in (False, True):
        assert "manifest" not in {c.module.split(".")[-1] for c in build.compile_firmware(production=production)}


def test_the_boot_main_of_each_build(tmp_path: Path) -> None:
    """The root main.py `blinpump flash` copies: the production build's starts the pump, and
    only the simulation build's names the simulated board."""
    (tmp_path / "p").mkdir()
    (tmp_path / "s").mkdir()
    production = build.write_boot_main(tmp_path / "p", True).read_text()
    simulation = build.write_boot_main(tmp_path / "s", False).read_text()
    assert "from firmware import main\nmain.start()" in production
    assert not [m for m in build.SIM_MARKERS if m.decode() in production]
    assert "simboard.start()" in simulation
