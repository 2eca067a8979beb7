"""Mutation adequacy: seeded bugs in the kernel's source must turn the proof red.

Mutants are made as edits of the source text (comments and layout kept, so line numbers stay
those of the landed kernel), written to temporary files and proved with the same engine:

- CMP       a comparison flipped: < <-> <=, > <-> >=, == <-> !=
- CONST     a constant shifted by +1 and by -1: module constants (not the status codes E_*/OK)
            and integer literals in function bodies
- RMIF      an `if` check removed (an `if` without else/elif)
- RMRET     a `return` inside an `if` removed (the code falls through)
- ANDOR     `and` <-> `or`
- RMSET     an assignment to a state field removed (but not a clearing one: see NOCLEAR)
- UNIT      a module constant written in the wrong unit: a _MIN constant in hours (/60) or in
            days (/1440), an _H one in minutes (*60), a _PER_H rate per minute (/60), an amount
            in _NG in mcg, in _UL in mL, in _G in kg (/1000); only when the result is a whole,
            nonzero number. Codes (E_*, OK, MODE_*, PHASE_*, IND_*, RX_*, STOP_*, AL_*, ACK_*,
            SCALE_*) have no unit.
- DEDENT    the last statement of an `if` body (no else/elif, at least two statements) moved out
            of the `if`, to just after it
- SWAP      two neighbouring arguments of a call swapped when both are names or fields (never
            the state `s`, never min/max); the operands of `-` swapped (not when both are
            constants); the operands of < <= > >= swapped (== and != are symmetric)
- NOCLEAR   a flag not cleared: `s.field = 0` or `s.field = -1` removed
- NEIGHBOUR a use of a unit constant (_MIN, _NG_PER_DAY, _G, _UL, _CM2, _UL_PER_H) replaced by the
            nearest constant declared before it, and the nearest after it, with the same unit
            suffix and another value

`invariant(s)` and `State.__init__` are not mutated (they are the proof's statement and the
initial state, not behaviour). Generation is deterministic: the same source gives the same
mutants, with the same ids and descriptions, in the same order; a description that would occur
twice gets its line (and, on the same line, its rank) so that every description is unique.
The mutants of the operators added for the campaign (UNIT, DEDENT, SWAP, NOCLEAR, NEIGHBOUR)
are checked against the subset as they are made; those it rejects are not proved but counted
as *rejected* (generate_all). Any other mutant the subset rejects is found when it is loaded,
and counted the same way.

A mutant is *caught* when some property is falsified or not proved. A surviving mutant is
checked for equivalence: if every entry point gives the same post-state and return value as
the landed kernel for every state satisfying the landed kernel's proven invariant (hence for
every reachable state), it is *equivalent*; otherwise it *survived* and goes on the review
list (its behaviour differs in a way no property observes).
Every solver call here has a Z3 resource limit (engine.CHECK_RLIMIT), not a time-out, so a
mutant gets the same verdict on an idle and on a loaded machine, with one worker or many.

The campaign (run_mutants, run_campaign) proves every mutant by default, on the local cores
(a pool of processes) or on a Dask cluster (a `distributed.Client`, optional dependency group
`cluster`). Each verdict is appended to a JSON Lines file as it comes in, one object a line,
with the kernel's SHA-256; a run given the same file with resume=True proves only the mutants
that have no verdict there for that kernel, so an interrupted campaign goes on where it
stopped. The summary is the file's last line.
"""
from __future__ import annotations

import ast
import hashlib
import json
import multiprocessing
import os
import re
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

import z3

from .subset import INVARIANT, SubsetError, load_kernel, subset_errors

OPERATORS = ("CMP", "CONST", "RMIF", "RMRET", "ANDOR", "RMSET", "UNIT", "DEDENT", "SWAP", "NOCLEAR", "NEIGHBOUR")
# their edits change structure or names: each mutant is checked against the subset when made
CHECKED = frozenset({"UNIT", "DEDENT", "SWAP", "NOCLEAR", "NEIGHBOUR"})
VERDICTS = ("caught", "equivalent", "survived", "rejected", "error")
CONNECT_TIMEOUT_S = 10          # a scheduler that does not answer in this time is unreachable

