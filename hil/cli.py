"""`blinpump sim`, `blinpump bench`, `blinpump demo` and `blinpump flash`.

    blinpump sim [--runtime cpython|micropython|unix] [--link PATH]
    blinpump bench [--port URL] [SCENARIO ...] [--junit FILE] [--plot FILE.png] [--runtime ...] [--course]
    blinpump demo [--out DIR] [--runtime ...] [--course-cycles N]
    blinpump flash --port PORT [--with-sim] [--dry-run]
    blinpump keys new --out FILE | export --keys FILE --out keys.bin | provision --port PORT --keys FILE

Exit status: 0 done; 1 a scenario, the course, a proof or a board failed; 2 a bad invocation or bad
input, with one line on stderr naming the option or the field (`blinpump bench: error:
field=--port: ...`, `... x.json: field=steps[3].advance: ...`). Inputs are checked before a
pump is touched: scenario files in full (hil/scenarios.py), key files, output paths (--junit,
--plot, --out), then the port. A port that cannot be opened, or answers nothing like a pump within
BOOT_WAIT_S (+ the client's retries, about 5 s), is a bad --port (2); a link lost in the middle of
a run is a failed run (1).
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from blinpump.firmware import protocol as P
from blinpump.hil import build, flash, scenarios
from blinpump.hil.client import BoardRebooted, LinkError, Pump, PumpError
from blinpump.hil.micropython import MicroPythonUnavailable
from blinpump.hil.sim import RUNTIMES, SimBoard, SimError, SimLinkError
from blinpump.arguments import Parser
from blinpump.outputs import shown, why, writable_dir, writable_file

REPO = build.REPO
DEMO_INDICATION = "rr"          # the example patient of bench --course and demo: R/R, 70 kg
DEMO_WEIGHT_KG = 70.0
BOOT_WAIT_S = 5.0
EXIT_FAILED, EXIT_USAGE = 1, 2
MAX_BOARDS = 16                 # simulated boards of one bench run (--boards)


def _error(prog: str, field: str, message: object, status: int = EXIT_USAGE) -> int:
    """One line on stderr naming the option or field; returns the exit status."""
    print("%s: error: field=%s: %s" % (prog, field, " ".join(str(message).split())), file=sys.stderr)
    return status


def _failed(prog: str, message: object) -> int:
    """A run that could not finish (board, link, runtime): one line, status 1."""
    print("%s: %s" % (prog, " ".join(str(message).split())), file=sys.stderr)
    return EXIT_FAILED


def _scenario_error(prog: str, exc: scenarios.ScenarioError) -> int:
    """A ScenarioError already names its file and field (load, standard)."""
    print("%s: error: %s" % (prog, " ".join(str(exc).split())), file=sys.stderr)
    return EXIT_USAGE


# ---------------------------------------------------------------- sim

def sim_main(argv: list[str]) -> int:
    parser = Parser(prog="blinpump sim", description=(
        "Start a simulated pump behind a pseudo-terminal and print its device path (first line of "
        "stdout). Any serial tool can open it; the protocol is docs/protocol.md. Stops on Ctrl-C."))
    parser.add_argument("--runtime", choices=RUNTIMES, default="cpython",
                        help="cpython: firmware modules in this process; micropython: the mpy-cross "
                             "compiled firmware in the WebAssembly MicroPython (Node); unix: the same "
                             "files in the MicroPython unix port, on a pseudo-terminal of its own")
    parser.add_argument("--link", metavar="PATH", help="also make PATH a symlink to the device")
    args = parser.parse_args(argv)
    try:
        board = SimBoard(args.runtime, link=args.link)
    except SimLinkError as exc:
        return _error("blinpump sim", "--link", exc)
    except (SimError, build.CompileError, MicroPythonUnavailable) as exc:   # no Node, no runtime, no build
        return _failed("blinpump sim", "the board did not start: %s" % exc)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(board.path, flush=True)
    print("blinpump sim: simulated pump (%s runtime, protocol v%d) on %s%s; Ctrl-C stops it"
          % (args.runtime, P.VERSION, board.path, " (link %s)" % args.link if args.link else ""), file=sys.stderr, flush=True)
    while not stop.is_set() and board.alive():
        stop.wait(0.2)
    died = not board.alive()
    board.close()
    if died:
        print("blinpump sim: the board stopped:\n" + "\n".join(board.log), file=sys.stderr)
        return 1
    return 0


@contextlib.contextmanager
def _pump(port: str | None, runtime: str, keys: Any = "sim") -> Iterator[Pump]:
    """A Pump on `port` (signing with the key file `keys`), or on a simulated board started for
    the occasion (simulation test keys)."""
    if port is not None:
        with Pump(port, boot_wait_s=BOOT_WAIT_S, keys=keys) as p:
            yield p
        return
    with SimBoard(runtime) as board, Pump(board.path) as p:
        p.board_log = board.log             # type: ignore[attr-defined]  # the board's own messages
        yield p


# ---------------------------------------------------------------- bench

def bench_main(argv: list[str]) -> int:
    parser = Parser(prog="blinpump bench", description=(
        "Run scenarios (hil/scenarios/*.json, by id, file or clause ID; default: all) on a pump over "
        "serial; with no --port a simulated board is started. Exit status 1 if any scenario fails."))
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO")
    parser.add_argument("--port", action="append", metavar="URL",
                        help="pyserial URL of a pump (default: a simulated board); give it once per board to "
                             "run the scenarios on several at once, each scenario on the next free board")
    parser.add_argument("--boards", type=int, default=None, metavar="N",
                        help="without --port: N simulated boards at once (1..%d, default 1)" % MAX_BOARDS)
    parser.add_argument("--results", metavar="FILE.json",
                        help="write every scenario's result (board, pass, failures, steps, times) as JSON")
    parser.add_argument("--log-dir", metavar="DIR",
                        help="write one log per board: its scenarios, their failures, and a simulated "
                             "board's own messages")
    parser.add_argument("--runtime", choices=RUNTIMES, default="cpython", help="runtime of the simulated board")
    parser.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    parser.add_argument("--plot", metavar="FILE.png", help="write a timeline of every scenario as PNG "
                        "(rate, cap in force, cumulative dose, interruptions, bag changes, alarms)")
    parser.add_argument("--course", action="store_true", help="also give a whole planned R/R course")
    parser.add_argument("--list", action="store_true",
                        help="print each scenario's id, steps, clauses and what it checks, and the clauses the "
                             "kernel enforces without a scenario; run nothing")
    parser.add_argument("--keys", default="sim", metavar="FILE",
                        help="key file for authenticated commands (blinpump keys new; docs/security.md); "
                             "default: the simulation test keys, which only a simulated board accepts")
    args = parser.parse_args(argv)
    prog = "blinpump bench"
    ports = args.port or []
    if any(not port.strip() for port in ports):
        # an empty --port is a mistake (an unset variable), never a request for the simulator
        return _error(prog, "--port", "empty; give the pump's pyserial URL (e.g. /dev/ttyACM0), or leave "
                      "--port out for a simulated board")
    if len(set(ports)) != len(ports):
        return _error(prog, "--port", "%s given twice: one board, one thread" % next(
            x for x in ports if ports.count(x) > 1))
    if args.boards is not None and not 1 <= args.boards <= MAX_BOARDS:
        return _error(prog, "--boards", "%d is not in 1..%d" % (args.boards, MAX_BOARDS))
    if args.boards is not None and ports:
        return _error(prog, "--boards", "simulated boards: not with --port (give --port once per real board)")
    if (args.course or args.plot) and (len(ports) > 1 or (args.boards or 1) > 1):
        return _error(prog, "--course" if args.course else "--plot", "with one board only")
    if args.log_dir is not None:
        problem = writable_dir(args.log_dir)
        if problem:
            return _error(prog, "--log-dir", "cannot write in %s: %s" % (shown(args.log_dir), problem))
    for option, value in (("--junit", args.junit), ("--plot", args.plot), ("--results", args.results)):
        problem = None if value is None else writable_file(value)
        if problem:
            return _error(prog, option, "cannot write %s: %s" % (shown(value), problem))
    try:
        selected = scenarios.standard(args.scenarios)
    except scenarios.ScenarioError as exc:
        return _scenario_error(prog, exc)
    if args.list:
        print(scenarios.listing(selected))
        return 0
    timelines: dict[str, Any] | None = {} if args.plot else None
    from blinpump.hil import auth as host_auth
    try:
        keys = host_auth.resolve(args.keys)
    except host_auth.KeyFileError as exc:
        return _error(prog, "--keys", exc)
    from serial import SerialException
    wanted = ports or [None] * (args.boards or 1)
    boards: list[tuple[str, Pump]] = []
    with contextlib.ExitStack() as stack:
        for i, port in enumerate(wanted, 1):
            try:
                boards.append((port or "sim%d" % i, stack.enter_context(_pump(port, args.runtime, keys))))
            except LinkError:
                if port is None:
                    raise               # the simulated board of this process: not an input error
                return _error(prog, "--port", "nothing answered HELLO at %s within about %.0f s: not a pump, "
                              "not powered, or another baud rate" % (port, BOOT_WAIT_S))
            except (SerialException, OSError, ValueError, PumpError, BoardRebooted) as exc:
                if port is None:
                    raise
                # cannot be opened (SerialException is an OSError), a bad URL (ValueError), or a board
                # that does not speak this protocol (PumpError)
                return _error(prog, "--port", "no pump at %s: %s" % (port, exc))
            except (SimError, build.CompileError, MicroPythonUnavailable) as exc:
                return _failed(prog, "the simulated board did not start: %s" % exc)
        try:
            if len(boards) == 1:
                results = scenarios.run_all(boards[0][1], selected, timelines=timelines)
            else:
                results = scenarios.run_boards(boards, selected, timelines=timelines)
            course = scenarios.run_course(boards[0][1], DEMO_INDICATION, DEMO_WEIGHT_KG) if args.course else None
        except (LinkError, SerialException) as exc:
            return _failed(prog, "the link to the pump failed during the run: %s" % exc)
        sim_logs = {name: list(getattr(p, "board_log", [])) for name, p in boards}
    print(scenarios.table(results))
    if course:
        print("course: %(cycles)d cycles, %(days)d days, planned %(planned_ng)d ng, pump recorded "
              "%(course_ng)d ng, %(wall_s).1f s" % course)
    # the paths were checked before the run; the disk may have changed since
    if args.junit:
        try:
            scenarios.write_junit(results, args.junit)
        except OSError as exc:
            return _error(prog, "--junit", "cannot write %s: %s" % (args.junit, why(exc)))
    if args.results:
        try:
            Path(args.results).write_text(json.dumps(scenarios.results_json(results), indent=1) + "\n")
        except OSError as exc:
            return _error(prog, "--results", "cannot write %s: %s" % (args.results, why(exc)))
    if args.log_dir:
        try:
            _write_board_logs(Path(args.log_dir), results, sim_logs)
        except OSError as exc:
            return _error(prog, "--log-dir", "cannot write in %s: %s" % (args.log_dir, why(exc)))
    if args.plot and timelines is not None:
        from blinpump.hil.plot import plot_timelines
        try:
            print("plot: %s" % plot_timelines(timelines, args.plot))
        except OSError as exc:
            return _error(prog, "--plot", "cannot write %s: %s" % (args.plot, why(exc)))
    ok = all(r.ok for r in results) and (course is None or course["ok"])
    return 0 if ok else 1


def _write_board_logs(folder: Path, results: list[scenarios.Result], sim_logs: dict[str, list[str]]) -> None:
    """One file per board: board-<name>.log with its scenarios, in the order run, and failures."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in sorted({r.board for r in results} | set(sim_logs)):
        mine = [r for r in results if r.board in (name, "")]
        lines = ["board %s: %d scenarios, %d failed" % (name, len(mine), sum(not r.ok for r in mine))]
        lines += ["%s %s (%.2f s)%s" % ("PASS" if r.ok else "FAIL", r.scenario.id, r.wall_s,
                                         "".join("\n  " + f for f in r.failures)) for r in mine]
        lines += sim_logs.get(name, [])
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "board"
        (folder / ("board-%s.log" % safe)).write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------- demo

