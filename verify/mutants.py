"""Mutation adequacy: seeded bugs in the kernel's source must turn the proof red.

Mutants are made as edits of the source text (comments and layout kept, so line numbers stay
those of the landed kernel), written to temporary files and proved with the same engine:

- CMP    a comparison flipped: < <-> <=, > <-> >=, == <-> !=
- CONST  a constant shifted by +1 and by -1: module constants (not the status codes E_*/OK)
         and integer literals in function bodies
- RMIF   an `if` check removed (an `if` without else/elif)
- RMRET  a `return` inside an `if` removed (the code falls through)
- ANDOR  `and` <-> `or`
- RMSET  an assignment to a state field removed

`invariant(s)` and `State.__init__` are not mutated (they are the proof's statement and the
initial state, not behaviour). A mutant is *caught* when some property is falsified or not
proved. A surviving mutant is checked for equivalence: if every entry point gives the same
post-state and return value as the landed kernel for every state satisfying the landed
kernel's proven invariant (hence for every reachable state), it is *equivalent*; otherwise it
goes on the review list (its behaviour differs in a way no property observes).
Every solver call here has a Z3 resource limit (engine.CHECK_RLIMIT), not a time-out, so a
mutant gets the same verdict on an idle and on a loaded machine.
"""
from __future__ import annotations

import ast
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import z3

from .subset import INVARIANT, SubsetError, load_kernel

_FLIP = {ast.Lt: "<=", ast.LtE: "<", ast.Gt: ">=", ast.GtE: ">", ast.Eq: "!=", ast.NotEq: "=="}
_OPTXT = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}


@dataclass
class Mutant:
    id: int
    operator: str
    line: int
    description: str
    start: int          # byte offsets of the replaced span
    end: int
    replacement: str

    def apply(self, source: bytes) -> bytes:
        return source[: self.start] + self.replacement.encode() + source[self.end:]


class _Offsets:
    def __init__(self, src: bytes):
        self.starts = [0]
        for i, b in enumerate(src):
            if b == 10:
                self.starts.append(i + 1)

    def __call__(self, line: int, col: int) -> int:
        return self.starts[line - 1] + col


def _node_span(off: _Offsets, node: ast.AST) -> tuple[int, int]:
    return off(node.lineno, node.col_offset), off(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]


