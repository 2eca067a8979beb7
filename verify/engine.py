"""Proof engines: the strengthening invariant (Houdini over the kernel's stated invariant and
the field ranges), k-induction, and BMC from the initial state, with counterexample traces.

The transition relation is the disjunction over the entry points, each with its own fresh
inputs (unconstrained Z3 integers: the kernel range-checks its inputs itself). Each entry
point is checked on its own (a disjunction is valid iff each disjunct is).

Soundness argument (docs/verifier.md):
1. The candidate strengthening is the conjunction of the field ranges and the top-level
   conjuncts of `invariant(s)`. Houdini drops every candidate that fails in `State()` or is
   not preserved (relative to the remaining ones) by some entry point, until the remaining
   conjunction H holds initially and is inductive. H holds in every reachable state.
   Property `kernel-invariant` is PROVED only if nothing was dropped.
2. Every `&`/`|` records an obligation that its operands are in [0, 255]; they are proved
   for every transition from an H-state (property `translation-exact`). If one is not, the
   translation may differ from Python, and no property is reported PROVED.
3. A property P (state checks Ps, step checks Pt) is PROVED by k-induction: base case
   Ps(State()) and no violation in the first k-1 steps from State() (BMC); step case: for
   states s0..sk all satisfying H, transitions s0->...->sk, Ps(s0), P on the first k-1
   transitions, P holds on the k-th. For k = 1 this is ordinary induction with H.
4. Otherwise BMC from State() up to the depth looks for a violation: FALSIFIED with the
   trace (replayed on CPython before it is reported); if none is found the property is
   UNKNOWN, with the counterexample to induction as a trace from an arbitrary H-state.

Budgets (the same commit must give the same verdict on an idle and on a loaded machine):
every solver call gets a Z3 resource limit (`rlimit`, CHECK_RLIMIT units, counted by Z3 in
steps of its own work, not in seconds), and the BMC search of one property gets BMC_RLIMIT
units in all (`bmc_rlimit`). Both are deterministic for the same input. Wall-clock limits
(`bmc_budget_s`, `timeout_ms`) are optional upper bounds on top, for the command line and the
benchmarks; tests leave them off. A search stopped by any limit is UNKNOWN (never FALSIFIED,
never a pass), and the property's detail says which limit stopped it.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import z3
import z3.z3 as z3core      # the main-context slot (fresh_context)

from .obligations import STRENGTHENING, TRANSLATION, ObligationLog
from .properties import PROPERTIES, RATE_UL_PER_H, Property, S, Step
from .relation import PREFIX as OBSERVER_PREFIX
from .subset import Kernel, load_kernel
from .symexec import (BIT_WIDTH, Result, Translator, as_bool, bit_fields, bits_of, clear_bits, input_vars, is_sym,
                      range_conjuncts, state_vars, value_of_bits, zbool)

PROVED, FALSIFIED, UNKNOWN = "proved", "falsified", "unknown"

# the volumes of prepared bags at the site's table rates (EXT-rates): rate x duration, and with the
# 1/8 overfill the scenarios use; the divergence search tries these first
PREPARED_VOLUMES_UL = sorted({r * h for h, r in RATE_UL_PER_H.items()} | {r * h * 9 // 8 for h, r in RATE_UL_PER_H.items()})

# Z3 resource units (rlimit). On the machine of the figures in README.md Z3 spends about 7
# million units a second here; the largest single check of `blinpump prove` takes under 7
# million, the whole BMC search of a planted bug at depth 8 about 30 million.
CHECK_RLIMIT = 500_000_000      # one solver call (about a minute)
BMC_RLIMIT = 500_000_000        # the whole BMC search of one property (about a minute)


def fresh_context() -> None:
    """Start a new Z3 context for the terms made from here on (z3's main context, which every
    term of the verifier uses). Z3's search depends on the terms made before it in its context,
    so a proof made after other proofs in the same process could spend different work, and at a
    limit give a different verdict, than the same proof made alone: each `prove` and each mutant
    starts from a new context, and its verdict and its Z3 units are those of a fresh process.
    Terms made earlier keep their own context alive and usable, but cannot be mixed with new
    ones. z3 has no public call for this: it resets the module's main-context slot, which
    z3.main_ctx() fills with a new Context on its next use."""
    z3core._main_ctx = None


def rlimit_count() -> int:
    """Z3's resource counter of the main context: the units spent so far in it. Deterministic
    for the same sequence of Z3 calls. Z3 reports it as a 32-bit count, which wraps: take
    differences with `rlimit_spent`."""
    st = z3.Solver().statistics()
    for key in st.keys():
        if key == "rlimit count":
            return int(st.get_key_value(key))
    return 0


def rlimit_spent(start: int) -> int:
    """The units spent since rlimit_count() gave `start`, across a wrap of the 32-bit counter
    (one search spends far fewer than 2**32 units: BMC_RLIMIT)."""
    return (rlimit_count() - start) & 0xFFFFFFFF


@dataclass
class PropertyResult:
    id: str
    clauses: list[str]
    statement: str
    status: str
    engine: str
    k: int | None
    seconds: float
    trace: str | None = None
    detail: str = ""
    failing_checks: list[str] = field(default_factory=list)
    trace_data: dict[str, Any] | None = None
    recheck: dict[str, Any] | None = None           # the second solver's verdict (verify/recheck.py)
    depends_on: dict[str, Any] | None = None        # the kernel lines the proof rests on (verify/dependencies.py)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "clauses": self.clauses, "statement": self.statement, "status": self.status,
                "engine": self.engine, "k": self.k, "seconds": round(self.seconds, 3), "trace": self.trace,
                "detail": self.detail, "failing_checks": self.failing_checks, **self._asked_for()}

    def _asked_for(self) -> dict[str, Any]:
        # present only with --recheck / --dependencies: the document is unchanged otherwise
        return {key: value for key, value in (("recheck", self.recheck), ("depends_on", self.depends_on))
                if value is not None}


@dataclass
class ProofRun:
    kernel: str
    kernel_sha256: str
    seconds: float
    properties: list[PropertyResult]
    dropped: list[dict[str, Any]] = field(default_factory=list)   # invariant candidates Houdini dropped
    depth: int = 0
    vacuity: list[Any] = field(default_factory=list)     # vacuity.VacuityResult per PROVED property
    # property id -> the unsat queries its PROVED rests on (record_obligations=True only)
    obligations: dict[str, list[Any]] = field(default_factory=dict)
    recheck: dict[str, Any] | None = None           # summary of the second solver's recheck

    @property
    def all_proved(self) -> bool:
        return bool(self.properties) and all(p.status == PROVED for p in self.properties)

    def as_json(self) -> dict[str, Any]:
        return {"kernel": self.kernel, "kernel_sha256": self.kernel_sha256, "seconds": round(self.seconds, 3),
                "depth": self.depth, "properties": [p.as_json() for p in self.properties],
                "invariant_dropped": self.dropped, "vacuity": [v.as_json() for v in self.vacuity],
                **({"recheck": self.recheck} if self.recheck is not None else {})}


def _model_int(m: z3.ModelRef, v: Any) -> int:
    if not is_sym(v):
        return int(v)
    r = m.eval(v, model_completion=True)
    if z3.is_true(r):
        return 1
    if z3.is_false(r):
        return 0
    return r.as_long()


class Engine:
    def __init__(self, kernel: Kernel, properties: list[Property] | None = None, depth: int = 8,
                 max_k: int = 3, trace_dir: str | os.PathLike[str] | None = None,
                 progress: Callable[[str], None] | None = None, timeout_ms: int | None = None,
                 replay_check: bool = True, bmc_budget_s: float | None = None,
                 rlimit: int = CHECK_RLIMIT, bmc_rlimit: int = BMC_RLIMIT, vacuity: bool = True,
                 witness_depth: int = 0, record_obligations: bool = False):
        """vacuity: check every proved property's premise and guarded cases (verify/vacuity.py);
        witness_depth: also look for a trace from the initial state reaching each guard.
        rlimit: Z3 resource units per solver call; bmc_rlimit: units for the whole BMC search of
        one property (both deterministic). timeout_ms (per solver call) and bmc_budget_s (per BMC
        search) are optional wall-clock upper bounds; None: none. record_obligations: keep the
        unsat queries the proofs rest on (self.obligation_log, for `prove --recheck`)."""
        self.k = kernel
        self.props = list(PROPERTIES if properties is None else properties)
        self.depth = depth
        self.max_k = max_k
        self.trace_dir = Path(trace_dir) if trace_dir else None
        self.progress = progress or (lambda msg: None)
        self.timeout_ms = timeout_ms
        self.replay_check = replay_check
        self.bmc_budget_s = bmc_budget_s
        self.rlimit = rlimit
        self.bmc_rlimit = bmc_rlimit
        self.vacuity = vacuity
        self.witness_depth = witness_depth
        self.unknown_reason = ""       # why the last induction check was neither sat nor unsat
        clear_bits()
        # a product of kernel and label observer (verify/product.py) brings its own translator
        self.tr: Any = kernel.translator() if hasattr(kernel, "translator") else Translator(kernel)
        self.entries = kernel.entries
        self.pre = state_vars(kernel, "pre.")
        self.inputs = {e: input_vars(kernel, e, "in.") for e in self.entries}
        self.trans: dict[str, Result] = {}
        for e in self.entries:
            self.trans[e] = self.tr.run(e, self.pre, self.inputs[e])
        self.candidates = self._candidates()
        self.H: list[int] = []
        self.dropped: list[dict[str, Any]] = []
        self.inv_cti: dict[str, Any] | None = None
        self.complete = True            # False after a Houdini stopped early (strengthen)
        self._houdini_stopped = False
        self._step_solvers: dict[str, z3.Solver] = {}     # per entry point, for the current H
        self._bmc: _BMC | None = None
        self.obligation_log: ObligationLog | None = None
        if record_obligations:
            self.obligation_log = ObligationLog("product" if hasattr(kernel, "observer") else "kernel")

    # ---------------------------------------------------------------- obligations (prove --recheck)
    def _record(self, group: str, name: str, assertions: list[Any], k: int = 1) -> None:
        """Keep a query Z3 answered unsat, for the second solver (verify/obligations.py)."""
        if self.obligation_log is not None:
            self.obligation_log.add(group, name, assertions, k)

    def _record_strengthening(self) -> None:
        # the final Houdini pass found each of these unsat (indicator literals aside)
        for e in self.entries:
            if self.H:
                self._record(STRENGTHENING, "step entry %s" % e,
                             self.H_pre + [z3.Not(z3.And(self.H_of(self.trans[e].fields)))])

    # ---------------------------------------------------------------- helpers
    def _step_solver(self, entry: str) -> z3.Solver:
        """One solver per entry point holding H over the pre-state, kept across the properties'
        k = 1 steps (each pushes its own goal and pops it): H is read into Z3 once, not once a
        property. Made again when H changes (strengthen)."""
        if entry not in self._step_solvers:
            s = self._solver()
            s.add(*self.H_pre)
            self._step_solvers[entry] = s
        return self._step_solvers[entry]

    def _solver(self) -> z3.Solver:
        s = z3.Solver()
        s.set("rlimit", self.rlimit)
        if self.timeout_ms is not None:
            s.set("timeout", self.timeout_ms)
        return s

    def _candidates(self) -> list[dict[str, Any]]:
        """Each candidate: label, line, fn(fields) -> Bool term."""
        cands: list[dict[str, Any]] = []
        for i, f in enumerate(self.k.fields):
            owner = "observer" if f.name.startswith(OBSERVER_PREFIX) else "kernel"
            cands.append({"kind": "range", "owner": owner, "line": f.line,
                          "text": "%d <= s.%s <= %d" % (f.lo, f.name, f.hi),
                          "fn": (lambda fields, i=i: range_conjuncts(self.k, fields)[i][2])})
        inv = self.tr.invariant_conjuncts(self.k.initial)
        for j, (line, text, _) in enumerate(inv):
            owner = ("relation" if text.startswith("relation: ") else
                     "observer" if text.startswith("observer: ") else "kernel")
            cands.append({"kind": "invariant", "owner": owner, "line": line, "text": text,
                          "fn": (lambda fields, j=j: self.tr.invariant_conjuncts(fields)[j][2])})
        return cands

    def dropped_of(self, owners: tuple[str, ...]) -> list[dict[str, Any]]:
        return [d for d in self.dropped if d.get("owner", "kernel") in owners]

    def _cand_terms(self, fields: dict[str, Any]) -> list[Any]:
        ranges = [c for _, _, c in range_conjuncts(self.k, fields)]
        inv = [c for _, _, c in self.tr.invariant_conjuncts(fields)]
        return ranges + inv

    # ---------------------------------------------------------------- invariant
    def strengthen(self, stop_owners: tuple[str, ...] = (), first_entries: tuple[str, ...] = ()) -> None:
        """Houdini: the largest inductive subset of the candidates that holds initially.

        With stop_owners, Houdini stops at the first candidate of those owners it drops (the
        mutation campaign: one dropped relation conjunct already fails label-relation, and
        Houdini never takes a dropped candidate back). The set left is then not inductive:
        `self.complete` is False and no property but that special one is judged on it.
        first_entries are checked before the others (where a mutant's edit is): the order
        changes only how soon a drop is found, not the result (the largest inductive subset is
        unique), as long as no query is left undecided by the resource limit (then everything
        is dropped, whatever the order: a different order asks different queries)."""
        t0 = time.time()
        self.complete = True
        self.inv_cti = None
        init_vals = self._cand_terms(self.k.initial)
        active = set()
        init_dropped = []
        for i, v in enumerate(init_vals):
            v = as_bool(v)
            ok = v if isinstance(v, bool) else z3.is_true(z3.simplify(v))
            if ok:
                active.add(i)
            else:
                c = self.candidates[i]
                init_dropped.append({"line": c["line"], "text": c["text"], "owner": c["owner"],
                                     "reason": "false in State()"})
        if any(d["owner"] in stop_owners for d in init_dropped):
            self._stopped(init_dropped, active, None, t0)
            return
        # Fields in [0, 255] used by & and | are represented by their bits. That assumes their
        # range, so the result is kept only if those range conjuncts survive (then the
        # assumption was part of H anyway); otherwise Houdini runs again on plain integers.
        names = self.k.field_names
        bitf = {f for f in bit_fields(self.k) if names.index(f) in active}
        plain_pre, plain_trans = self.pre, dict(self.trans)
        result = None
        if bitf:
            pre = state_vars(self.k, "pre.", bitf)
            trans = {e: self.tr.run(e, pre, self.inputs[e]) for e in self.entries}
            result = self._houdini(set(active), pre, trans, stop_owners, first_entries)
            # a stop stands whatever the representation (each drop is witnessed by a real state
            # satisfying the candidates still active; only the final set needs the ranges)
            if not self._houdini_stopped:
                if all(names.index(f) in result[0] for f in bitf):
                    self.pre, self.trans = pre, trans
                else:
                    result = None
        if result is None:
            bitf = set()
            result = self._houdini(set(active), plain_pre, plain_trans, stop_owners, first_entries)
        active, dropped, cti = result
        if self._houdini_stopped:
            self._stopped(init_dropped + dropped, active, cti, t0)
            return
        self.dropped = init_dropped + dropped
        self.inv_cti = cti
        self.H = sorted(active)
        self.bitfields = bitf
        self.H_pre = self.H_of(self.pre)
        self._step_solvers = {}
        self.strengthen_seconds = time.time() - t0
        if self.obligation_log is not None:
            self._record_strengthening()

    def _stopped(self, dropped: list[dict[str, Any]], active: set[int], cti: dict[str, Any] | None,
                 t0: float) -> None:
        self.complete = False
        self.inv_cti = cti
        self.bitfields = set()              # self.pre and self.trans are still the plain ones
        self.dropped = dropped
        self.H = sorted(active)
        self.H_pre = self.H_of(self.pre)
        self._step_solvers = {}
        self.strengthen_seconds = time.time() - t0

    def _houdini(self, active: set[int], pre: dict[str, Any], trans: dict[str, Result],
                 stop_owners: tuple[str, ...] = (), first_entries: tuple[str, ...] = ()
                 ) -> tuple[set[int], list[dict[str, Any]], dict[str, Any] | None]:
        dropped: list[dict[str, Any]] = []
        first_cti = None
        self._houdini_stopped = False
        pre_terms = [zbool(t) for t in self._cand_terms(pre)]
        post_terms = {e: [zbool(t) for t in self._cand_terms(trans[e].fields)] for e in self.entries}
        ind = [z3.Bool("H%d" % i) for i in range(len(pre_terms))]
        solvers = {}
        for e in self.entries:
            s = self._solver()
            for a, t in zip(ind, pre_terms):
                s.add(z3.Implies(a, t))
            solvers[e] = s
        order = [e for e in first_entries if e in solvers] + [e for e in self.entries if e not in first_entries]
        changed = True
        while changed:
            changed = False
            for e in order:
                s = solvers[e]
                while True:
                    act = sorted(active)
                    if not act:
                        break
                    s.push()
                    s.add(z3.Not(z3.And([post_terms[e][i] for i in act])))
                    _t0 = time.time()
                    r = s.check([ind[i] for i in act])
                    if os.environ.get("VERIFY_DEBUG"):
                        print("houdini", e, r, round(time.time() - _t0, 2), len(act), file=sys.stderr)
                    if r == z3.unsat:
                        s.pop()
                        break
                    if r != z3.sat:
                        # cannot decide (a resource limit): drop everything (sound, conservative)
                        why = s.reason_unknown()
                        s.pop()
                        for i in act:
                            c = self.candidates[i]
                            dropped.append({"line": c["line"], "text": c["text"], "owner": c["owner"],
                                            "reason": "solver gave %s (%s) for entry %s" % (r, why, e)})
                        active = set()
                        changed = True
                        break
                    m = s.model()
                    bad = [i for i in act if z3.is_false(m.eval(post_terms[e][i], model_completion=True))]
                    cti = self._cti_from_model(m, [(e, pre, self.inputs[e])])
                    s.pop()
                    for i in bad:
                        c = self.candidates[i]
                        dropped.append({"line": c["line"], "text": c["text"], "owner": c["owner"],
                                        "reason": "not preserved by %s" % e, "cti": cti})
                    if first_cti is None:
                        first_cti = cti
                    active -= set(bad)
                    changed = True
                    if not bad:  # should not happen
                        break
                    if any(self.candidates[i]["owner"] in stop_owners for i in bad):
                        self._houdini_stopped = True
                        return active, dropped, first_cti
        return active, dropped, first_cti

    def H_of(self, fields: dict[str, Any]) -> list[Any]:
        terms = self._cand_terms(fields)
        return [zbool(terms[i]) for i in self.H]

    # ---------------------------------------------------------------- traces
    def _cti_from_model(self, m: z3.ModelRef, steps: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
        """steps: (entry, pre-state vars of the first state, inputs) - initial from the first pre."""
        _, first, _ = steps[0]
        initial = {f: _model_int(m, first[f]) for f in self.k.field_names}
        out = []
        for e, _, inp in steps:
            out.append({"entry": e, "args": {p: _model_int(m, inp[p]) for p in self.k.entry_params(e)}})
        return {"initial": initial, "steps": out}

    def _trace_doc(self, prop: str, cti: dict[str, Any], kind: str) -> dict[str, Any]:
        return {"kernel": self.k.path, "kernel_sha256": self.k.sha256, "property": prop, "kind": kind,
                "initial": cti["initial"], "steps": cti["steps"]}

    def _write_trace(self, doc: dict[str, Any]) -> str | None:
        if self.trace_dir is None:
            return None
        self.trace_dir.mkdir(parents=True, exist_ok=True)
        path = self.trace_dir / ("%s.%s.json" % (doc["property"], doc["kind"]))
        path.write_text(json.dumps(doc, indent=1) + "\n")
        return str(path)

    # ---------------------------------------------------------------- properties
    def _prop_terms(self, p: Property, pre: dict[str, Any], post: dict[str, Any], entry: str,
                    args: dict[str, Any], ret: Any) -> Any:
        return zbool(p.holds(S(pre), S(post), Step(entry, args, ret)))

    def _state_term(self, p: Property, fields: dict[str, Any]) -> Any:
        from .properties import L
        return zbool(L.And(*[t for _, t in p.state_terms(S(fields))]))

    def check_induction(self, p: Property, k: int) -> tuple[str, dict[str, Any] | None]:
        """Step case of k-induction. Returns (sat/unsat/unknown, cti)."""
        if k == 1:
            for e in self.entries:
                s = self._step_solver(e)
                s.push()
                try:
                    s.add(self._state_term(p, self.pre))
                    r = self.trans[e]
                    s.add(z3.Not(self._prop_terms(p, self.pre, r.fields, e, self.inputs[e], r.ret)))
                    res = s.check()
                    if res == z3.sat:
                        return "sat", self._cti_from_model(s.model(), [(e, self.pre, self.inputs[e])])
                    if res != z3.unsat:
                        self.unknown_reason = "induction k=1, entry %s: solver gave unknown (%s)" % (e, s.reason_unknown())
                        return "unknown", None
                    self._record(p.id, "step k=1 entry %s" % e, list(s.assertions()))
                finally:
                    s.pop()
            return "unsat", None
        # k >= 2: a chain of k transitions from an arbitrary H-state, the last one checked per entry
        states = [state_vars(self.k, "k%d." % i, self.bitfields) for i in range(k)]
        s = self._solver()
        sels = []
        step_inputs = []
        step_runs = []
        for i in range(k - 1):
            sel, inputs, post, constraint, runs = self._chain_step(states[i], "k%d." % i)
            s.add(constraint)
            s.add(*[_zi(post[f]) == _zi(states[i + 1][f]) for f in self.k.field_names])
            sels.append(sel)
            step_inputs.append(inputs)
            step_runs.append(runs)
        for i in range(k):
            s.add(*self.H_of(states[i]))
        s.add(self._state_term(p, states[0]))
        for i in range(k - 1):
            s.add(self._chain_prop(p, states[i], states[i + 1], sels[i], step_inputs[i], step_runs[i]))
        last = states[k - 1]
        for e in self.entries:
            inp = input_vars(self.k, e, "k%d." % (k - 1))
            r = self.tr.run(e, last, inp)
            s.push()
            s.add(z3.Not(self._prop_terms(p, last, r.fields, e, inp, r.ret)))
            res = s.check()
            if res == z3.sat:
                m = s.model()
                chain = []
                for i in range(k - 1):
                    idx = _model_int(m, sels[i])
                    en = self.entries[idx]
                    chain.append((en, states[i], step_inputs[i][en]))
                chain.append((e, last, inp))
                cti = self._cti_from_model(m, chain)
                s.pop()
                return "sat", cti
            if res != z3.unsat:
                self.unknown_reason = "induction k=%d, entry %s: solver gave unknown (%s)" % (k, e, s.reason_unknown())
                s.pop()
                return "unknown", None
            self._record(p.id, "step k=%d entry %s" % (k, e), list(s.assertions()), k)
            s.pop()
        return "unsat", None

    def _chain_step(self, pre: dict[str, Any], prefix: str) -> tuple[Any, dict[str, dict[str, Any]], dict[str, Any], Any, dict[str, Result]]:
        sel = z3.Int(prefix + "entry")
        inputs = {e: input_vars(self.k, e, prefix) for e in self.entries}
        runs = {e: self.tr.run(e, pre, inputs[e]) for e in self.entries}
        post: dict[str, Any] = {}
        for f in self.k.field_names:
            v: Any = runs[self.entries[-1]].fields[f]
            for idx in range(len(self.entries) - 2, -1, -1):
                e = self.entries[idx]
                v = z3.If(sel == idx, _zi(runs[e].fields[f]), _zi(v))
            post[f] = v
        return sel, inputs, post, z3.And(sel >= 0, sel < len(self.entries)), runs

    def _chain_prop(self, p: Property, pre: dict[str, Any], post: dict[str, Any], sel: Any,
                    inputs: dict[str, dict[str, Any]], runs: dict[str, Result]) -> Any:
        terms = []
        for idx, e in enumerate(self.entries):
            terms.append(z3.Implies(sel == idx, self._prop_terms(p, pre, post, e, inputs[e], runs[e].ret)))
        return z3.And(terms)

    def _inv_obligations(self, fields: dict[str, Any]) -> list[Any]:
        self.tr.invariant_conjuncts(fields)
        return list(self.tr.obligations)

    def check_obligations(self) -> tuple[str, dict[str, Any] | None, str]:
        pre_obls = self._inv_obligations(self.pre)
        for e in self.entries:
            obls = self.trans[e].obligations + pre_obls + self._inv_obligations(self.trans[e].fields)
            if not obls:
                continue
            s = self._solver()
            s.add(*self.H_pre)
            s.add(z3.Not(z3.And([zbool(o.cond) for o in obls])))
            res = s.check()
            if res == z3.sat:
                m = s.model()
                bad = [o for o in obls if z3.is_false(m.eval(zbool(o.cond), model_completion=True))]
                where = ", ".join("line %d: %s" % (o.line, o.what) for o in bad)
                return "sat", self._cti_from_model(m, [(e, self.pre, self.inputs[e])]), where
            if res != z3.unsat:
                return "unknown", None, "solver: %s (%s)" % (res, s.reason_unknown())
            self._record(TRANSLATION, "obligations entry %s" % e, list(s.assertions()))
        return "unsat", None, ""

    # ---------------------------------------------------------------- BMC
    def bmc(self) -> "_BMC":
        if self._bmc is None:
            self._bmc = _BMC(self)
        return self._bmc

    # ---------------------------------------------------------------- main
    def run(self) -> ProofRun:
        t_all = time.time()
        self.progress("strengthening: %d candidate invariants (field ranges + invariant(s))" % len(self.candidates))
        self.strengthen()
        results: list[PropertyResult] = []
        n = len(self.props)
        obligations_ok = True
        for idx, p in enumerate(self.props, 1):
            self.progress("[%d/%d] %s ..." % (idx, n, p.id))
            t0 = time.time()
            res = self._prove_one(p)
            res.seconds = time.time() - t0
            if p.special == "obligations" and res.status != PROVED:
                obligations_ok = False
            self.progress("[%d/%d] %s: %s%s (%.2f s)" % (idx, n, p.id, res.status.upper(),
                                                        " k=%d" % res.k if res.status == PROVED and res.k else "",
                                                        res.seconds))
            results.append(res)
        if not any(p.special == "obligations" for p in self.props):
            # not requested, but every PROVED relies on it: check it anyway
            obligations_ok = self.check_obligations()[0] == "unsat"
        if not obligations_ok:
            for r in results:
                if r.status == PROVED and r.id != "translation-exact":
                    r.status = UNKNOWN
                    r.detail = "translation not shown exact (see translation-exact); " + r.detail
        vac: list[Any] = []
        if self.vacuity:
            from . import vacuity      # a proof whose premise is never true fails loudly
            self.progress("vacuity: premises and guarded cases of %d proved properties" % sum(
                1 for r in results if r.status == PROVED))
            vac = vacuity.apply(self, results, self.witness_depth)
        return ProofRun(self.k.path, self.k.sha256, time.time() - t_all, results, self.dropped, self.depth, vac)

    def _prove_one(self, p: Property) -> PropertyResult:
        mk = lambda status, engine, k, detail="", trace=None, checks=None, data=None: PropertyResult(  # noqa: E731
            p.id, p.clauses, p.statement, status, engine, k, 0.0, trace, detail, checks or [], data)
        if not self.complete and p.special != "relation":
            return mk(UNKNOWN, "k-induction", None, "Houdini was stopped early: no inductive invariant to judge on")
        if p.special in ("invariant", "relation"):
            owners = ("kernel",) if p.special == "invariant" else ("relation", "observer")
            if p.special == "relation" and not hasattr(self.k, "observer"):
                return mk(UNKNOWN, "k-induction", None, "no label observer in this run (verify/product.py)")
            dropped = self.dropped_of(owners)
            if not dropped:
                n = sum(1 for i in self.H if self.candidates[i]["owner"] in owners)
                return mk(PROVED, "k-induction", 1, "holds in the initial state and is inductive (%d conjuncts)" % n)
            detail = "; ".join("line %d: %s (%s)" % (d["line"], d["text"], d["reason"]) for d in dropped)
            found = self.bmc().search_invariant(self, self.bmc_budget_s, owners) if self.depth > 0 else None
            if found is not None:
                doc = self._trace_doc(p.id, found, "bmc")
                return mk(FALSIFIED, "bmc", None, detail, self._write_trace(doc), [], doc)
            if self.inv_cti is not None:
                doc = self._trace_doc(p.id, self.inv_cti, "induction-step")
                return mk(UNKNOWN, "k-induction", 1, detail, self._write_trace(doc), [], doc)
            return mk(UNKNOWN, "k-induction", 1, detail)
        if p.special == "obligations":
            r, cti, where = self.check_obligations()
            if r == "unsat":
                return mk(PROVED, "k-induction", 1, "%d obligations" % sum(len(t.obligations) for t in self.trans.values()))
            doc = self._trace_doc(p.id, cti, "induction-step") if cti else None
            return mk(UNKNOWN, "k-induction", 1, where, self._write_trace(doc) if doc else None, [], doc)
        init_fail = p.failing_state(S(self.k.initial))
        if init_fail:
            doc = {"kernel": self.k.path, "kernel_sha256": self.k.sha256, "property": p.id, "kind": "bmc",
                   "initial": self.k.initial, "steps": []}
            return mk(FALSIFIED, "bmc", 0, "fails in State(): " + "; ".join(init_fail), self._write_trace(doc),
                      init_fail, doc)
        cti = None
        self.unknown_reason = ""
        for k in range(1, self.max_k + 1):
            r, c = self.check_induction(p, k)
            if cti is None or c is not None:
                cti = c if c is not None else cti
            if r == "unsat":
                if k > 1:
                    base = self.bmc().search(p, k - 1)
                    if base is not None:
                        return self._falsified(p, base, mk)
                    if self.bmc().last[0] != "complete":
                        break  # base case not established: not proved
                return mk(PROVED, "k-induction", k)
            if r == "unknown":
                break
        if self.depth <= 0:
            found = None
        elif hasattr(self.k, "observer") and p.id == "label-exact":
            found = self.bmc().search_divergence(p, self.depth, self.bmc_budget_s)
        else:
            found = self.bmc().search(p, self.depth, self.bmc_budget_s)
        if found is not None:
            return self._falsified(p, found, mk)
        reach = self.bmc().last if self.depth > 0 else ("complete", 0)
        detail = "not inductive up to k=%d; no counterexample within %d steps of State()%s" % (
            self.max_k, reach[1], "" if reach[0] == "complete" else " (BMC stopped: %s)" % self.bmc().stop_reason)
        if self.unknown_reason:
            detail += "; " + self.unknown_reason
        doc = self._trace_doc(p.id, cti, "induction-step") if cti else None
        checks = self._failing_checks(p, cti) if cti else []
        return mk(UNKNOWN, "k-induction", self.max_k, detail, self._write_trace(doc) if doc else None, checks, doc)

    def _failing_checks(self, p: Property, trace: dict[str, Any]) -> list[str]:
        try:
            from .replay import replay_interpreted
            rep = replay_interpreted(self.k, p, trace)
            return rep["failing_checks"]
        except Exception:  # pragma: no cover - diagnostics only
            return []

    def _falsified(self, p: Property, found: dict[str, Any], mk: Callable[..., PropertyResult]) -> PropertyResult:
        doc = self._trace_doc(p.id, found, "bmc")
        path = self._write_trace(doc)
        checks = self._failing_checks(p, found)
        detail = "counterexample of %d steps from State()" % len(found["steps"])
        if self.replay_check:
            from .replay import replay_cpython
            rep = replay_cpython(doc, kernel_path=self.k.abspath, prop=p)
            if not rep["violated"]:
                return mk(UNKNOWN, "bmc", None, "BMC trace did not replay on CPython (verifier bug?)", path, checks, doc)
            detail += "; replayed on CPython: violated at step %d" % rep["step"]
            checks = rep["failing_checks"]
        return mk(FALSIFIED, "bmc", None, detail, path, checks, doc)


def _zi(v: Any) -> Any:
    if is_sym(v):
        return v if not z3.is_bool(v) else z3.If(v, z3.IntVal(1), z3.IntVal(0))
    return z3.IntVal(int(v))


class _BMC:
    """Unrolling from State(): s0 = State(), s_{t+1} = T(s_t, entry_t, inputs_t)."""

    def __init__(self, eng: Engine, initial: dict[str, int] | None = None):
        self.e = eng
        self.k = eng.k
        self.solver = eng._solver()
        self.initial = dict(self.k.initial if initial is None else initial)
        self.states: list[dict[str, Any]] = [dict(self.initial)]
        self.sels: list[Any] = []
        self.last: tuple[str, int] = ("complete", 0)
        self.stop_reason = ""          # when last[0] == "stopped": which limit stopped the search
        self.inputs: list[dict[str, dict[str, Any]]] = []
        self.runs: list[dict[str, Result]] = []

    def extend(self, depth: int) -> None:
        while len(self.sels) < depth:
            t = len(self.sels)
            pre = self.states[t]
            sel = z3.Int("b%d.entry" % t)
            inputs = {e: input_vars(self.k, e, "b%d." % t) for e in self.e.entries}
            runs = {e: self.e.tr.run(e, pre, inputs[e]) for e in self.e.entries}
            nxt = state_vars(self.k, "b%d." % (t + 1))
            self.solver.add(sel >= 0, sel < len(self.e.entries))
            for f in self.k.field_names:
                allbits = [bits_of(runs[en].fields[f]) for en in self.e.entries]
                if f in self.e.bitfields and all(b is not None for b in allbits):
                    # exact: the next value's bits are the selected entry's bits
                    nbits = [z3.Bool("b%d.%s.bit%d" % (t + 1, f, i)) for i in range(BIT_WIDTH)]
                    for i in range(BIT_WIDTH):
                        bv: Any = zbool(allbits[-1][i])  # type: ignore[index]
                        for idx in range(len(self.e.entries) - 2, -1, -1):
                            bv = z3.If(sel == idx, zbool(allbits[idx][i]), bv)  # type: ignore[index]
                        self.solver.add(nbits[i] == bv)
                    nxt[f] = value_of_bits(nbits)
                    continue
                v: Any = _zi(runs[self.e.entries[-1]].fields[f])
                for idx in range(len(self.e.entries) - 2, -1, -1):
                    en = self.e.entries[idx]
                    v = z3.If(sel == idx, _zi(runs[en].fields[f]), v)
                self.solver.add(nxt[f] == v)
            self.sels.append(sel)
            self.inputs.append(inputs)
            self.runs.append(runs)
            self.states.append(nxt)

    def _violation(self, p: Property, t: int) -> Any:
        pre, post = self.states[t], self.states[t + 1]
        terms = []
        for idx, en in enumerate(self.e.entries):
            r = self.runs[t][en]
            terms.append(z3.And(self.sels[t] == idx,
                                z3.Not(self.e._prop_terms(p, pre, post, en, self.inputs[t][en], r.ret))))
        return z3.Or(terms)

    def _trace(self, m: z3.ModelRef, t: int) -> dict[str, Any]:
        steps = []
        for i in range(t + 1):
            idx = _model_int(m, self.sels[i])
            en = self.e.entries[idx]
            steps.append({"entry": en, "args": {p: _model_int(m, self.inputs[i][en][p]) for p in self.k.entry_params(en)}})
        return {"initial": dict(self.initial), "steps": steps}

    def _check(self, goal: Any, deadline: float | None, rlimit: int) -> Any:
        self.solver.push()
        self.solver.add(goal)
        self.solver.set("rlimit", rlimit)
        if deadline is not None:
            ms = int(max(1.0, deadline - time.time()) * 1000)
            self.solver.set("timeout", ms if self.e.timeout_ms is None else min(ms, self.e.timeout_ms))
        r = self.solver.check()
        m = self.solver.model() if r == z3.sat else None
        why = self.solver.reason_unknown() if r == z3.unknown else ""
        self.solver.pop()
        self.solver.set("rlimit", self.e.rlimit)
        if deadline is not None:
            # back to the engine's own limit; 4294967295 ms is Z3's "no timeout"
            self.solver.set("timeout", self.e.timeout_ms if self.e.timeout_ms is not None else 4294967295)
        return r, m, why

    def search(self, p: Property, depth: int, budget_s: float | None = None) -> dict[str, Any] | None:
        """Shortest violation of p within `depth` steps of State(), or None. `self.last`
        records how far the search got: ("complete", depth) or ("stopped", t)."""
        return self._search(lambda t: self._violation(p, t), depth, budget_s, record=p.id)

    def search_divergence(self, p: Property, depth: int, budget_s: float | None = None) -> dict[str, Any] | None:
        """A trace from the initial states on which kernel and observer decide differently.

        Searching the product directly is slow (two machines per step). Phase 1 looks for the
        shortest trace whose last step either breaks the property or first breaks the relational
        invariant (verify/relation.py), assuming the relation in every earlier state: that pins
        the observer's state to the kernel's, and the search is as cheap as the kernel's own.
        If the relation broke with no decision differing yet, phase 2 goes on from that concrete
        state of the product, without the assumption, for up to `depth` more steps. Stops and
        budgets as in `search`; a stop is UNKNOWN."""
        from .relation import conjuncts

        def rel(st: dict[str, Any]) -> Any:
            return z3.And([zbool(v) for _, v in conjuncts(st)])
        deadline = time.time() + budget_s if budget_s is not None else None
        self.stop_reason = ""
        # First with every bag's volume one of the prepared volumes of the site's table (rate x
        # duration, with or without the 1/8 overfill): the order's division by the volume is then
        # by a constant and the search is linear and quick. Only a way to find a trace sooner: a
        # trace found is a trace, and without a trace the unhinted search follows.
        for hinted in (True, False):
            budget = self.e.bmc_rlimit // 4 if hinted else self.e.bmc_rlimit
            start = rlimit_count()
            first = _BMC(self.e, self.initial)
            stopped = ""
            for t in range(depth):
                first.extend(t + 1)
                first.solver.add(rel(first.states[t]))
                if hinted and "bag" in first.inputs[t]:
                    first.solver.add(z3.Or([first.inputs[t]["bag"]["volume_ul"] == v for v in PREPARED_VOLUMES_UL]))
                left = budget - rlimit_spent(start)
                if left <= 0 or (deadline is not None and time.time() > deadline):
                    stopped = "limit reached at depth %d of the divergence search" % (t + 1)
                    break
                r, m, why = first._check(z3.Or(first._violation(p, t), z3.Not(rel(first.states[t + 1]))),
                                         deadline, min(left, self.e.rlimit))
                if r == z3.unsat:
                    continue
                if r != z3.sat:
                    stopped = "solver gave %s at depth %d of the divergence search (%s)" % (r, t + 1, why)
                    break
                prefix = first._trace(m, t)
                if z3.is_true(m.eval(first._violation(p, t), model_completion=True)):
                    self.last = ("found", t + 1)
                    return prefix
                # the relation broke first: go on from that concrete state
                at = {f: _model_int(m, first.states[t + 1][f]) for f in self.k.field_names}
                second = _BMC(self.e, at)
                rest = second._search(lambda u: second._violation(p, u), depth,
                                      None if deadline is None else max(1.0, deadline - time.time()))
                if rest is None:
                    self.last = ("stopped", t) if second.last[0] == "stopped" else ("complete", depth)
                    self.stop_reason = ("the relation breaks after %d steps, and no decision differs within %d "
                                        "more steps%s" % (t + 1, depth, "" if second.last[0] != "stopped"
                                                          else " (%s)" % second.stop_reason))
                    return None
                self.last = ("found", t + 1 + len(rest["steps"]))
                return {"initial": prefix["initial"], "steps": prefix["steps"] + rest["steps"]}
            if stopped and not hinted:
                self.last = ("stopped", depth)
                self.stop_reason = stopped
                return None
        self.last = ("complete", depth)
        return None

    def search_invariant(self, eng: Engine, budget_s: float | None = None,
                         owners: tuple[str, ...] = ("kernel",)) -> dict[str, Any] | None:
        dropped_idx = [i for i in range(len(eng.candidates))
                       if i not in set(eng.H) and eng.candidates[i]["owner"] in owners]

        def goal(t: int) -> Any:
            terms = eng._cand_terms(self.states[t + 1])
            return z3.Or([z3.Not(zbool(terms[i])) for i in dropped_idx])
        return self._search(goal, eng.depth, budget_s)

    def _search(self, goal: Callable[[int], Any], depth: int, budget_s: float | None,
                record: str | None = None) -> dict[str, Any] | None:
        """Depth by depth: stops at the first violation, at `depth`, when the search has spent
        the engine's bmc_rlimit Z3 resource units (deterministic), or when the optional
        wall-clock budget_s has passed. A stop leaves self.last = ("stopped", t) and says why in
        self.stop_reason: the property is then UNKNOWN, never FALSIFIED."""
        deadline = time.time() + budget_s if budget_s is not None else None
        start = rlimit_count()
        self.stop_reason = ""
        for t in range(depth):
            if deadline is not None and time.time() > deadline:
                self.last = ("stopped", t)
                self.stop_reason = "time budget of %g s (--bmc-budget) at depth %d" % (budget_s, t + 1)
                return None
            self.extend(t + 1)
            left = self.e.bmc_rlimit - rlimit_spent(start)
            if left <= 0:
                self.last = ("stopped", t)
                self.stop_reason = "resource limit of %d Z3 units (bmc_rlimit) at depth %d" % (self.e.bmc_rlimit, t + 1)
                return None
            g = goal(t)
            r, m, why = self._check(g, deadline, min(left, self.e.rlimit))
            if r == z3.sat:
                self.last = ("found", t + 1)
                return self._trace(m, t)
            if r == z3.unsat and record is not None:
                # a base case of k-induction (k = depth + 1) rests on these
                self.e._record(record, "base depth %d" % (t + 1), list(self.solver.assertions()) + [g], depth + 1)
            if r != z3.unsat:
                self.last = ("stopped", t)
                if deadline is not None and time.time() >= deadline:
                    self.stop_reason = "time budget of %g s (--bmc-budget) at depth %d" % (budget_s, t + 1)
                elif left <= self.e.rlimit:
                    self.stop_reason = "resource limit of %d Z3 units (bmc_rlimit) at depth %d (%s)" % (
                        self.e.bmc_rlimit, t + 1, why)
                else:
                    self.stop_reason = "resource limit of %d Z3 units per check (rlimit) at depth %d (%s)" % (
                        self.e.rlimit, t + 1, why)
                return None
        self.last = ("complete", depth)
        return None


def prove(kernel_path: str | os.PathLike[str], properties: list[Property] | None = None, depth: int = 8,
          max_k: int = 3, trace_dir: str | os.PathLike[str] | None = None,
          progress: Callable[[str], None] | None = None, display_path: str | None = None,
          replay_check: bool = True, bmc_budget_s: float | None = None,
          bmc_rlimit: int = BMC_RLIMIT, rlimit: int = CHECK_RLIMIT, vacuity: bool = False,
          witness_depth: int = 0, record_obligations: bool = False, dependencies: bool = False,
          workers: int = 1) -> ProofRun:
    """Prove `properties` (default: all) of the kernel at kernel_path.

    The verdict depends only on the input, the properties asked and the resource limits (rlimit
    per solver call, bmc_rlimit per BMC search: Z3 units, deterministic; the properties' k = 1
    steps share one solver per entry point, so which properties ran before can change how
    soon Z3 answers, never an unsat into sat; each call starts a new Z3 context, so what ran
    before it in the process does not: fresh_context). bmc_budget_s is an optional upper bound
    in seconds on each BMC search (the command line's --bmc-budget); None: no wall-clock limit,
    which is what tests use. A search stopped by a limit gives UNKNOWN, which is never a pass.
    vacuity: also check every PROVED property's premise and guarded cases (verify/vacuity.py);
    `blinpump prove` always does. record_obligations: also return the unsat queries each PROVED
    rests on (ProofRun.obligations);
    dependencies: also name the kernel lines each proof rests on (PropertyResult.depends_on).
    workers: with 2 or more, the product's properties (against the label observer) are proved in
    a second process while this one proves the kernel's own: the two engines share nothing, so
    the verdicts are those of one process (not with record_obligations or dependencies, whose
    Z3 terms stay in this process)."""
    t0 = time.time()
    fresh_context()
    kernel = load_kernel(kernel_path, display_path)
    props = list(PROPERTIES if properties is None else properties)
    runs = []
    obligations: dict[str, list[Any]] = {}
    kw = dict(depth=depth, max_k=max_k, trace_dir=trace_dir, replay_check=replay_check, bmc_budget_s=bmc_budget_s,
              rlimit=rlimit, bmc_rlimit=bmc_rlimit, vacuity=vacuity, witness_depth=witness_depth)
    exact = [p.id for p in props if p.product]
    registered = {p.id: p for p in PROPERTIES}
    beside = None
    # the second process looks the properties up by id: only the registered ones go there
    if (workers >= 2 and exact and len(exact) < len(props) and not record_obligations and not dependencies
            and all(registered.get(p.id) is p for p in props if p.product)):
        beside = _beside(str(kernel_path), display_path, exact, kw, progress is not None)
        props_here = [p for p in props if not p.product]
    else:
        props_here = props
    try:
        for eng in engines(kernel, props_here, progress=progress, record_obligations=record_obligations, **kw):
            runs.append(eng.run())
            if eng.obligation_log is not None:
                obligations.update(eng.obligation_log.rested_on(eng.props, runs[-1].properties))
            if dependencies:
                from .dependencies import analyse
                analyse(eng, runs[-1].properties)
    except BaseException:
        if beside is not None:
            _abandon(beside)            # an error here: the second process is not waited for
        raise
    if beside is not None:
        runs.insert(0, _collect(beside))
    by_id = {r.id: r for run in runs for r in run.properties}
    run = ProofRun(kernel.path, kernel.sha256, time.time() - t0, [by_id[p.id] for p in props],
                   [d for run in runs for d in run.dropped], depth,
                   vacuity=[v for run in runs for v in run.vacuity], obligations=obligations)
    return run


def _beside(kernel_path: str, display_path: str | None, prop_ids: list[str], kw: dict[str, Any],
            show: bool) -> Any:
    """Start proving `prop_ids` in a second process (spawned: a forked copy of a process that
    has run Z3 is not safe); its progress lines go to stderr, marked as the observer's."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    fut = pool.submit(_prove_ids, kernel_path, display_path, prop_ids, kw, show)
    return pool, fut


def _abandon(beside: Any) -> None:
    pool, fut = beside
    fut.cancel()
    for proc in list(getattr(pool, "_processes", {}).values()):
        proc.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


def _collect(beside: Any) -> ProofRun:
    pool, fut = beside
    try:
        return fut.result()
    finally:
        pool.shutdown(wait=True)


def _prove_ids(kernel_path: str, display_path: str | None, prop_ids: list[str], kw: dict[str, Any],
               show: bool) -> ProofRun:
    from .properties import by_id
    progress = (lambda msg: stderr_progress("observer: " + msg)) if show else None
    kernel = load_kernel(kernel_path, display_path)
    (eng,) = engines(kernel, by_id(prop_ids), progress=progress, **kw)
    return eng.run()


def engines(kernel: Kernel, props: list[Property], **kw: Any) -> list[Engine]:
    """The engines a set of properties needs: the kernel's own properties on the kernel, the
    exact ones (Property.product) on the product of the kernel and the label observer
    (verify/product.py), each with its own strengthening. The product comes first: it is the
    quicker one and catches most planted bugs."""
    from .product import OBSERVER, make_product
    out = []
    exact = [p for p in props if p.product]
    own = [p for p in props if not p.product]
    if exact:
        observer = load_kernel(OBSERVER, "model/observer.py")
        out.append(Engine(make_product(kernel, observer), exact, **kw))
    if own:
        out.append(Engine(kernel, own, **kw))
    return out


def stderr_progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
