"""Vacuity: a proof whose premise is never true proves nothing, and must say so loudly.

Kind 2 and the CBMC manual warn that an implication with an impossible antecedent is proved by
any system. For every property the engine proved, this module checks

1. its induction premise: some state satisfying the strengthening H (and the property's state
   checks) exists at all;
2. every guarded case: each check of the form `guard -> body` (the top-level implications of
   the check's formula, inside conjunctions) has a guard that is true after some input from some
   H-state. A guard that is never true makes the property VACUOUS: its status becomes UNKNOWN
   with the check named;
3. optionally, reachability: a BMC search from the initial state for a trace on which the guard
   holds (a witness), up to `depth` steps and a Z3 resource budget. A guard with no witness in
   that many steps is reported as "not reached within N steps" (some need weeks of minutes,
   beyond any short trace), never as a failure: it was shown satisfiable in (1)-(2).
"""
from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass, field
from typing import Any

import z3

from .engine import PROVED, UNKNOWN, Engine, rlimit_count, rlimit_spent
from .properties import L, Property, S, Step
from .symexec import zbool, zint

SAT_RLIMIT = 500_000_000         # one guard's satisfiability check (Z3 units, deterministic)
COVER_RLIMIT = 100_000_000       # one guard's witness search


@dataclass
class GuardResult:
    check: str
    guard: str
    entries: list[str]           # entry points after which the guard can be true
    satisfiable: bool
    undecided: list[str] = field(default_factory=list)   # entries where the solver gave unknown
    witness_depth: int | None = None
    note: str = ""