def _plan_text(indication: str, weight_kg: float, cycles: int | None) -> str:
    try:
        from blinpump.model.patient import Patient, parse_indication
        from blinpump.model.planner import plan_course
    except ImportError as exc:
        return "plan: skipped (model/ not importable: %s)" % exc
    course = plan_course(Patient(parse_indication(indication), weight_kg), cycles)
    lines = ["course for %s, %g kg (%s): %d cycles" % (indication, weight_kg, course.clause, len(course.cycles))]
    for c in course.cycles:
        doses = ", ".join("days %d-%d %s mcg/day (%s)" % (d.first_day, d.last_day, d.mcg_per_day, d.clause)
                          for d in c.doses)
        lines.append("  cycle %d (%s): %s; then %d days free" % (c.number, c.phase, doses, c.treatment_free_days))
    return "\n".join(lines)


def _prove() -> tuple[str, int | None]:
    """Run `blinpump prove` (verify.cli.prove_main) if verify/ provides it; (output, exit status or None)."""
    try:
        from blinpump.verify.cli import prove_main
    except ImportError as exc:
        return "prove: skipped (verify.cli.prove_main not importable: %s)" % exc, None
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            rc = int(prove_main([]) or 0)
        except SystemExit as exc:
            rc = int(exc.code or 0)
    return out.getvalue().rstrip(), rc