_FLIP = {ast.Lt: "<=", ast.LtE: "<", ast.Gt: ">=", ast.GtE: ">", ast.Eq: "!=", ast.NotEq: "=="}
_OPTXT = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}
_ORDER = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
# module constants that are codes, not quantities: no unit to get wrong
_CODE_PREFIXES = ("E_", "MODE_", "PHASE_", "IND_", "RX_", "STOP_", "AL_", "ACK_", "SCALE_")
# NEIGHBOUR's unit suffixes, longest first (a _UL_PER_H rate is not a _UL volume)
_NEIGHBOUR_SUFFIXES = ("_NG_PER_DAY", "_UL_PER_H", "_CM2", "_MIN", "_UL", "_G")


@dataclass(frozen=True)
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


# ------------------------------------------------------------------ generation
def generate(source: str) -> list[Mutant]:
    """The mutants of the kernel in the subset, in a fixed order (the same every run)."""
    return list(_generated(source)[0])


def generate_all(source: str) -> tuple[list[Mutant], list[tuple[Mutant, str]]]:
    """(mutants in the subset, [(mutant, why the subset rejects it)]): every edit made."""
    kept, rejected = _generated(source)
    return list(kept), list(rejected)


# checking the edits against the subset takes seconds, and callers ask again for the same source
@lru_cache(maxsize=4)
def _generated(source: str) -> tuple[tuple[Mutant, ...], tuple[tuple[Mutant, str], ...]]:
    src = source.encode()
    kept: list[Mutant] = []
    rejected: list[tuple[Mutant, str]] = []
    for m in _unique(_edits(source)):
        if m.operator in CHECKED:
            errors = subset_errors(m.apply(src).decode(), "kernel.py")
            if errors:
                rejected.append((m, "line %d: %s" % (errors[0][1], errors[0][2])))
                continue
        kept.append(m)
    return tuple(kept), tuple(rejected)


def _is_code(name: str) -> bool:
    return name == "OK" or name.startswith(_CODE_PREFIXES)