def generate(source: str) -> list[Mutant]:
    src = source.encode()
    tree = ast.parse(source)
    off = _Offsets(src)
    out: list[Mutant] = []

    def add(op: str, line: int, desc: str, start: int, end: int, repl: str) -> None:
        # keep the line count: a removed multi-line statement leaves blank lines
        repl += "\n" * src[start:end].count(b"\n")
        out.append(Mutant(len(out), op, line, desc, start, end, repl))

    # module constants
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            name = stmt.targets[0].id
            if name == "OK" or name.startswith("E_"):
                continue
            v = stmt.value
            lit = v.operand if isinstance(v, ast.UnaryOp) else v
            if not (isinstance(lit, ast.Constant) and type(lit.value) is int):
                continue
            value = -lit.value if isinstance(v, ast.UnaryOp) else lit.value
            a, b = _node_span(off, v)
            for d in (1, -1):
                add("CONST", stmt.lineno, "%s = %d (was %d)" % (name, value + d, value), a, b, str(value + d))

    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name != INVARIANT]
    for fn in funcs:
        parents: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(fn):
            for child in ast.iter_child_nodes(node):
                parents[child] = node
        for node in ast.walk(fn):
            if isinstance(node, ast.Compare):
                left = node.left
                for op, comp in zip(node.ops, node.comparators):
                    a = off(left.end_lineno, left.end_col_offset)  # type: ignore[arg-type]
                    b = off(comp.lineno, comp.col_offset)
                    seg = src[a:b].decode()
                    t = _OPTXT.get(type(op))
                    if t and seg.count(t) >= 1 and type(op) in _FLIP:
                        i = seg.index(t) if t not in ("<", ">") else _find_bare(seg, t)
                        if i >= 0:
                            add("CMP", node.lineno, "%s: '%s' -> '%s' in %s" % (fn.name, t, _FLIP[type(op)],
                                                                               _short(ast.unparse(node))),
                                a + i, a + i + len(t), _FLIP[type(op)])
                    left = comp
            elif isinstance(node, ast.Constant) and type(node.value) is int and not isinstance(parents.get(node), ast.UnaryOp):
                a, b = _node_span(off, node)
                for d in (1, -1):
                    add("CONST", node.lineno, "%s: literal %d -> %d" % (fn.name, node.value, node.value + d), a, b,
                        str(node.value + d))
            elif (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant)
                  and type(node.operand.value) is int):
                a, b = _node_span(off, node)
                v = -node.operand.value
                for d in (1, -1):
                    add("CONST", node.lineno, "%s: literal %d -> %d" % (fn.name, v, v + d), a, b, "(%d)" % (v + d))
            elif isinstance(node, ast.BoolOp) and len(node.values) >= 2:
                x, y = node.values[0], node.values[1]
                a = off(x.end_lineno, x.end_col_offset)  # type: ignore[arg-type]
                b = off(y.lineno, y.col_offset)
                seg = src[a:b].decode()
                word = "and" if isinstance(node.op, ast.And) else "or"
                i = _find_word(seg, word)
                if i >= 0:
                    other = "or" if word == "and" else "and"
                    add("ANDOR", node.lineno, "%s: '%s' -> '%s' in %s" % (fn.name, word, other, _short(ast.unparse(node))),
                        a + i, a + i + len(word), other)
            elif isinstance(node, ast.If) and not node.orelse and not _is_elif(src, off, node, parents):
                a = off(node.lineno, node.col_offset)
                b = off(node.end_lineno, node.end_col_offset)  # type: ignore[arg-type]
                add("RMIF", node.lineno, "%s: removed 'if %s'" % (fn.name, _short(ast.unparse(node.test))), a, b, "pass")
            elif isinstance(node, ast.Return) and isinstance(parents.get(node), ast.If):
                a, b = _node_span(off, node)
                add("RMRET", node.lineno, "%s: removed '%s'" % (fn.name, _short(ast.unparse(node))), a, b, "pass")
            elif (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Attribute)
                  and isinstance(node.targets[0].value, ast.Name) and node.targets[0].value.id == "s"):
                a, b = _node_span(off, node)
                add("RMSET", node.lineno, "%s: removed '%s'" % (fn.name, _short(ast.unparse(node))), a, b, "pass")
    return out