def demo_main(argv: list[str]) -> int:
    parser = Parser(prog="blinpump demo", description=(
        "Plan a course for an example patient (model/), prove the kernel (verify/), then run the "
        "standard scenarios over serial on the simulated boards of every runtime (CPython, the "
        "MicroPython WebAssembly port, the MicroPython unix port) and the planned course on the "
        "first, in fast-forward; writes report.md, "
        "junit.xml and timeline.png."))
    parser.add_argument("--out", default=str(REPO / "build" / "demo"), help="output directory (default build/demo)")
    parser.add_argument("--runtime", choices=RUNTIMES + ("all",), default="all",
                        help="the simulated boards: all (default: cpython, micropython (the "
                             "WebAssembly port), unix (the unix port)), or one runtime")
    parser.add_argument("--course-cycles", type=int, default=None, metavar="N",
                        help="give only the first N cycles of the course (default: all)")
    parser.add_argument("--no-prove", action="store_true", help="skip `blinpump prove`")
    args = parser.parse_args(argv)
    prog = "blinpump demo"
    problem = writable_dir(args.out)
    if problem:
        return _error(prog, "--out", "cannot write into %s: %s" % (shown(args.out), problem))
    out = Path(args.out)
    try:
        from blinpump.model.errors import ModelError
        bad_plan: tuple[type[Exception], ...] = (ModelError,)
    except ImportError:                 # _plan_text says the plan is skipped
        bad_plan = ()
    try:
        plan = _plan_text(DEMO_INDICATION, DEMO_WEIGHT_KG, args.course_cycles)
    except bad_plan as exc:             # a ModelError: the cycles clause (L2.2-course) and the reason
        return _error(prog, "--course-cycles clause=%s" % getattr(exc, "clause", "-"), getattr(exc, "message", exc))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return _error(prog, "--out", "cannot make %s: %s" % (out, why(exc)))
    t0 = time.monotonic()
    report = ["# blinpump demo", ""]

    print(plan)
    report += ["## Plan (model/)", "", "```", plan, "```", ""]

    prove_out, prove_rc = ("prove: skipped (--no-prove)", None) if args.no_prove else _prove()
    print(prove_out.splitlines()[-1] if prove_out else "prove: no output")
    report += ["## Proofs (`blinpump prove`)", "", "```", prove_out, "```",
               "exit status: %s" % ("skipped" if prove_rc is None else prove_rc), ""]

    runtimes = tuple(RUNTIMES) if args.runtime == "all" else (args.runtime,)
    results = []
    boards = []                         # (runtime, HELLO, kernel matches)
    timelines: dict[str, Any] = {}
    for runtime in runtimes:
        try:
            board = SimBoard(runtime)
        except (SimError, build.CompileError, MicroPythonUnavailable) as exc:   # no Node, no runtime
            return _failed(prog, "the %s board did not start: %s (`make setup` installs it)" % (runtime, exc))
        with board, Pump(board.path) as p:
            boards.append((runtime, p.info, p.kernel_matches()))
            ran = scenarios.run_all(p, scenarios.standard(), timelines=timelines if not results else None)
            for r in ran:
                r.board = runtime if len(runtimes) > 1 else ""
            if not results:             # the course on the first board
                course = scenarios.run_course(p, DEMO_INDICATION, DEMO_WEIGHT_KG, cycles=args.course_cycles)
            results += ran
    matches = all(m for _, _, m in boards)
    table = scenarios.table(results)
    print(table)
    course_line = ("course over serial: %(cycles)d cycles, %(days)d simulated days in %(wall_s).1f s; planned "
                   "%(planned_ng)d ng, pump recorded %(course_ng)d ng: %(verdict)s"
                   % dict(course, verdict="OK" if course["ok"] else "MISMATCH"))
    print(course_line)
    try:                                # --out was checked first; the disk may have changed since
        scenarios.write_junit(results, out / "junit.xml", suite="blinpump.demo")
        try:
            from blinpump.hil.plot import plot_timelines
            plot = str(plot_timelines(timelines, out / "timeline.png",
                                      title="blinpump demo: standard scenarios (%s runtime)" % runtimes[0]))
        except ImportError as exc:          # matplotlib is a dependency, but the demo does not need it
            plot = "skipped (%s)" % exc
        report += ["## Simulated boards", ""]
        report += ["- %s runtime, protocol v%d, firmware %d, %s build, kernel sha256 %s (%s this repository)"
                   % (runtime, hello["protocol_version"], hello["firmware_version"], hello["build"],
                      hello["kernel_sha256"][:16], "matches" if m else "DOES NOT MATCH")
                   for runtime, hello, m in boards]
        report += ["", "## Scenarios over serial", "", "```", table, "```", "",
                   "Timeline of the %s board (rate, cap in force, cumulative dose, interruptions, bag "
                   "changes, alarms): %s" % (runtimes[0], "[timeline.png](timeline.png)" if plot.endswith(".png")
                                             else plot), "",
                   "## Course (%s board)" % runtimes[0], "", course_line, ""]
        ok = all(r.ok for r in results) and course["ok"] and matches and prove_rc in (None, 0)
        report.append("Result: %s (%.1f s)" % ("PASS" if ok else "FAIL", time.monotonic() - t0))
        (out / "report.md").write_text("\n".join(report) + "\n")
        (out / "course.json").write_text(json.dumps(course, indent=2) + "\n")
    except OSError as exc:
        return _error(prog, "--out", "cannot write into %s: %s" % (out, why(exc)))
    print("blinpump demo: %s; report %s, JUnit %s, timeline %s"
          % ("PASS" if ok else "FAIL", out / "report.md", out / "junit.xml", plot))
    return 0 if ok else 1


