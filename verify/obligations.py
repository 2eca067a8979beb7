"""Proof obligations: the unsat queries a PROVED verdict rests on, kept for a second solver.

An engine made with `record_obligations=True` keeps every query Z3 answered unsat that a proof
uses: the strengthening's step per entry point (H(pre) and T_e and not H(post)), the translation
obligations per entry point, each property's induction step per entry point (for k > 1 the chain
of k transitions) and, for k > 1, the base case's BMC queries. `ObligationLog.rested_on` picks,
for each PROVED property, the ones its verdict rests on; `Exporter.smtlib` writes one as an
SMT-LIB 2.6 benchmark that any solver can read (verify/recheck.py gives them to cvc5).

What is not a query is not here: the strengthening's initial-state part and a k = 1 base case are
concrete evaluations of `State()`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import z3

STRENGTHENING = "strengthening"     # the group of the Houdini step queries (every property rests on them)
TRANSLATION = "translation"         # the group of the translation obligations (translation-exact)

# commands a benchmark may hold: standard SMT-LIB 2.6, nothing solver-specific
STANDARD_COMMANDS = frozenset({"set-info", "set-logic", "declare-fun", "declare-const", "define-fun",
                               "assert", "check-sat", "exit"})


@dataclass
class ProofObligation:
    scope: str                  # whose transition relation: "kernel", or "product" (kernel x observer)
    group: str                  # a property id, STRENGTHENING or TRANSLATION
    name: str                   # "step k=1 entry tick"
    assertions: list[Any]       # Z3 Booleans whose conjunction Z3 found unsatisfiable
    k: int = 1                  # the induction depth whose proof it belongs to

    @property
    def file_name(self) -> str:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", self.name.replace("=", "")).strip("-")     # step-k1-entry-tick
        return "%s.%s.%s.smt2" % (self.scope, self.group, slug)


class ObligationLog:
    """The unsat queries of one engine, by group, then by name (a query asked again replaces the
    earlier one: the last is the one the verdict rests on)."""

    def __init__(self, scope: str):
        self.scope = scope
        self.groups: dict[str, dict[str, ProofObligation]] = {}

    def add(self, group: str, name: str, assertions: list[Any], k: int = 1) -> None:
        self.groups.setdefault(group, {})[name] = ProofObligation(self.scope, group, name, list(assertions), k)

    def group(self, group: str) -> list[ProofObligation]:
        return list(self.groups.get(group, {}).values())

    def rested_on(self, props: list[Any], results: list[Any]) -> dict[str, list[ProofObligation]]:
        """property id -> the obligations its PROVED verdict rests on (none for the others).

        Every property rests on the strengthening H; every property but the invariant ones on the
        translation obligations too (an unproved translation-exact withdraws every PROVED); an
        ordinary property on its own step queries of its k and, for k > 1, its base case."""
        out: dict[str, list[ProofObligation]] = {}
        by_id = {r.id: r for r in results}
        for p in props:
            r = by_id.get(p.id)
            if r is None or r.status != "proved":
                continue
            obls = self.group(STRENGTHENING)
            if p.special in ("invariant", "relation"):
                pass
            elif p.special == "obligations":
                obls += self.group(TRANSLATION)
            else:
                k = r.k or 1
                own = [o for o in self.group(p.id) if o.k == k]
                obls += self.group(TRANSLATION) + own
            out[p.id] = obls
        return out


_NONLINEAR_OPS = (z3.Z3_OP_IDIV, z3.Z3_OP_MOD, z3.Z3_OP_REM, z3.Z3_OP_DIV)


class Exporter:
    """Obligations as SMT-LIB 2.6 benchmarks. Obligations share most of their terms (H, the
    transitions), so one exporter walks each shared term once for all of them."""

    def __init__(self) -> None:
        self._memo: dict[int, tuple[Any, bool]] = {}     # term id -> (standard term, needs QF_NIA)

    def standard(self, assertions: list[Any]) -> tuple[list[Any], str]:
        """The assertions with every `and`/`or` of fewer than two operands replaced by its operand
        (or true/false): Z3 builds and prints `(and x)`, which SMT-LIB 2.6 does not allow. Nothing
        else changes (no simplification: the second solver must see the query Z3 answered).
        Also the logic: only Booleans and integers occur, and no quantifier; QF_LIA allows no
        div and no mod at all (only products with a numeral), so a `//` or `%` (even by a
        constant) or the order's division by a bag volume needs QF_NIA."""
        memo = self._memo
        todo: list[tuple[Any, bool]] = [(t, False) for t in assertions]
        while todo:
            t, ready = todo.pop()
            key = t.get_id()
            if key in memo:
                continue
            if z3.is_quantifier(t):
                raise ValueError("a quantifier in a proof obligation: %s" % t)
            if not z3.is_app(t) or t.num_args() == 0:
                memo[key] = (t, False)
                continue
            kids = t.children()
            if not ready:               # operands first, iteratively: the terms are deep
                todo.append((t, True))
                todo.extend((c, False) for c in kids if c.get_id() not in memo)
                continue
            done = [memo[c.get_id()] for c in kids]
            new = [d[0] for d in done]
            kind = t.decl().kind()
            nia = any(d[1] for d in done) or kind in _NONLINEAR_OPS or (
                kind == z3.Z3_OP_MUL and sum(1 for c in kids if not z3.is_int_value(c)) > 1)
            if kind in (z3.Z3_OP_AND, z3.Z3_OP_OR) and len(new) < 2:
                memo[key] = (new[0] if new else z3.BoolVal(kind == z3.Z3_OP_AND, ctx=t.ctx), nia)
            elif any(not a.eq(b) for a, b in zip(new, kids)):
                memo[key] = (t.decl()(*new), nia)
            else:
                memo[key] = (t, nia)
        out = [memo[t.get_id()] for t in assertions]
        return [term for term, _ in out], "QF_NIA" if any(nia for _, nia in out) else "QF_LIA"

    def smtlib(self, ob: ProofObligation, kernel: str = "", sha256: str = "") -> str:
        """The obligation as a benchmark: its declarations and assertions as Z3 prints them, with
        the logic set and without Z3's own options (no rlimit, no tactic)."""
        terms, logic = self.standard(ob.assertions)
        # in the obligation's own Z3 context: a later prove starts a new one (engine.fresh_context)
        s = z3.Solver(ctx=terms[0].ctx) if terms else z3.Solver()
        s.add(*terms)
        body = []
        for line in s.to_smt2().splitlines():
            if line.startswith(";") or line.startswith("(set-info") or line.strip() == "(check-sat)":
                continue
            body.append(line)
        head = ["; blinpump proof obligation: %s / %s / %s" % (ob.scope, ob.group, ob.name)]
        if kernel:
            head.append("; kernel %s sha256 %s" % (kernel, sha256))
        head += ["; expected: unsat (every model would be a counterexample to the proof)",
                 "(set-info :smt-lib-version 2.6)",
                 "(set-logic %s)" % logic]
        return "\n".join(head + body + ["(check-sat)", "(exit)", ""])


def smtlib(ob: ProofObligation, kernel: str = "", sha256: str = "") -> str:
    """One obligation as an SMT-LIB 2.6 benchmark (Exporter.smtlib)."""
    return Exporter().smtlib(ob, kernel, sha256)


def commands(text: str) -> list[str]:
    """The command names of an SMT-LIB text's top-level forms (comments and strings skipped)."""
    out = []
    depth = 0
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == ";":
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if c == "|":
            j = text.find("|", i + 1)
            i = n if j < 0 else j + 1
            continue
        if c == '"':                # a string literal; "" inside it is an escaped quote
            j = text.find('"', i + 1)
            while 0 <= j < n - 1 and text[j + 1] == '"':
                j = text.find('"', j + 2)
            i = n if j < 0 else j + 1
            continue
        if c == "(":
            if depth == 0:
                m = re.match(r"\(\s*([^\s()]+)", text[i:])
                out.append(m.group(1) if m else "")
            depth += 1
        elif c == ")":
            depth -= 1
        i += 1
    return out