def _short(text: str, n: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."


def _find_bare(seg: str, op: str) -> int:
    """Index of '<' or '>' that is not part of '<=', '>='."""
    for i, ch in enumerate(seg):
        if ch == op and (i + 1 >= len(seg) or seg[i + 1] != "="):
            return i
    return -1


def _find_word(seg: str, word: str) -> int:
    import re
    m = re.search(r"(?<![A-Za-z0-9_])%s(?![A-Za-z0-9_])" % word, seg)
    return m.start() if m else -1


def _is_elif(src: bytes, off: _Offsets, node: ast.If, parents: dict[ast.AST, ast.AST]) -> bool:
    p = parents.get(node)
    if isinstance(p, ast.If) and p.orelse == [node]:
        a = off(node.lineno, node.col_offset)
        return src[max(0, a - 5): a + 4].decode(errors="replace").lstrip().startswith("elif") or \
            src[a: a + 4] == b"elif"
    return False


# ------------------------------------------------------------------ proving mutants
def prove_quick(path: str, bmc_depth: int = 0) -> dict[str, Any]:
    """Prove a kernel, stopping at the first property not proved. Returns caught/status/seconds."""
    from .engine import PROVED, Engine
    t0 = time.time()
    try:
        kernel = load_kernel(path)
    except SubsetError as exc:
        return {"valid": False, "caught": False, "seconds": time.time() - t0, "reason": str(exc).splitlines()[0]}
    eng = Engine(kernel, depth=bmc_depth, max_k=1, replay_check=bmc_depth > 0)
    eng.strengthen()
    first = None
    status = PROVED
    for p in eng.props:
        r = eng._prove_one(p)
        if r.status != PROVED:
            first, status = p.id, r.status
            break
    return {"valid": True, "caught": first is not None, "by": first, "status": status,
            "seconds": time.time() - t0, "dropped": len(eng.dropped)}


def equivalent(orig_path: str, mut_path: str) -> bool:
    """True if the mutant behaves exactly like the original on every state satisfying the
    original's proven invariant (hence on every reachable state), for every entry point."""
    from .engine import Engine
    from .symexec import Translator
    orig = load_kernel(orig_path)
    mut = load_kernel(mut_path)
    eng = Engine(orig, depth=0, max_k=1)
    eng.strengthen()
    if eng.dropped:
        return False
    tm = Translator(mut)
    for e in eng.entries:
        ro = eng.trans[e]
        rm = tm.run(e, eng.pre, eng.inputs[e])
        diffs = [_zi(ro.fields[f]) != _zi(rm.fields[f]) for f in orig.field_names]
        if ro.ret is not None or rm.ret is not None:
            diffs.append(_zi(ro.ret) != _zi(rm.ret))
        s = z3.Solver()
        s.set("rlimit", eng.rlimit)             # deterministic: Z3 resource units, not seconds
        s.add(*eng.H_pre)
        s.add(z3.Or(diffs))
        if s.check() != z3.unsat:
            return False
    return True


def _zi(v: Any) -> Any:
    from .symexec import as_int, is_sym
    v = as_int(v) if v is not None else -999999
    return v if is_sym(v) else z3.IntVal(int(v))


def _work(args: tuple[str, str, dict[str, Any], int]) -> dict[str, Any]:
    orig_path, source_text, m, bmc_depth = args
    mut = Mutant(**m)
    data = mut.apply(source_text.encode())
    with tempfile.TemporaryDirectory(prefix="blinpump-mutant-") as tmp:
        path = os.path.join(tmp, "kernel.py")
        Path(path).write_bytes(data)
        res = prove_quick(path, bmc_depth)
        if res["valid"] and not res["caught"]:
            res["equivalent"] = equivalent(orig_path, path)
    res.update(asdict(mut))
    return res


def sample(mutants: list[Mutant], n: int | None) -> list[Mutant]:
    if n is None or n >= len(mutants):
        return mutants
    step = len(mutants) / float(n)
    return [mutants[int(i * step)] for i in range(n)]


def run_mutants(kernel_path: str | os.PathLike[str], max_mutants: int | None = None,
                progress: Callable[[str], None] | None = None, jobs: int | None = None,
                bmc_depth: int = 0) -> dict[str, Any]:
    t0 = time.time()
    path = str(kernel_path)
    source = Path(path).read_text()
    muts = sample(generate(source), max_mutants)
    jobs = jobs or min(2, os.cpu_count() or 1)
    results: list[dict[str, Any]] = []
    work = [(path, source, asdict(m), bmc_depth) for m in muts]
    if jobs > 1 and len(work) > 1:
        with ProcessPoolExecutor(max_workers=jobs) as ex:
            for i, r in enumerate(ex.map(_work, work), 1):
                results.append(r)
                if progress:
                    progress("mutant %d/%d line %d %s: %s" % (i, len(work), r["line"], r["operator"],
                                                             _verdict(r)))
    else:
        for i, w in enumerate(work, 1):
            r = _work(w)
            results.append(r)
            if progress:
                progress("mutant %d/%d line %d %s: %s" % (i, len(work), r["line"], r["operator"], _verdict(r)))
    valid = [r for r in results if r["valid"]]
    caught = [r for r in valid if r["caught"]]
    survivors = [r for r in valid if not r["caught"]]
    by_op: dict[str, dict[str, int]] = {}
    for r in valid:
        d = by_op.setdefault(r["operator"], {"total": 0, "caught": 0})
        d["total"] += 1
        d["caught"] += int(r["caught"])
    return {
        "total": len(valid), "invalid": len(results) - len(valid), "generated": len(generate(source)),
        "caught": len(caught),
        "falsified": sum(1 for r in caught if r["status"] == "falsified"),
        "unknown": sum(1 for r in caught if r["status"] == "unknown"),
        "equivalent": sum(1 for r in survivors if r.get("equivalent")),
        "survivors": [{"line": r["line"], "operator": r["operator"], "description": r["description"],
                       "equivalent": bool(r.get("equivalent"))} for r in survivors],
        "by_operator": by_op,
        "seconds": time.time() - t0,
        "results": results,
    }


def _verdict(r: dict[str, Any]) -> str:
    if not r["valid"]:
        return "invalid (%s)" % r.get("reason", "")
    if r["caught"]:
        return "caught by %s (%s, %.1f s)" % (r["by"], r["status"], r["seconds"])
    return "SURVIVED%s (%.1f s)" % (" (equivalent)" if r.get("equivalent") else "", r["seconds"])