def _unit_slips(name: str, value: int) -> list[tuple[int, str]]:
    """The values of constant `name` written in a neighbouring unit, with what went wrong."""
    slips: list[tuple[int, str]] = []
    amount = name.split("_PER_")[0]
    if amount in ("MIN", "H", "DAY", "NG", "UL", "G"):
        return slips                        # a conversion factor (MIN_PER_H), not a quantity

    def div(d: int, why: str) -> None:
        if value % d == 0 and value // d != 0:
            slips.append((value // d, why))

    if name.endswith("_MIN"):
        div(60, "in hours, not minutes")
        div(1440, "in days, not minutes")
    if name.endswith("_PER_H"):
        div(60, "per minute, not per hour")
    elif name.endswith("_H"):
        slips.append((value * 60, "in minutes, not hours"))
    if amount.endswith("_NG"):
        div(1000, "in mcg, not ng")
    elif amount.endswith("_UL"):
        div(1000, "in mL, not uL")
    elif amount.endswith("_G"):
        div(1000, "in kg, not g")
    out: list[tuple[int, str]] = []
    for v, why in slips:                    # two slips to the same value are one mutant
        if v != value and all(v != w for w, _ in out):
            out.append((v, why))
    return out


def _neighbours(consts: list[tuple[str, int]]) -> dict[str, list[tuple[str, int]]]:
    """For each unit constant, the nearest constant before and after it in the file with the
    same unit suffix and another value."""
    groups: dict[str, list[tuple[str, int]]] = {}
    for name, value in consts:
        suffix = next((x for x in _NEIGHBOUR_SUFFIXES if name.endswith(x)), None)
        if suffix and not _is_code(name):
            groups.setdefault(suffix, []).append((name, value))
    out: dict[str, list[tuple[str, int]]] = {}
    for group in groups.values():
        for i, (name, value) in enumerate(group):
            before = next((c for c in reversed(group[:i]) if c[1] != value), None)
            after = next((c for c in group[i + 1:] if c[1] != value), None)
            out[name] = [c for c in (before, after) if c is not None]
    return out


def _edits(source: str) -> list[Mutant]:
    src = source.encode()
    tree = ast.parse(source)
    off = _Offsets(src)
    lines = src.splitlines(keepends=True)
    out: list[Mutant] = []

    def add(op: str, line: int, desc: str, start: int, end: int, repl: str) -> None:
        # keep the line count: a removed multi-line statement leaves blank lines
        repl += "\n" * (src[start:end].count(b"\n") - repl.count("\n"))
        out.append(Mutant(len(out), op, line, desc, start, end, repl))

    def text(a: int, b: int) -> str:
        return src[a:b].decode()

    # module constants
    consts: list[tuple[str, int]] = []
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            name = stmt.targets[0].id
            v = stmt.value
            lit = v.operand if isinstance(v, ast.UnaryOp) else v
            if not (isinstance(lit, ast.Constant) and type(lit.value) is int):
                continue
            value = -lit.value if isinstance(v, ast.UnaryOp) else lit.value
            consts.append((name, value))
            if name == "OK" or name.startswith("E_"):
                continue
            a, b = _node_span(off, v)
            for d in (1, -1):
                add("CONST", stmt.lineno, "%s = %d (was %d)" % (name, value + d, value), a, b, str(value + d))
            if not _is_code(name):
                for new, why in _unit_slips(name, value):
                    add("UNIT", stmt.lineno, "%s = %d (was %d: %s)" % (name, new, value, why), a, b, str(new))
    const_names = {name for name, _ in consts}
    neighbours = _neighbours(consts)
    const_values = dict(consts)

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
                if _clears(node.value):     # NOCLEAR's, not made twice
                    add("NOCLEAR", node.lineno, "%s: removed '%s' (not cleared)" % (fn.name, _short(ast.unparse(node))),
                        a, b, "pass")
                else:
                    add("RMSET", node.lineno, "%s: removed '%s'" % (fn.name, _short(ast.unparse(node))), a, b, "pass")

            # the operators below may apply to a node an operator above has edited already
            if isinstance(node, ast.If):
                moved = _dedent(lines, off, node)
                if moved is not None:
                    a, b, repl, stmt = moved
                    mutated = src[:a] + repl.encode() + src[b:]
                    if _parses(mutated):
                        add("DEDENT", stmt.lineno, "%s: '%s' moved out of 'if %s'" % (
                            fn.name, _short(_head(stmt), 50), _short(ast.unparse(node.test), 50)), a, b, repl)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id not in ("min", "max"):
                for x, y in zip(node.args, node.args[1:]):
                    if _is_ref(x) and _is_ref(y) and ast.unparse(x) != ast.unparse(y):
                        xa, xb = _node_span(off, x)
                        ya, yb = _node_span(off, y)
                        add("SWAP", node.lineno, "%s: swapped '%s' and '%s' in %s(...)" % (
                            fn.name, ast.unparse(x), ast.unparse(y), node.func.id),
                            xa, yb, text(ya, yb) + text(xb, ya) + text(xa, xb))
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub) and not (
                    _is_const(node.left, const_names) and _is_const(node.right, const_names)):
                add("SWAP", node.lineno, "%s: swapped the operands of '-' in %s" % (fn.name, _short(ast.unparse(node))),
                    *_swapped(src, off, node.left, node.right, wrap=True))
            if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], _ORDER):
                add("SWAP", node.lineno, "%s: swapped the operands of '%s' in %s" % (
                    fn.name, _OPTXT[type(node.ops[0])], _short(ast.unparse(node))),
                    *_swapped(src, off, node.left, node.comparators[0], wrap=False))
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in neighbours:
                a, b = _node_span(off, node)
                for other, value in neighbours[node.id]:
                    add("NEIGHBOUR", node.lineno, "%s: %s -> %s (%d -> %d)" % (
                        fn.name, node.id, other, const_values[node.id], value), a, b, other)
    return out


def _unique(muts: list[Mutant]) -> list[Mutant]:
    """Every description made unique: a repeated one gets its line, and its rank on that line
    when that is not enough (a resumed campaign finds a mutant by its description)."""
    first = Counter(m.description for m in muts)
    with_line = ["%s (line %d)" % (m.description, m.line) if first[m.description] > 1 else m.description
                 for m in muts]
    second = Counter(with_line)
    rank: Counter[str] = Counter()
    out = []
    for m, d in zip(muts, with_line):
        if second[d] > 1:
            rank[d] += 1
            d = "%s, #%d)" % (d[:-1], rank[d])
        out.append(m if d == m.description else replace(m, description=d))
    return out


def _clears(value: ast.expr) -> bool:
    """`0` or `-1`: the value a flag or a time is cleared to."""
    if isinstance(value, ast.Constant) and type(value.value) is int:
        return value.value == 0
    return (isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.USub) and isinstance(value.operand, ast.Constant)
            and value.operand.value == 1)


