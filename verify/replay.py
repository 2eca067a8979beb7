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
- `interpreted`: the verifier's own concrete interpretation of the subset (for diagnostics).
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
from typing import Any

from .properties import Property, S, Step, by_id
from .subset import Kernel, load_kernel
from .symexec import Translator, as_int, range_conjuncts

REPO = Path(__file__).resolve().parent.parent


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


def load_trace(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ReplayError("cannot read trace %s: %s" % (path, exc)) from None
    for key in ("kernel", "property", "initial", "steps"):
        if key not in doc:
            raise ReplayError("trace %s has no %r" % (path, key))
    return doc


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
        self.k = kernel
        self.prop = prop or by_id([prop_id])[0]
        self.tr = Translator(kernel)

    def failing(self, pre: dict[str, Any], post: dict[str, Any], entry: str, args: dict[str, Any],
                ret: Any) -> list[str]:
        p = self.prop
        if p.special == "invariant":
            out = ["post: %s" % text for _, text, v in range_conjuncts(self.k, post) if not v]
            out += ["post: invariant: %s" % text for _, text, v in self.tr.invariant_conjuncts(post) if not v]
            return out
        if p.special == "obligations":
            r = self.tr.run(entry, pre, args)
            return ["line %d: %s" % (o.line, o.what) for o in r.obligations if o.cond is False]
        return p.failing(S(pre), S(post), Step(entry, args, _ival(ret)))

    def failing_initial(self, s: dict[str, Any]) -> list[str]:
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
    for f, v in doc["initial"].items():
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
    return _result("cpython", doc, states, rets, _Evaluator(kernel, doc["property"], prop), note)


def replay_interpreted(kernel: Kernel, prop: Property, trace: dict[str, Any]) -> dict[str, Any]:
    tr = Translator(kernel)
    cur = dict(trace["initial"])
    states = [dict(cur)]
    rets: list[Any] = []
    for stp in trace["steps"]:
        r = tr.run(stp["entry"], cur, dict(stp["args"]))
        cur = {f: as_int(v) for f, v in r.fields.items()}
        rets.append(as_int(r.ret) if r.ret is not None else None)
        states.append(dict(cur))
    doc = {"property": prop.id, "steps": trace["steps"], "kind": trace.get("kind", "")}
    return _result("interpreted", doc, states, rets, _Evaluator(kernel, prop.id, prop))


def micropython_script(kernel: Kernel, doc: dict[str, Any]) -> str:
    """A MicroPython script that sets the state, runs the steps and prints every state."""
    names = kernel.field_names
    lines = ["from firmware import kernel as K",
             "F = %r" % names,
             "s = K.State()"]
    for f, v in doc["initial"].items():
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
    return _result("micropython", doc, states, rets, _Evaluator(kernel, doc["property"], prop), note)


def replay(doc: dict[str, Any], runtime: str = "cpython", kernel_path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    if runtime == "cpython":
        return replay_cpython(doc, kernel_path)
    if runtime == "micropython":
        return replay_micropython(doc, kernel_path)
    if runtime == "interpreted":
        path = Path(kernel_path) if kernel_path else resolve_kernel_path(doc["kernel"])
        kernel = load_kernel(path)
        return replay_interpreted(kernel, by_id([doc["property"]])[0], doc)
    raise ReplayError("unknown runtime %r (cpython, micropython, interpreted)" % runtime)


def describe(doc: dict[str, Any], rep: dict[str, Any]) -> str:
    """A human-readable account of a replay."""
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
