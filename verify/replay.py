"""Replay a counterexample trace against the kernel and show the violation there.

A trace (JSON) names the kernel file and its SHA-256, the property, the initial state (every
field) and the steps (entry point and inputs by parameter name):

    {"kernel": "firmware/kernel.py", "kernel_sha256": "...", "property": "rate-cap",
     "kind": "bmc" | "induction-step",
     "initial": {"mode": 0, ...}, "steps": [{"entry": "setup", "args": {"patient_id": 1, ...}}, ...]}

For "bmc" traces the initial state is `State()`; for "induction-step" traces it is the
arbitrary state (satisfying the strengthening invariant) that the induction step found.

Runtimes:
- `cpython`: imports the kernel module from the trace's path, sets the fields, calls the entry
  points, and evaluates the property on the concrete states after every step;
- `micropython`: runs a generated script under the real MicroPython WebAssembly runtime
  (hil/micropython.py) with the kernel compiled by mpy-cross and imported as
  `from firmware import kernel`; the script prints each state and return value, and the
  property is evaluated on those states on the host (the same Python code as on CPython);
- `interpreted`: the verifier's own concrete interpretation of the subset (for diagnostics);
- `serial`: the trace's entry points as commands to a pump over serial, compared step by step
  with the CPython replay (hil/serial_replay.py).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .subset import Kernel, load_kernel

if TYPE_CHECKING:
    from .properties import Property

# properties and symexec import Z3 (a fifth of a second): they are imported where a trace is
# evaluated, so that a trace with a broken shape is refused at once

REPO = Path(__file__).resolve().parent.parent
OBSERVER = REPO / "model" / "observer.py"
OBSERVER_PREFIX, OBSERVER_STATUS = "o_", "o_status"     # verify/relation.py
OBSERVER_PROPERTIES = ("label-relation", "label-exact")


def kernel_initial(doc: dict[str, Any]) -> dict[str, Any]:
    """The kernel's part of a trace's initial state (a product trace also sets o_* fields)."""
    return {k: v for k, v in doc["initial"].items() if not k.startswith(OBSERVER_PREFIX)}


def uses_observer(doc: dict[str, Any]) -> bool:
    return doc["property"] in OBSERVER_PROPERTIES or any(k.startswith(OBSERVER_PREFIX) for k in doc["initial"])


def observer_states(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The label observer (model/observer.py) run on CPython over the trace's inputs: its state
    before and after every step (fields prefixed o_) and its answer (o_status). The observer is
    the label's side of the comparison: it runs beside whichever runtime runs the kernel."""
    observer = load_kernel(OBSERVER)
    mod = load_module(OBSERVER)
    names = observer.field_names
    s = mod.State()
    status = 0
    for k, v in doc["initial"].items():
        if k == OBSERVER_STATUS:
            status = v
        elif k.startswith(OBSERVER_PREFIX):
            setattr(s, k[len(OBSERVER_PREFIX):], v)

    def snap(ret: Any) -> dict[str, Any]:
        out = {OBSERVER_PREFIX + n: _ival(getattr(s, n)) for n in names}
        out[OBSERVER_STATUS] = _ival(ret)
        return out
    out = [snap(status)]
    for stp in doc["steps"]:
        args = [stp["args"][p] for p in observer.entry_params(stp["entry"])]
        out.append(snap(getattr(mod, stp["entry"])(s, *args)))
    return out