def _is_ref(node: ast.expr) -> bool:
    """A name (not the state) or a field."""
    return (isinstance(node, ast.Name) and node.id != "s") or isinstance(node, ast.Attribute)


def _is_const(node: ast.expr, const_names: set[str]) -> bool:
    if isinstance(node, ast.UnaryOp):
        node = node.operand
    return (isinstance(node, ast.Constant) and type(node.value) is int) or (
        isinstance(node, ast.Name) and node.id in const_names)


def _head(stmt: ast.stmt) -> str:
    """A statement as one short line: a compound one by its header."""
    if isinstance(stmt, ast.If):
        return "if %s" % ast.unparse(stmt.test)
    return ast.unparse(stmt)


def _parses(source: bytes) -> bool:
    try:
        ast.parse(source)
    except SyntaxError:
        return False
    return True


def _dedent(lines: list[bytes], off: _Offsets, node: ast.If) -> tuple[int, int, str, ast.stmt] | None:
    """The last statement of an if-body (no else, and not the only statement) one level out:
    (start, end, replacement, statement), or None."""
    if node.orelse or len(node.body) < 2:
        return None
    last = node.body[-1]
    end_lineno = last.end_lineno or last.lineno
    first_line = lines[last.lineno - 1]
    if first_line[: last.col_offset].strip():
        return None                                         # shares its line with another statement
    after = lines[end_lineno - 1][last.end_col_offset or 0:].strip()
    if after and not after.startswith(b"#"):
        return None
    head = lines[node.lineno - 1]
    depth = last.col_offset - (len(head) - len(head.lstrip(b" ")))   # the line of `if`, or of `elif`
    if depth <= 0:
        return None
    pad = b" " * depth
    body = lines[last.lineno - 1: end_lineno]
    moved = b"".join(ln[depth:] if ln.startswith(pad) else ln for ln in body)
    start = off(last.lineno, 0)
    return start, start + len(b"".join(body)), moved.decode(), last


def _operand(src: bytes, off: _Offsets, node: ast.expr) -> tuple[int, int, bool]:
    """The span of an operand with its own parentheses, and whether it has any."""
    a, b = _node_span(off, node)
    wrapped = False
    while True:
        i = a - 1
        while i >= 0 and src[i:i + 1] in (b" ", b"\n"):
            i -= 1
        j = b
        while j < len(src) and src[j:j + 1] in (b" ", b"\n"):
            j += 1
        # an operand is followed (or preceded) by its operator, so brackets on both sides are its own
        if i >= 0 and j < len(src) and src[i:i + 1] == b"(" and src[j:j + 1] == b")":
            a, b, wrapped = i, j + 1, True
        else:
            return a, b, wrapped


def _swapped(src: bytes, off: _Offsets, left: ast.expr, right: ast.expr, wrap: bool) -> tuple[int, int, str]:
    """(start, end, replacement) with the operands exchanged; with `wrap`, an operand that is not
    a name, field, literal or call is put in brackets so `a + b - c` becomes `c - (a + b)`."""
    la, lb, lpar = _operand(src, off, left)
    ra, rb, rpar = _operand(src, off, right)
    lt, mid, rt = src[la:lb].decode(), src[lb:ra].decode(), src[ra:rb].decode()
    atoms = (ast.Name, ast.Attribute, ast.Constant, ast.Call)
    if wrap and not lpar and not isinstance(left, atoms):
        lt = "(%s)" % lt
    if wrap and not rpar and not isinstance(right, atoms):
        rt = "(%s)" % rt
    return la, rb, rt + mid + lt


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
    m = re.search(r"(?<![A-Za-z0-9_])%s(?![A-Za-z0-9_])" % word, seg)
    return m.start() if m else -1


def _is_elif(src: bytes, off: _Offsets, node: ast.If, parents: dict[ast.AST, ast.AST]) -> bool:
    p = parents.get(node)
    if isinstance(p, ast.If) and p.orelse == [node]:
        a = off(node.lineno, node.col_offset)
        return src[max(0, a - 5): a + 4].decode(errors="replace").lstrip().startswith("elif") or \
            src[a: a + 4] == b"elif"
    return False


def sample(mutants: list[Mutant], n: int | None) -> list[Mutant]:
    """n mutants evenly spread over the list (all of them when n is None or not smaller)."""
    if n is None or n >= len(mutants):
        return mutants
    step = len(mutants) / float(n)
    return [mutants[int(i * step)] for i in range(n)]


