"""Which kernel lines a proof rests on: an unsat core over the transition relation.

The kernel is translated again with line tracking (`symexec.Translator(track_lines=True)`): every
statement an entry point executes (an assignment, an if/elif condition, a return value) has a
Boolean `line_L`, and with it off the statement's value is a havoc. A PROVED property's induction
step is checked again per entry point with every `line_L` as an assumption; the unsat core names
lines that suffice: every other line may compute anything and the step still holds. Z3's core is
then shrunk by deletion, each of its lines left out in turn, in line order, at most
MINIMISE_CHECKS extra checks per entry point, each within MINIMISE_RLIMIT Z3 units (so the result
is deterministic, and small but not necessarily minimal). The property's lines are the union over the entry points.

The step analysed is the one of the proof: H(pre), the property's state checks on pre, one
transition and the negated property (k = 1); the strengthening's step (H(pre), one transition, the
negated conjuncts of H(post) that the property states) for `kernel-invariant` and
`label-relation`; the translation obligations for `translation-exact`. For the properties proved
on the kernel x observer product only the kernel's lines are tracked: the lines named are the
kernel's, the observer's behave as written. A property proved at k > 1 is not analysed (its k = 1
step is not unsat), nor one that is not PROVED. An 8-bit alarm word that a line computes is
havocked to any 8-bit word (its bits are kept, so `&`/`|` stay propositional).
"""
from __future__ import annotations

import ast
import time
from typing import Any

import z3

from .engine import PROVED, Engine, PropertyResult
from .properties import Property
from .subset import INVARIANT
from .symexec import Translator, zbool

MINIMISE_CHECKS = 12        # extra checks per entry point and property that shrink Z3's core
# Z3 resource units of one such check (a few seconds at most here): leaving out a range check can turn
# an 8-bit `&` into div/mod arithmetic that takes minutes; a check that runs out keeps its line
MINIMISE_RLIMIT = 2_000_000


def _line(lit: Any) -> int:
    return int(str(lit)[len("line_"):])


def _lits(lines: list[int]) -> list[Any]:
    return [z3.Bool("line_%d" % n) for n in lines]


def _core(eng: Engine, goal: Any, lines: list[int], budget: int) -> tuple[list[int] | None, str]:
    """The lines (of `lines`) that keep H(pre) and `goal` unsat, or None and why not. A solver of
    its own: a property's lines do not depend on which other properties were analysed before."""
    s = eng._solver()
    s.add(*eng.H_pre)
    s.add(goal)
    r = s.check(*_lits(lines))
    if r != z3.unsat:
        return None, "the tracked step is %s with every line on (%s)" % (
            r, s.reason_unknown() if r == z3.unknown else "the translations differ")
    kept = sorted(_line(c) for c in s.unsat_core())
    s.set("rlimit", MINIMISE_RLIMIT)
    for n in list(kept):
        if budget <= 0:
            break
        if n not in kept:
            continue
        budget -= 1
        trial = [m for m in kept if m != n]
        if s.check(*_lits(trial)) == z3.unsat:      # sat or unknown: the line stays
            kept = sorted(_line(c) for c in s.unsat_core())
    return kept, ""


def statement_lines(kernel: Any) -> set[int]:
    """Lines that can be tracked (assignments, if/elif conditions, return values) in the kernel's
    functions other than `invariant`."""
    out: set[int] = set()
    for name, fn in kernel.functions.items():
        if name == INVARIANT:
            continue
        for node in ast.walk(fn.node):
            if isinstance(node, (ast.Assign, ast.If)) or (isinstance(node, ast.Return) and node.value is not None):
                out.add(node.lineno)
    return out


def ranges(lines: list[int], kernel: Any) -> list[tuple[int, int]]:
    """Lines as ranges: a range runs on while no tracked line of the kernel between two of its
    lines is left out, and never across a function's `def`."""
    stops = statement_lines(kernel) | {fn.node.lineno for fn in kernel.functions.values()}
    wanted = set(lines)
    out: list[tuple[int, int]] = []
    for n in sorted(wanted):
        if out and not any(out[-1][1] < m < n and m not in wanted for m in stops):
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


def analyse(eng: Engine, results: list[PropertyResult], minimise_checks: int = MINIMISE_CHECKS) -> None:
    """Set `depends_on` of each result of this engine's run: {"file", "lines", "seconds"}, or
    {"file", "lines": None, "note"} when it cannot be said. Needs the engine's strengthening
    (after `eng.run()`)."""
    t0 = time.time()
    kernel = getattr(eng.k, "kernel", eng.k)            # a product names its kernel's lines
    tr: Any = eng.k.translator(track_lines=True) if hasattr(eng.k, "translator") else Translator(eng.k, True)
    kt = getattr(tr, "kt", tr)
    runs, lines = {}, {}
    for e in eng.entries:
        runs[e] = tr.run(e, eng.pre, eng.inputs[e])
        lines[e] = sorted(kt.lines_run)
    props = {p.id: p for p in eng.props}
    base = time.time() - t0             # the tracked translation, shared by the properties
    for r in results:
        t1 = time.time()
        p = props[r.id]
        doc: dict[str, Any] = {"file": kernel.path, "lines": None}
        if r.status != PROVED:
            doc["note"] = "not proved"
        elif p.special is None and (r.k or 1) > 1:
            doc["note"] = "proved at k=%d: only a k = 1 step is analysed" % r.k
        else:
            found: set[int] = set()
            for e in eng.entries:
                goal = _goal(eng, p, e, runs[e])
                if goal is None:
                    continue
                core, why = _core(eng, goal, lines[e], minimise_checks)
                if core is None:
                    doc["note"] = "entry %s: %s" % (e, why)
                    break
                found.update(core)
            else:
                doc["lines"] = sorted(found)
        doc["seconds"] = round(time.time() - t1 + base / max(1, len(results)), 3)
        r.depends_on = doc


def _goal(eng: Engine, p: Property, e: str, run: Any) -> Any:
    """The negation of what the proof shows for entry point e (None: nothing to show)."""
    if p.special in ("invariant", "relation"):
        owners = ("kernel",) if p.special == "invariant" else ("relation", "observer")
        terms = eng._cand_terms(run.fields)
        mine = [zbool(terms[i]) for i in eng.H if eng.candidates[i]["owner"] in owners]
        return z3.Not(z3.And(mine)) if mine else None
    if p.special == "obligations":
        obls = run.obligations + eng._inv_obligations(eng.pre) + eng._inv_obligations(run.fields)
        return z3.Not(z3.And([zbool(o.cond) for o in obls])) if obls else None
    return z3.And(eng._state_term(p, eng.pre),
                  z3.Not(eng._prop_terms(p, eng.pre, run.fields, e, eng.inputs[e], run.ret)))