def _with_observer(doc: dict[str, Any], states: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not uses_observer(doc):
        return states
    for st, ob in zip(states, observer_states(doc)):
        st.update(ob)
    return states


class ReplayError(RuntimeError):
    pass


def resolve_kernel_path(path: str) -> Path:
    p = Path(path)
    if p.is_absolute():
        return p
    for base in (Path.cwd(), REPO):
        if (base / p).is_file():
            return base / p
    return REPO / p


# A trace's arguments travel in 32-bit frames to a board (docs/protocol.md): nothing else can reach
# the kernel there, so a trace that needs a larger one is not a trace of the pump.
INT32_MIN, INT32_MAX = -2 ** 31, 2 ** 31 - 1
TRACE_KINDS = ("bmc", "induction-step")
RUNTIMES = ("cpython", "micropython", "interpreted", "serial")
# a sanity bound on a state field before the kernel is known; check_trace holds each field to its
# own documented range (the widest is [-1, 1000000000])
FIELD_LIMIT = 2 ** 62


def _bad(field: str, message: str) -> ReplayError:
    return ReplayError("field=%s: %s" % (field, message))


def _int_value(field: str, v: Any, lo: int = INT32_MIN, hi: int = INT32_MAX) -> int:
    """v if it is a JSON integer in [lo, hi] (true/false, 1.0, "1" and null are not)."""
    if type(v) is not int:
        raise _bad(field, "%s is not an integer" % json.dumps(v)[:40])
    if not lo <= v <= hi:
        raise _bad(field, "%d is out of range [%d, %d]" % (v, lo, hi))
    return v


def load_trace(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The trace at `path`, its shape checked: every error names the field (`steps[2].args.weight_g`)."""
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as exc:
        raise _bad("trace", "cannot read %s: %s" % (path, exc.strerror or exc)) from None
    except (ValueError, RecursionError) as exc:      # not UTF-8, not JSON, nested beyond the parser
        raise _bad("trace", "%s is not a JSON trace: %s" % (path, str(exc).splitlines()[0] if str(exc) else
                                                            type(exc).__name__)) from None
    if not isinstance(doc, dict):
        raise _bad("trace", "%s holds %s, not a trace object" % (path, "null" if doc is None else
                                                                 "a list" if isinstance(doc, list) else
                                                                 "a %s" % type(doc).__name__))
    for key in ("kernel", "property", "initial", "steps"):
        if key not in doc:
            raise _bad(key, "missing in trace %s" % path)
    for key in ("kernel", "property"):
        if not isinstance(doc[key], str) or not doc[key]:
            raise _bad(key, "%s is not a non-empty string" % json.dumps(doc[key])[:40])
    if "kind" in doc and doc["kind"] not in TRACE_KINDS:
        raise _bad("kind", "%s is not one of %s" % (json.dumps(doc["kind"])[:40], ", ".join(TRACE_KINDS)))
    if "kernel_sha256" in doc and not isinstance(doc["kernel_sha256"], str):
        raise _bad("kernel_sha256", "not a string")
    if not isinstance(doc["initial"], dict):
        raise _bad("initial", "not an object {field: integer}")
    for name, v in doc["initial"].items():
        _int_value("initial.%s" % name, v, -FIELD_LIMIT, FIELD_LIMIT)
    if not isinstance(doc["steps"], list):
        raise _bad("steps", "not a list of steps")
    for i, stp in enumerate(doc["steps"]):
        where = "steps[%d]" % i
        if not isinstance(stp, dict):
            raise _bad(where, "not an object {entry, args}")
        if not isinstance(stp.get("entry"), str):
            raise _bad(where + ".entry", "missing or not a string")
        args = stp.setdefault("args", {})
        if not isinstance(args, dict):
            raise _bad(where + ".args", "not an object {parameter: integer}")
        for name, v in args.items():
            _int_value("%s.args.%s" % (where, name), v)
    return doc


def check_trace(doc: dict[str, Any], kernel: Kernel) -> None:
    """The trace (load_trace's shape) fits this kernel: its property, fields with their
    documented ranges, entry points and their parameters. Raises ReplayError naming the field."""
    from .properties import by_id
    try:
        by_id([doc["property"]])
    except KeyError as exc:
        raise _bad("property", exc.args[0]) from None
    names = kernel.field_names
    observer = load_kernel(OBSERVER) if uses_observer(doc) else None
    for name, v in doc["initial"].items():
        if observer is not None and name == OBSERVER_STATUS:
            _int_value("initial.%s" % name, v, 0, 255)
            continue
        if observer is not None and name.startswith(OBSERVER_PREFIX):
            if name[len(OBSERVER_PREFIX):] not in observer.field_names:
                raise _bad("initial.%s" % name, "not a field of the label observer's State (%s)" % observer.path)
            f = observer.field(name[len(OBSERVER_PREFIX):])
        elif name not in names:
            raise _bad("initial.%s" % name, "not a field of State in %s" % kernel.path)
        else:
            f = kernel.field(name)
        _int_value("initial.%s" % name, v, f.lo, f.hi)
    for i, stp in enumerate(doc["steps"]):
        where = "steps[%d]" % i
        entry = stp["entry"]
        if entry not in kernel.entries:
            raise _bad(where + ".entry", "%r is not an entry point of %s" % (entry[:40], kernel.path))
        params = kernel.entry_params(entry)
        for p in params:
            if p not in stp["args"]:
                raise _bad("%s.args.%s" % (where, p), "missing (%s takes %s)" % (entry, ", ".join(params)))
        for p in stp["args"]:
            if p not in params:
                raise _bad("%s.args.%s" % (where, p[:40]), "not a parameter of %s (%s)" % (entry, ", ".join(params)))


def load_module(path: str | os.PathLike[str]) -> ModuleType:
    p = Path(path).resolve()
    digest = hashlib.sha256(p.read_bytes()).hexdigest()[:16]
    name = "blinpump_replayed_kernel_%s" % digest
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, p)
    if spec is None or spec.loader is None:
        raise ReplayError("cannot import %s" % p)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _ival(v: Any) -> Any:
    if isinstance(v, bool):
        return int(v)
    return v


def _snapshot(state: Any, names: list[str]) -> dict[str, Any]:
    return {n: _ival(getattr(state, n)) for n in names}


class _Evaluator:
    """Evaluates a property (ordinary or special) on concrete pre/post states."""

    def __init__(self, kernel: Kernel, prop_id: str, prop: Property | None):
        from .properties import by_id
        from .symexec import Translator
        self.k = kernel
        self.prop = prop or by_id([prop_id])[0]
        self.tr = Translator(kernel)

    def failing(self, pre: dict[str, Any], post: dict[str, Any], entry: str, args: dict[str, Any],
                ret: Any) -> list[str]:
        from .properties import S, Step
        from .symexec import range_conjuncts
        p = self.prop
        if p.special == "invariant":
            out = ["post: %s" % text for _, text, v in range_conjuncts(self.k, post) if not v]
            out += ["post: invariant: %s" % text for _, text, v in self.tr.invariant_conjuncts(post) if not v]
            return out
        if p.special == "relation":
            from .relation import conjuncts
            return ["post: relation: %s" % text for text, v in conjuncts(post) if not v]
        if p.special == "obligations":
            r = self.tr.run(entry, pre, args)
            return ["line %d: %s" % (o.line, o.what) for o in r.obligations if o.cond is False]
        return p.failing(S(pre), S(post), Step(entry, args, _ival(ret)))

    def failing_initial(self, s: dict[str, Any]) -> list[str]:
        from .properties import S
        p = self.prop
        if p.special:
            return []
        return p.failing_state(S(s))


def _result(runtime: str, doc: dict[str, Any], states: list[dict[str, Any]], rets: list[Any],
            ev: _Evaluator, note: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"runtime": runtime, "property": doc["property"], "violated": False, "step": None,
                           "failing_checks": [], "states": states, "returns": rets, "note": note}
    init_fail = ev.failing_initial(states[0])
    if init_fail and doc.get("kind") == "bmc" and not doc["steps"]:
        out.update(violated=True, step=0, failing_checks=init_fail)
        return out
    for i, stp in enumerate(doc["steps"]):
        if i + 1 >= len(states):
            break
        fails = ev.failing(states[i], states[i + 1], stp["entry"], dict(stp.get("args", {})), rets[i])
        if fails:
            out.update(violated=True, step=i + 1, failing_checks=fails)
            break
    return out


def _check_sha(doc: dict[str, Any], path: Path) -> str:
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    want = doc.get("kernel_sha256")
    if want and want != sha:
        return "warning: kernel %s has SHA-256 %s, the trace was made for %s" % (path, sha, want)
    return ""


def replay_cpython(doc: dict[str, Any], kernel_path: str | os.PathLike[str] | None = None,
                   prop: Property | None = None) -> dict[str, Any]:
    path = Path(kernel_path) if kernel_path else resolve_kernel_path(doc["kernel"])
    kernel = load_kernel(path)
    note = _check_sha(doc, path)
    mod = load_module(path)
    names = kernel.field_names
    s = mod.State()
    for f, v in kernel_initial(doc).items():
        if f not in names:
            raise ReplayError("trace sets %r, which is not a field of State" % f)
        setattr(s, f, v)
    states = [_snapshot(s, names)]
    rets: list[Any] = []
    for stp in doc["steps"]:
        fn = getattr(mod, stp["entry"], None)
        if fn is None or stp["entry"] not in kernel.entries:
            raise ReplayError("trace calls %r, which is not an entry point of %s" % (stp["entry"], path))
        args = [stp["args"][p] for p in kernel.entry_params(stp["entry"])]
        rets.append(_ival(fn(s, *args)))
        states.append(_snapshot(s, names))
    states = _with_observer(doc, states)
    return _result("cpython", doc, states, rets, _Evaluator(kernel, doc["property"], prop), note)


def replay_interpreted(kernel: Kernel, prop: Property, trace: dict[str, Any]) -> dict[str, Any]:
    from .symexec import Translator, as_int
    kernel = getattr(kernel, "kernel", kernel)      # a product's kernel part (verify/product.py)
    tr = Translator(kernel)
    cur = dict(kernel.initial)          # State(), then the fields the trace sets (as on CPython)
    cur.update(kernel_initial(trace))
    states = [dict(cur)]
    rets: list[Any] = []
    for stp in trace["steps"]:
        r = tr.run(stp["entry"], cur, dict(stp["args"]))
        cur = {f: as_int(v) for f, v in r.fields.items()}
        rets.append(as_int(r.ret) if r.ret is not None else None)
        states.append(dict(cur))
    doc = {"property": prop.id, "steps": trace["steps"], "kind": trace.get("kind", ""), "initial": trace["initial"]}
    states = _with_observer(doc, states)
    return _result("interpreted", doc, states, rets, _Evaluator(kernel, prop.id, prop))


def micropython_script(kernel: Kernel, doc: dict[str, Any]) -> str:
    """A MicroPython script that sets the state, runs the steps and prints every state."""
    names = kernel.field_names
    lines = ["from firmware import kernel as K",
             "F = %r" % names,
             "s = K.State()"]
    for f, v in kernel_initial(doc).items():
        lines.append("s.%s = %d" % (f, int(v)))
    lines += ["def snap():",
              "    return [int(getattr(s, f)) for f in F]",
              "def ret(r):",
              "    return 'null' if r is None else str(int(r))",
              "print('STATE', snap())"]
    for stp in doc["steps"]:
        args = ", ".join(str(int(stp["args"][p])) for p in kernel.entry_params(stp["entry"]))
        lines.append("print('RET', ret(K.%s(s%s)))" % (stp["entry"], (", " + args) if args else ""))
        lines.append("print('STATE', snap())")
    lines.append("print('END')")
    return "\n".join(lines) + "\n"


def replay_micropython(doc: dict[str, Any], kernel_path: str | os.PathLike[str] | None = None,
                       prop: Property | None = None) -> dict[str, Any]:
    try:
        from blinpump.hil import micropython as mp  # written by the HIL engineer
    except ImportError as exc:
        raise ReplayError("MicroPython replay needs hil/micropython.py (run_script), which is missing: %s" % exc) from None
    if not hasattr(mp, "run_script"):
        raise ReplayError("hil/micropython.py has no run_script(code, root=...): MicroPython replay is unavailable")
    path = Path(kernel_path) if kernel_path else resolve_kernel_path(doc["kernel"])
    kernel = load_kernel(path)
    note = _check_sha(doc, path)
    script = micropython_script(kernel, doc)
    landed = (REPO / "firmware" / "kernel.py").resolve()
    if path.resolve() == landed:
        res = mp.run_script(script)
    else:
        # compile this kernel (e.g. a mutant) on its own as firmware/kernel.mpy
        from blinpump.hil import build
        with tempfile.TemporaryDirectory(prefix="blinpump-replay-") as tmp:
            src = Path(tmp) / "src" / "firmware"
            src.mkdir(parents=True)
            (src / "__init__.py").write_text("")
            shutil.copyfile(path, src / "kernel.py")
            out = Path(tmp) / "out"
            build.compile_firmware(out, Path(tmp) / "src")
            res = mp.run_script(script, root=out, compile_first=False)
    rc, output = res[0], res[1]
    states: list[dict[str, Any]] = []
    rets: list[Any] = []
    ended = False
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("STATE "):
            states.append(dict(zip(kernel.field_names, json.loads(line[6:]))))
        elif line.startswith("RET "):
            v = line[4:]
            rets.append(None if v == "null" else int(v))
        elif line == "END":
            ended = True
    if rc != 0 or not ended:
        raise ReplayError("MicroPython run failed (exit %d):\n%s" % (rc, output))
    states = _with_observer(doc, states)
    return _result("micropython", doc, states, rets, _Evaluator(kernel, doc["property"], prop), note)


def replay(doc: dict[str, Any], runtime: str = "cpython", kernel_path: str | os.PathLike[str] | None = None,
           **board: Any) -> dict[str, Any]:
    """`board`: for the serial runtime, port, keys and sim_runtime (hil/serial_replay.py)."""
    from .properties import by_id
    if runtime not in RUNTIMES:
        raise ReplayError("unknown runtime %r (%s)" % (runtime, ", ".join(RUNTIMES)))
    path = Path(kernel_path) if kernel_path else resolve_kernel_path(doc["kernel"])
    if not path.is_file():
        raise _bad("--kernel" if kernel_path else "kernel", "no kernel at %s" % path)
    kernel = load_kernel(path)
    check_trace(doc, kernel)
    if runtime == "cpython":
        return replay_cpython(doc, path)
    if runtime == "micropython":
        return replay_micropython(doc, path)
    if runtime == "serial":
        from blinpump.hil.serial_replay import replay_serial
        return replay_serial(doc, path, **board)
    return replay_interpreted(kernel, by_id([doc["property"]])[0], doc)


def describe(doc: dict[str, Any], rep: dict[str, Any]) -> str:
    """A human-readable account of a replay."""
    if rep["runtime"] == "serial":
        from blinpump.hil.serial_replay import describe as describe_serial
        return describe_serial(doc, rep)
    lines = ["trace: property %s, %s, %d step(s), kernel %s" % (doc["property"], doc.get("kind", "?"),
                                                                len(doc["steps"]), doc["kernel"])]
    if rep.get("note"):
        lines.append(rep["note"])
    states = rep["states"]
    for i, stp in enumerate(doc["steps"]):
        args = ", ".join("%s=%s" % kv for kv in stp.get("args", {}).items())
        ret = rep["returns"][i] if i < len(rep["returns"]) else "?"
        lines.append("  step %d: %s(%s) -> %s" % (i + 1, stp["entry"], args, ret))
        if i + 1 < len(states):
            changed = ["%s %s->%s" % (f, states[i][f], states[i + 1][f]) for f in states[i] if states[i][f] != states[i + 1][f]]
            if changed:
                lines.append("          " + ", ".join(changed))
    if rep["violated"]:
        lines.append("VIOLATED on %s at step %d:" % (rep["runtime"], rep["step"]))
        for c in rep["failing_checks"]:
            lines.append("  - " + c)
    else:
        lines.append("not violated on %s" % rep["runtime"])
    return "\n".join(lines)