# ---------------------------------------------------------------- flash

from blinpump.hil.flash import compare_hashes, flash_main  # noqa: E402,F401  (blinpump flash)


# ---------------------------------------------------------------- keys

def keys_main(argv: list[str]) -> int:
    """Key provisioning (docs/security.md): make keys, export the board's keys.bin, put it on a board."""
    from blinpump.hil import auth as host_auth
    parser = Parser(prog="blinpump keys", description=(
        "Keys for authenticated commands (HMAC-SHA256, docs/security.md). The host keeps a JSON key "
        "file (mode 0600); the board gets keys.bin on its flash over USB, never over the pump link."))
    sub = parser.add_subparsers(dest="action", required=True)
    new = sub.add_parser("new", help="make random keys and write the host's key file")
    new.add_argument("--out", required=True, help="key file to write (JSON, mode 0600)")
    new.add_argument("--roles", default="pharmacy,clinician,bench",
                     help="comma-separated roles (default %(default)s)")
    new.add_argument("--force", action="store_true", help="overwrite an existing key file")
    export = sub.add_parser("export", help="write the board's keys.bin from a key file")
    export.add_argument("--keys", required=True)
    export.add_argument("--out", required=True)
    prov = sub.add_parser("provision", help="copy keys.bin to a board with mpremote (its replay counters are kept)")
    prov.add_argument("--port", required=True)
    prov.add_argument("--keys", required=True)
    prov.add_argument("--dry-run", action="store_true", help="print the mpremote commands only")
    prov.add_argument("--reset-counters", action="store_true",
                      help="also erase the board's replay counters: only to recover a board whose counter "
                           "record is corrupt, and only with keys never provisioned before (blinpump keys new); "
                           "refused when the board already has these keys")
    flash.pump_check_options(prov)
    prov.add_argument("--mpremote", default=None, help=argparse.SUPPRESS)   # tests: a stand-in
    args = parser.parse_args(argv)
    prog = "blinpump keys"
    if args.action in ("new", "export"):
        problem = writable_file(args.out)
        if problem:
            return _error(prog, "--out", "cannot write %s: %s" % (shown(args.out), problem))
    if args.action == "new":
        roles = tuple(r.strip() for r in args.roles.split(",") if r.strip())
        unknown = [r for r in roles if r not in host_auth.ROLES]
        if unknown or not roles:
            return _error(prog, "--roles", "unknown role %s (pharmacy, clinician, bench)"
                          % ", ".join(unknown or ["(none)"]))
        if os.path.lexists(args.out) and not args.force:
            return _error(prog, "--out", "%s exists; --force to replace it (boards provisioned with it "
                          "would no longer accept this host)" % args.out)
        try:
            host_auth.save_keys(args.out, host_auth.new_keys(roles))
        except OSError as exc:
            return _error(prog, "--out", "cannot write %s: %s" % (args.out, why(exc)))
        print("blinpump keys: wrote %s (%s, mode 0600)" % (args.out, ", ".join(roles)))
        return 0
    if args.action == "provision" and not args.port.strip():
        return _error(prog, "--port", "empty; give the board's serial port (e.g. /dev/ttyACM0)")
    try:
        keys = host_auth.load_keys(args.keys)
    except host_auth.KeyFileError as exc:
        return _error(prog, "--keys", exc)
    if args.action == "export":
        try:        # keys.bin holds the secret keys in the clear: owner only, like the key file
            host_auth.write_private(args.out, host_auth.board_file(keys))
        except OSError as exc:
            return _error(prog, "--out", "cannot write %s: %s" % (args.out, why(exc)))
        print("blinpump keys: wrote %s (%d keys, mode 0600)" % (args.out, len(keys)))
        return 0
    return flash.provision(args, host_auth.board_file(keys))