@dataclass
class VacuityResult:
    property: str
    premise_satisfiable: bool
    guards: list[GuardResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def vacuous(self) -> list[GuardResult]:
        return [g for g in self.guards if not g.satisfiable and not g.undecided]

    @property
    def undecided(self) -> list[GuardResult]:
        return [g for g in self.guards if not g.satisfiable and g.undecided]

    def as_json(self) -> dict[str, Any]:
        return {"property": self.property, "premise_satisfiable": self.premise_satisfiable,
                "seconds": round(self.seconds, 3),
                "guards": [{"check": g.check, "guard": g.guard, "entries": g.entries, "satisfiable": g.satisfiable,
                            "undecided": g.undecided,
                            "witness_depth": g.witness_depth, "note": g.note} for g in self.guards]}


def antecedents(fn: Any, *args: Any) -> list[Any]:
    """The antecedent of every implication the check builds, in order (L.Implies logs them).
    The order is the same for symbolic and for concrete states: the checks' operators evaluate
    all their operands."""
    L.log = []
    try:
        fn(*args)
        return list(L.log)
    finally:
        L.log = None


def _key(term: Any) -> str:
    """A guard's shape, whatever state and input names it is over (pre./in. or the unrolled b3.)."""
    return re.sub(r"\b(?:pre|in|b\d+)\.", "X.", " ".join(str(term).split()))


def _text(key: str) -> str:
    return key.replace("X.", "")[:200]


def _generic(eng: Engine, c: Any) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    """The check's guards over generic names: gpre.f, gpost.f, entry==name, entry.param, ret (as the
    appendix of docs/verifier.md prints them), so that a guard has one shape for every entry point."""
    names = eng.k.field_names
    gpre = {f: z3.Int("gpre." + f) for f in names}
    gpost = {f: z3.Int("gpost." + f) for f in names}
    return [zbool(g) for g in antecedents(c.fn, S(gpre), S(gpost), Step(None, {}, z3.Int("ret")))], gpre, gpost


def _instance(eng: Engine, g: Any, gpre: dict[str, Any], gpost: dict[str, Any], pre: dict[str, Any],
              e: str, inputs: dict[str, Any], run: Any) -> Any:
    """The guard after entry point e with these inputs, from the state `pre`."""
    pairs = [(gpre[f], zint(pre[f])) for f in gpre] + [(gpost[f], zint(run.fields[f])) for f in gpost]
    pairs += [(z3.Bool("entry==%s" % en), z3.BoolVal(en == e)) for en in eng.entries]
    for en in eng.entries:
        for prm in eng.k.entry_params(en):
            pairs.append((z3.Int("%s.%s" % (en, prm)), zint(inputs[prm]) if en == e else z3.IntVal(0)))
    pairs.append((z3.Int("ret"), zint(run.ret if run.ret is not None else 0)))
    return z3.substitute(g, *pairs)


SEQUENCES = 24                   # random therapies (fixed seeds) whose steps witness guards concretely
_STEPS: dict[str, list[Any]] = {}      # per kernel (by SHA-256)


def concrete_steps(eng: Engine) -> list[tuple[dict[str, int], dict[str, int], str, dict[str, int], int]]:
    """(pre, post, entry, args, answer) of the steps of a few random therapies from the initial
    state, run on CPython (the kernel, and the observer beside it for a product): real,
    reachable steps. Derandomised: the same seeds every run."""
    kernel = getattr(eng.k, "kernel", eng.k)
    key = kernel.sha256
    if key in _STEPS:
        return _STEPS[key]
    from .randomtest import random_step
    from .relation import PREFIX, STATUS
    from .replay import OBSERVER, load_module
    from .translation import _therapy
    km = load_module(kernel.abspath)
    # the observer runs beside the kernel in every case: the kernel's own checks read only its
    # fields, and both engines of one proof share the records
    om = load_module(OBSERVER)
    records: list[tuple[dict[str, int], dict[str, int], str, dict[str, int], int]] = []
    for seed in range(SEQUENCES):
        rng = random.Random(seed)
        k = km.State()
        o = om.State()

        def snap(oret: int) -> dict[str, int]:
            out = {f: int(getattr(k, f)) for f in kernel.field_names}
            out.update({PREFIX + n: int(v) for n, v in vars(o).items()})
            out[STATUS] = int(oret)
            return out
        try:
            steps = _therapy(rng, km) + [random_step(rng, kernel) for _ in range(40)]
            cur: dict[str, int] | None = snap(0)
            oret = 0
            for entry, args, repeat in steps:
                params = [args[q] for q in kernel.entry_params(entry)]
                for i in range(repeat):
                    kept = i < 3 or i >= repeat - 3             # the ends of a long wait are what differ
                    if kept and cur is None:
                        cur = snap(oret)
                    ret = getattr(km, entry)(k, *params)
                    oret = getattr(om, entry)(o, *params)
                    if kept:
                        nxt = snap(oret)
                        records.append((cur, nxt, entry, dict(args), int(ret)))
                        cur = nxt
                    else:
                        cur = None                              # not copied: nobody reads it
        except Exception:       # a mutant may crash, or lack a helper the sample uses: fewer witnesses
            continue
    _STEPS[key] = records
    return records


def _witnessed(eng: Engine, c: Any, n: int, state_check: bool) -> set[int]:
    """Which of the check's n antecedents are true on some concrete reachable step."""
    seen: set[int] = set()
    for pre, post, entry, args, ret in concrete_steps(eng):
        vals = (antecedents(c.fn, S(post)) if state_check else
                antecedents(c.fn, S(pre), S(post), Step(entry, args, ret)))
        seen.update(i for i, v in enumerate(vals[:n]) if v is True)
        if len(seen) == n:
            break
    return seen


def _on_random_therapy(c: Any, g: Any) -> GuardResult:
    return GuardResult(c.text, _text(_key(g)), ["(a random therapy)"], True, [], 0,
                       "reached on a random therapy from the initial state")


def check_property(eng: Engine, p: Property, depth: int = 0) -> VacuityResult:
    t0 = time.time()
    res = VacuityResult(p.id, True)
    if p.special:
        res.seconds = time.time() - t0
        return res
    s = eng._solver()
    s.set("rlimit", SAT_RLIMIT)
    s.add(*eng.H_pre)
    s.add(eng._state_term(p, eng.pre))
    res.premise_satisfiable = s.check() == z3.sat
    for c in p.step:
        guards, gpre, gpost = _generic(eng, c)
        seen = _witnessed(eng, c, len(guards), False)
        for i, g in enumerate(guards):
            if i in seen:
                res.guards.append(_on_random_therapy(c, g))
                continue
            sat_entries, undecided, possible = [], [], []
            for e in eng.entries:
                inst = z3.simplify(_instance(eng, g, gpre, gpost, eng.pre, e, eng.inputs[e], eng.trans[e]))
                if z3.is_false(inst):
                    continue
                possible.append(e)
                s.push()
                s.add(inst)
                r = s.check()
                s.pop()
                if r == z3.sat:
                    sat_entries.append(e)
                    break                   # one entry point shows the case exists (the rest may too)
                if r != z3.unsat:
                    undecided.append(e)
            gr = GuardResult(c.text, _text(_key(g)), sat_entries, bool(sat_entries), [] if sat_entries else undecided)
            if gr.satisfiable and depth > 0:
                gr.witness_depth, gr.note = _witness(eng, g, gpre, gpost, possible, depth)
            res.guards.append(gr)
    for c in p.state:
        names = eng.k.field_names
        gs = {f: z3.Int("gpre." + f) for f in names}
        state_guards = [zbool(x) for x in antecedents(c.fn, S(gs))]
        seen = _witnessed(eng, c, len(state_guards), True)
        for i, g in enumerate(state_guards):
            if i in seen:
                res.guards.append(_on_random_therapy(c, g))
                continue
            s.push()
            s.add(z3.substitute(g, *[(gs[f], zint(eng.pre[f])) for f in names]))
            r = s.check()
            s.pop()
            ok = r == z3.sat                # unknown is undecided, as for the step checks, never vacuous
            res.guards.append(GuardResult(c.text, _text(_key(g)), ["(any state)"] if ok else [], ok,
                                          ["(any state)"] if r not in (z3.sat, z3.unsat) else []))
    res.seconds = time.time() - t0
    return res


def _witness(eng: Engine, g: Any, gpre: dict[str, Any], gpost: dict[str, Any], entries: list[str],
             depth: int) -> tuple[int | None, str]:
    """The shortest trace from the initial state whose last input makes the guard true."""
    b = eng.bmc()
    start = rlimit_count()
    for t in range(depth):
        b.extend(t + 1)
        terms = [z3.And(b.sels[t] == eng.entries.index(e),
                        _instance(eng, g, gpre, gpost, b.states[t], e, b.inputs[t][e], b.runs[t][e]))
                 for e in entries]
        left = COVER_RLIMIT - rlimit_spent(start)
        if left <= 0:
            return None, "not reached within %d steps (resource limit)" % t
        r, m, why = b._check(z3.Or(terms), None, left)
        if r == z3.sat:
            return t + 1, "reached in %d steps" % (t + 1)
        if r != z3.unsat:
            return None, "not reached within %d steps (%s)" % (t, why)
    return None, "not reached within %d steps" % depth


def apply(eng: Engine, results: list[Any], depth: int = 0) -> list[VacuityResult]:
    """Check every PROVED property of `results` (engine PropertyResults); a vacuous one becomes
    UNKNOWN, with the check and the guard that is never true in its detail."""
    out = []
    props = {p.id: p for p in eng.props}
    for r in results:
        if r.status != PROVED or r.id not in props:
            continue
        v = check_property(eng, props[r.id], depth)
        out.append(v)
        if not v.premise_satisfiable:
            r.status = UNKNOWN
            r.detail = "VACUOUS: no state satisfies the induction premise; " + r.detail
        elif v.vacuous:
            r.status = UNKNOWN
            r.detail = "VACUOUS: %s" % "; ".join("check '%s': guard never true (%s)" % (g.check, g.guard)
                                                  for g in v.vacuous) + ("; " + r.detail if r.detail else "")
        elif v.undecided:
            r.status = UNKNOWN
            r.detail = "vacuity undecided (solver limit): %s" % "; ".join(
                "check '%s' after %s" % (g.check, ", ".join(g.undecided)) for g in v.undecided) + (
                "; " + r.detail if r.detail else "")
    return out