# ------------------------------------------------------------------ proving mutants
def entries_reaching(kernel: Any, line: int) -> tuple[str, ...]:
    """The entry points whose code runs `line` (the function around it, or, for a module
    constant, every function that names it), directly or through the helpers they call."""
    fns = kernel.functions
    hit = {n for n, f in fns.items() if f.node.lineno <= line <= (f.node.end_lineno or f.node.lineno)}
    if not hit:
        names = {c for c, at in kernel.constant_lines.items() if at == line}
        hit = {n for n, f in fns.items()
               if any(isinstance(x, ast.Name) and x.id in names for x in ast.walk(f.node))}
    grew = True
    while grew:
        grew = False
        for n, f in fns.items():
            if n not in hit and f.calls & hit:
                hit.add(n)
                grew = True
    return tuple(e for e in kernel.entries if e in hit)


def prove_quick(path: str, bmc_depth: int = 0, line: int | None = None) -> dict[str, Any]:
    """Prove a kernel, stopping at the first property not proved (the exact properties against
    the label observer first). Returns caught/status/seconds. `line`: where a mutant's edit is;
    Houdini checks the entry points that run it first (sooner; the same verdict unless a query
    is left undecided by the resource limit, see Engine.strengthen)."""
    from .engine import PROVED, engines, fresh_context
    from .properties import PROPERTIES
    t0 = time.time()
    fresh_context()         # the verdict of a mutant does not depend on the mutants before it
    try:
        kernel = load_kernel(path)
    except SubsetError as exc:
        return {"valid": False, "caught": False, "seconds": time.time() - t0, "reason": str(exc).splitlines()[0]}
    first = None
    status = PROVED
    dropped = 0
    first_entries = entries_reaching(kernel, line) if line is not None else ()
    for eng in engines(kernel, PROPERTIES, depth=bmc_depth, max_k=1, replay_check=bmc_depth > 0):
        # label-relation is the product's first property: its first dropped conjunct decides it
        # (only without BMC: a search after an early stop would look for the drops found so far only)
        eng.strengthen(stop_owners=("relation", "observer") if hasattr(eng.k, "observer") and bmc_depth == 0 else (),
                       first_entries=first_entries)
        dropped += len(eng.dropped)
        for p in eng.props:
            r = eng._prove_one(p)
            if r.status != PROVED:
                first, status = p.id, r.status
                break
        if first is not None:
            break
    return {"valid": True, "caught": first is not None, "by": first, "status": status,
            "seconds": time.time() - t0, "dropped": dropped}


def equivalent(orig_path: str, mut_path: str) -> bool:
    """True if the mutant behaves exactly like the original on every state satisfying the
    original's proven invariant (hence on every reachable state), for every entry point."""
    from .engine import Engine, fresh_context
    from .symexec import Translator
    fresh_context()
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


def _work(source_text: str, m: dict[str, Any], bmc_depth: int,
          hypothesis_min_s: float | None = None) -> dict[str, Any]:
    """Prove one mutant (in a worker process, local or on a cluster: it needs nothing but its
    arguments, no file of the caller's machine). With hypothesis_min_s, the Hypothesis campaign
    (randomtest.campaign, the observer beside the kernel) then runs on the same mutant for as
    long as the verifier took, at least hypothesis_min_s: the same budget, for the comparison."""
    t0 = time.time()
    mut = Mutant(**m)
    with tempfile.TemporaryDirectory(prefix="blinpump-mutant-") as tmp:
        path = os.path.join(tmp, "kernel.py")
        Path(path).write_bytes(mut.apply(source_text.encode()))
        res = prove_quick(path, bmc_depth, mut.line)
        if res["valid"] and not res["caught"]:
            landed = os.path.join(tmp, "landed.py")
            Path(landed).write_text(source_text)
            res["equivalent"] = equivalent(landed, path)
        res["seconds"] = time.time() - t0
        if hypothesis_min_s is not None and res["valid"]:
            from .randomtest import campaign
            h = campaign(path, seconds=max(res["seconds"], hypothesis_min_s), seed=mut.id)
            res.update(hypothesis_caught=h["caught"], hypothesis_seconds=round(h["seconds"], 3),
                       hypothesis_examples=h["examples"], hypothesis_violation=(h["violations"] or [None])[0])
    res.update(asdict(mut))
    return res


def verdict(r: dict[str, Any]) -> str:
    """caught, equivalent, survived or rejected, from a result of _work."""
    if not r["valid"]:
        return "rejected"
    if r["caught"]:
        return "caught"
    return "equivalent" if r.get("equivalent") else "survived"


# ------------------------------------------------------------------ the campaign
class ResultsError(Exception):
    """The results file cannot be read or written; the message says why, on one line."""


class ClusterError(Exception):
    """The Dask scheduler cannot be used; the message says why, on one line."""


def kernel_sha256(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


def read_results(path: str | os.PathLike[str], sha256: str) -> dict[str, dict[str, Any]]:
    """The verdicts already in a results file for the kernel with this SHA-256, by mutant
    description. A missing file has none. A last line without its newline was cut short by a
    stop and does not count; any other line that is not a JSON object is an error."""
    p = Path(path)
    if not p.exists():
        return {}
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        raise ResultsError("cannot read %s: %s" % (p, _one_line(exc))) from None
    done: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(text.split("\n")[:-1], 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            rec = None
        if not isinstance(rec, dict):
            raise ResultsError("%s line %d is not a JSON object (not a results file?)" % (p, number))
        if (rec.get("record") == "mutant" and rec.get("kernel_sha256") == sha256
                and rec.get("verdict") in VERDICTS and rec.get("verdict") != "error"
                and isinstance(rec.get("description"), str)):
            done[rec["description"]] = rec
    return done


class _ResultsFile:
    """Appends one JSON object a line and flushes it, so a stopped campaign loses at most the
    line being written."""

    def __init__(self, path: str | os.PathLike[str] | None, resume: bool):
        self.path = Path(path) if path is not None else None
        self.f = None
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if resume and self.path.exists():
                data = self.path.read_bytes()
                if data and not data.endswith(b"\n"):     # a line cut short by a stop: dropped
                    self.path.write_bytes(data[: data.rfind(b"\n") + 1])
                self.f = open(self.path, "a", encoding="utf-8")
            else:
                self.f = open(self.path, "w", encoding="utf-8")
        except OSError as exc:
            raise ResultsError("cannot write %s: %s" % (self.path, _one_line(exc))) from None

    def write(self, rec: dict[str, Any]) -> None:
        if self.f is None:
            return
        try:
            self.f.write(json.dumps(rec) + "\n")
            self.f.flush()
        except OSError as exc:
            raise ResultsError("cannot write %s: %s" % (self.path, _one_line(exc))) from None

    def close(self) -> None:
        if self.f is not None:
            self.f.close()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def scheduler_problem(address: str) -> str | None:
    """Why `address` is not a Dask scheduler address (tcp://host:port or tls://host:port), or None."""
    try:
        parts = urlsplit(address)
        port = parts.port
    except ValueError as exc:
        return "%r is not a scheduler address (%s)" % (address, _one_line(exc))
    if parts.scheme not in ("tcp", "tls") or not parts.hostname or port is None or parts.path or parts.query:
        return "%r is not a scheduler address: expected tcp://host:port" % address
    return None


def connect(address: str) -> Any:
    """A dask.distributed Client of the scheduler at `address`; ClusterError when the package is
    not installed or the scheduler does not answer. The only place that imports dask."""
    problem = scheduler_problem(address)
    if problem:
        raise ClusterError(problem)
    try:
        import distributed
    except ImportError:
        raise ClusterError("needs the 'distributed' package, which is not installed "
                           "(pip install -r requirements-cluster.lock)") from None
    import logging
    log = logging.getLogger("distributed")
    level = log.level
    log.setLevel(logging.CRITICAL)          # its own retries and warnings: the error below says it
    try:
        return distributed.Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except Exception as exc:
        raise ClusterError("cannot reach the scheduler at %s: %s" % (address, _one_line(exc))) from None
    finally:
        log.setLevel(level)


def _execute(source: str, mutants: list[Mutant], workers: int, bmc_depth: int,
             client: Any | None, hypothesis_min_s: float | None = None
             ) -> Iterator[tuple[Mutant, dict[str, Any] | BaseException]]:
    """(mutant, result of _work or the exception that ended it), as each one finishes."""
    if client is not None:
        from distributed import as_completed as cluster_completed
        shared = client.scatter(source, broadcast=True)    # sent once, not with every mutant
        futures = {client.submit(_work, shared, asdict(m), bmc_depth, hypothesis_min_s, pure=False): m for m in mutants}
        try:
            for fut in cluster_completed(list(futures), loop=client.loop):   # the client is not the default one
                try:
                    yield futures[fut], fut.result()
                except Exception as exc:
                    yield futures[fut], exc
        finally:                            # stopped early (an interrupt, a full disk): the rest is not run
            client.cancel(list(futures))
    elif workers <= 1 or len(mutants) <= 1:
        for m in mutants:
            try:
                r: dict[str, Any] | BaseException = _work(source, asdict(m), bmc_depth, hypothesis_min_s)
            except Exception as exc:
                r = exc
            yield m, r
    else:
        # spawn, not fork: a forked copy of a process that has run Z3 is not safe to use
        ctx = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=min(workers, len(mutants)), mp_context=ctx)
        try:
            futs = {pool.submit(_work, source, asdict(m), bmc_depth, hypothesis_min_s): m for m in mutants}
            for f in as_completed(futs):
                try:
                    yield futs[f], f.result()
                except Exception as exc:
                    yield futs[f], exc
        finally:                            # stopped early: the mutants not started are dropped, not run
            pool.shutdown(wait=True, cancel_futures=True)


def _record(sha256: str, m: Mutant, r: dict[str, Any] | BaseException | str) -> dict[str, Any]:
    rec: dict[str, Any] = {"record": "mutant", "kernel_sha256": sha256, "id": m.id, "operator": m.operator,
                           "line": m.line, "description": m.description}
    if isinstance(r, str):                  # rejected when made: never proved
        rec.update(verdict="rejected", seconds=0.0, reason=r)
    elif isinstance(r, BaseException):
        rec.update(verdict="error", seconds=0.0, reason="%s: %s" % (type(r).__name__, _one_line(r)))
    else:
        rec.update(verdict=verdict(r), seconds=round(r["seconds"], 3))
        if r["valid"] and r["caught"]:
            rec.update(by=r["by"], status=r["status"])
        if not r["valid"]:
            rec["reason"] = r.get("reason", "")
        for k in ("hypothesis_caught", "hypothesis_seconds", "hypothesis_examples", "hypothesis_violation"):
            if k in r:
                rec[k] = r[k]
    return rec


def run_campaign(source: str, mutants: list[Mutant], *, rejected: list[tuple[Mutant, str]] | None = None,
                 workers: int | None = None, bmc_depth: int = 0, results: str | os.PathLike[str] | None = None,
                 resume: bool = False, progress: Callable[[str], None] | None = None, client: Any | None = None,
                 generated: int | None = None, hypothesis_min_s: float | None = None) -> dict[str, Any]:
    """Prove `mutants` of the kernel `source` and return the summary (see summarize).

    workers: local processes (default: one per core); client: a dask.distributed Client, which
    then runs them instead. results: the JSON Lines file each verdict is appended to as it comes
    in (rewritten unless resume); with resume, the mutants that have a verdict there for this
    kernel are not proved again. rejected: mutants the subset rejected when they were made,
    recorded as such. hypothesis_min_s: run the Hypothesis campaign on each mutant too, on the
    verifier's budget (see _work; the benchmark's comparison).

    A verdict read back with resume is the one recorded, so a file must not mix runs with and
    without hypothesis_min_s: the summary counts Hypothesis only over records that have it."""
    t0 = time.time()
    sha = kernel_sha256(source)
    workers = workers or os.cpu_count() or 1
    done = read_results(results, sha) if (results is not None and resume) else {}
    out = _ResultsFile(results, resume)
    records: dict[str, dict[str, Any]] = {}
    resumed = 0
    try:
        for m, why in rejected or []:
            if m.description in done:
                records[m.description] = done[m.description]
                resumed += 1
            else:
                records[m.description] = _record(sha, m, why)
                out.write(records[m.description])
        todo = []
        for m in mutants:
            if m.description in done:
                records[m.description] = done[m.description]
                resumed += 1
            else:
                todo.append(m)
        if progress and resumed:
            progress("resuming: %d of %d mutants have a verdict in %s" % (resumed, len(records) + len(todo), results))
        for i, (m, r) in enumerate(_execute(source, todo, workers, bmc_depth, client, hypothesis_min_s), 1):
            rec = _record(sha, m, r)
            records[m.description] = rec
            out.write(rec)
            if progress:
                progress("mutant %d/%d line %d %s: %s" % (i, len(todo), m.line, m.operator, _shown(rec)))
        summary = summarize(list(records.values()), sha,
                            generated=generated if generated is not None else len(mutants) + len(rejected or []))
        summary.update(seconds=time.time() - t0, mutants_run=len(todo), mutants_resumed=resumed)
        out.write(dict({"record": "summary"}, **{k: v for k, v in summary.items() if k != "results"}))
    finally:
        out.close()
    return summary


def run_mutants(kernel_path: str | os.PathLike[str], max_mutants: int | None = None,
                progress: Callable[[str], None] | None = None, workers: int | None = None,
                bmc_depth: int = 0, results: str | os.PathLike[str] | None = None, resume: bool = False,
                client: Any | None = None) -> dict[str, Any]:
    """The campaign over the kernel at `kernel_path`: every mutant, or an even spread of
    `max_mutants` of those in the subset (then the rejected ones are left out too)."""
    source = Path(kernel_path).read_text()
    kept, rejected = generate_all(source)
    chosen = sample(kept, max_mutants)
    return run_campaign(source, chosen, rejected=rejected if max_mutants is None else [], workers=workers,
                        bmc_depth=bmc_depth, results=results, resume=resume, progress=progress, client=client,
                        generated=len(kept) + len(rejected))


def summarize(records: list[dict[str, Any]], sha256: str, generated: int) -> dict[str, Any]:
    """The campaign's figures from its records (one per mutant)."""
    recs = sorted(records, key=lambda r: r["id"])
    count = Counter(r["verdict"] for r in recs)
    per_op: dict[str, dict[str, int]] = {}
    for op in sorted({r["operator"] for r in recs}, key=lambda o: OPERATORS.index(o) if o in OPERATORS else 99):
        mine = Counter(r["verdict"] for r in recs if r["operator"] == op)
        per_op[op] = dict({"total": sum(mine.values())}, **{v: mine[v] for v in VERDICTS})
    survivors = [{"id": r["id"], "line": r["line"], "operator": r["operator"], "description": r["description"],
                  "equivalent": r["verdict"] == "equivalent"} for r in recs if r["verdict"] in ("survived", "equivalent")]
    proved = [r for r in recs if r["verdict"] in ("caught", "equivalent", "survived")]
    hyp = [r for r in proved if "hypothesis_caught" in r]
    compared = {}
    if hyp:
        compared = {
            "mutants_compared_hypothesis": len(hyp),
            "mutants_caught_hypothesis": sum(1 for r in hyp if r["hypothesis_caught"]),
            "mutants_caught_both": sum(1 for r in hyp if r["hypothesis_caught"] and r["verdict"] == "caught"),
            "mutants_caught_hypothesis_only": sum(1 for r in hyp if r["hypothesis_caught"] and r["verdict"] == "survived"),
            # a concrete violation on a mutant proved equivalent would contradict the proof: goal 0
            "mutants_equivalent_caught_hypothesis": sum(1 for r in hyp if r["hypothesis_caught"]
                                                        and r["verdict"] == "equivalent"),
            "mutants_caught_verifier_only": sum(1 for r in hyp if not r["hypothesis_caught"] and r["verdict"] == "caught"),
        }
    return dict(compared, **{
        "kernel_sha256": sha256,
        "mutants_generated": generated,
        "mutants_total": len(recs),
        "mutants_caught_verifier": count["caught"],
        "mutants_equivalent": count["equivalent"],
        "mutants_survived": count["survived"],
        "mutants_rejected": count["rejected"],
        "mutants_error": count["error"],
        "per_operator": per_op,
        "survivors": survivors,
        # the figures of the assurance report (report.markdown)
        "generated": generated,
        "total": len(proved),
        "invalid": count["rejected"],
        "caught": count["caught"],
        "falsified": sum(1 for r in recs if r["verdict"] == "caught" and r.get("status") == "falsified"),
        "unknown": sum(1 for r in recs if r["verdict"] == "caught" and r.get("status") == "unknown"),
        "equivalent": count["equivalent"],
        "results": recs,
    })


def _shown(rec: dict[str, Any]) -> str:
    v = rec["verdict"]
    if v == "caught":
        return "caught by %s (%s, %.1f s)" % (rec["by"], rec["status"], rec["seconds"])
    if v in ("rejected", "error"):
        return "%s (%s)" % (v, rec.get("reason", ""))
    return "%s (%.1f s)" % ("SURVIVED" if v == "survived" else "survived, equivalent", rec["seconds"])
