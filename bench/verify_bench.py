"""Benchmark of the verifier (issue 4): proof time, BMC depth table, mutation adequacy against
a Hypothesis random-testing campaign with the same time budget per mutant.

    .venv/bin/python bench/verify_bench.py [--mutants N] [--campaign-mutants N] [--depths 1,2,3,4,5,6]
                                           [--parts proofs,bmc,mutants,campaign,recheck,dependencies]
                                           [--out FILE]

Writes bench/results/verify.json:
- prove_seconds_median     median wall time of 3 full proofs of firmware/kernel.py (all properties)
- prove_seconds            the 3 times
- properties_proved        properties PROVED (of properties_total)
- bmc_table                for each depth d: wall time of a BMC search from State() for a violation
                           of any property within d steps (no violation exists), per-check timeout
- mutants_total            mutants of the campaign: every one generated (mutants_sampled false), the
                           9 the subset rejects included, or an even spread of --mutants N
- mutants_caught_verifier  mutants with some property falsified or not proved (verify/mutants.py)
- mutants_equivalent       surviving mutants proved behaviour-identical on all reachable states
- mutants_survived         the others (goal 0): listed in survivors
- mutants_caught_hypothesis mutants the Hypothesis campaign (verify/randomtest.py, the label observer
                           beside the kernel) caught on a concrete run, each given the time the
                           verifier spent on that mutant (at least --min-budget)
- mutants_caught_both, _hypothesis_only, _verifier_only  the comparison, mutant by mutant
- per_operator, survivors, mutants_caught_by  details; per-mutant rows go to
                           bench/results/verify_mutants.json, and stream to --results as they come
                           in (--resume goes on from there)
- campaign_seconds_1_worker, campaign_seconds_2_workers
                           wall time of the mutation campaign (verify/mutants.run_campaign, BMC
                           depth 0) on one fixed set of mutants (--campaign-mutants, evenly spread
                           over all of them) with 1 and then 2 local worker processes, in one run
- campaign_speedup_2_workers  the first divided by the second
- campaign_same_verdicts   both runs gave every mutant the same verdict (Z3 resource limits, not
                           time-outs: the verdicts cannot depend on how many run at once)
- obligations_rechecked_cvc5  proof obligations of a full proof (every property) that cvc5 confirmed
                           unsat (verify/recheck.py), of recheck_obligations
- recheck_disagreements    obligations cvc5 found satisfiable (goal 0); recheck_not_rechecked: those
                           it could not decide within its resource limit
- recheck_seconds          wall time of the recheck (export to SMT-LIB and cvc5), beside
                           recheck_prove_seconds, the proof that recorded the obligations
- dependency_seconds       wall time of the dependency analysis (verify/dependencies.py) of every
                           property after a full proof; dependency_lines: lines named per property
Parts left out with --parts keep their figures from the last run in --out.
Machines here are shared and noisy: compare the ratios within one run, quote medians.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from collections import Counter
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import z3  # noqa: E402

from blinpump.verify.engine import PROVED, Engine, prove  # noqa: E402
from blinpump.verify.mutants import generate, generate_all, run_campaign, sample  # noqa: E402
from blinpump.verify.randomtest import campaign  # noqa: E402
from blinpump.verify.subset import load_kernel  # noqa: E402

KERNEL = REPO / "firmware" / "kernel.py"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def bench_proofs(runs: int = 3) -> dict:
    times = []
    last = None
    for i in range(runs):
        t0 = time.perf_counter()
        last = prove(KERNEL, depth=8, display_path="firmware/kernel.py", vacuity=True)
        times.append(time.perf_counter() - t0)
        log("proof %d: %.2f s, %d/%d proved" % (i + 1, times[-1], sum(r.status == PROVED for r in last.properties),
                                               len(last.properties)))
    assert last is not None
    guards = [g for v in last.vacuity for g in v.guards]
    return {"prove_seconds": [round(t, 3) for t in times], "prove_seconds_median": round(statistics.median(times), 3),
            "properties_proved": sum(r.status == PROVED for r in last.properties),
            "properties_total": len(last.properties),
            "per_property_seconds": {r.id: round(r.seconds, 3) for r in last.properties},
            "vacuity_guarded_cases": len(guards),
            "vacuity_vacuous": sum(1 for g in guards if not g.satisfiable)
            + sum(1 for v in last.vacuity if not v.premise_satisfiable),
            "vacuity_reached_on_random_therapies": sum(1 for g in guards if g.witness_depth == 0)}


def bench_bmc(depths: list[int], timeout_s: float) -> list[dict]:
    kernel = load_kernel(KERNEL)
    eng = Engine(kernel, depth=max(depths), max_k=1, timeout_ms=int(timeout_s * 1000))
    eng.strengthen()
    b = eng.bmc()
    props = [p for p in eng.props if not p.special]
    rows = []
    t0 = time.perf_counter()
    for t in range(max(depths)):
        b.extend(t + 1)
        b.solver.push()
        b.solver.add(z3.Or([b._violation(p, t) for p in props]))
        r = b.solver.check()
        b.solver.pop()
        if t + 1 in depths or r != z3.unsat:
            result = "no violation" if r == z3.unsat else ("VIOLATION" if r == z3.sat else "timeout")
            rows.append({"depth": t + 1, "seconds": round(time.perf_counter() - t0, 3), "result": result})
            log("BMC depth %d: %.2f s cumulative (%s)" % (t + 1, time.perf_counter() - t0, result))
        if r != z3.unsat:
            break
    return rows


def bench_mutants(n: int, min_budget: float, workers: int, results: Path, resume: bool) -> tuple[dict, list[dict]]:
    """Every mutant (n == -1) or an even spread of n, through the campaign (verify/mutants.py) on
    `workers` local processes, each mutant then given to the Hypothesis campaign for as long as
    the verifier took on it (at least min_budget). Verdicts stream to `results` (JSON Lines) and
    a stopped run resumes from it."""
    source = KERNEL.read_text()
    kept, rejected = generate_all(source)
    chosen = kept if n < 0 else sample(kept, n)
    summary = run_campaign(source, chosen, rejected=rejected if n < 0 else [], workers=workers, bmc_depth=0,
                           results=results, resume=resume, progress=log, generated=len(kept) + len(rejected),
                           hypothesis_min_s=min_budget)
    rows = summary.pop("results")
    proved = [r for r in rows if r["verdict"] in ("caught", "equivalent", "survived")]
    non_eq = [r for r in proved if r["verdict"] != "equivalent"]
    out = {k: v for k, v in summary.items() if k.startswith("mutants_") or k in ("per_operator", "survivors")}
    out.update({
        "mutants_sampled": n >= 0,
        "mutants_workers": workers,
        "mutants_campaign_seconds": round(summary["seconds"], 1),
        "mutation_score_verifier": round(sum(r["verdict"] == "caught" for r in non_eq) / max(1, len(non_eq)), 4),
        "mutation_score_hypothesis": round(sum(bool(r.get("hypothesis_caught")) for r in non_eq) / max(1, len(non_eq)), 4),
        "verifier_seconds_median": round(statistics.median([r["seconds"] for r in proved]), 3) if proved else None,
        "verifier_seconds_total": round(sum(r["seconds"] for r in proved), 1),
        "hypothesis_seconds_total": round(sum(r.get("hypothesis_seconds", 0.0) for r in proved), 1),
        "hypothesis_budget_rule": "per mutant: the verifier's time on that mutant (at least %.1f s)" % min_budget,
        "mutants_caught_by": dict(sorted(Counter(r["by"] for r in rows if r["verdict"] == "caught").items(),
                                         key=lambda kv: -kv[1])),
        "hypothesis_missed_verifier_caught_sample": [
            r["description"] for r in rows if r["verdict"] == "caught" and r.get("hypothesis_caught") is False][:20],
    })
    return out, rows


def bench_campaign(n: int) -> dict:
    """The campaign on the same n mutants with 1, then 2 local workers."""
    source = KERNEL.read_text()
    muts = sample(generate(source), n)
    seconds: dict[int, float] = {}
    verdicts: dict[int, list[tuple[int, str]]] = {}
    for workers in (1, 2):
        t0 = time.perf_counter()
        r = run_campaign(source, muts, workers=workers, bmc_depth=0)
        seconds[workers] = time.perf_counter() - t0
        verdicts[workers] = [(x["id"], x["verdict"]) for x in r["results"]]
        log("campaign of %d mutants, %d worker%s: %.1f s (caught %d)" % (
            len(muts), workers, "s" if workers > 1 else "", seconds[workers], r["mutants_caught_verifier"]))
    return {"campaign_mutants": len(muts), "campaign_bmc_depth": 0,
            "campaign_seconds_1_worker": round(seconds[1], 2), "campaign_seconds_2_workers": round(seconds[2], 2),
            "campaign_speedup_2_workers": round(seconds[1] / seconds[2], 2),
            "campaign_same_verdicts": verdicts[1] == verdicts[2]}


def bench_recheck() -> dict:
    """A full proof that records its obligations, then cvc5 on every one of them."""
    import tempfile

    from blinpump.verify.recheck import recheck
    t0 = time.perf_counter()
    run = prove(KERNEL, depth=8, display_path="firmware/kernel.py", record_obligations=True)
    prove_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="blinpump-smt-") as tmp:
        s = recheck(run, tmp, progress=log)
    log("recheck: %d of %d obligations confirmed by %s, %d disagreements, %.1f s" % (
        s["confirmed"], s["obligations"], s["solver"], len(s["disagreements"]), s["seconds"]))
    return {"recheck_solver": s["solver"], "recheck_obligations": s["obligations"],
            "obligations_rechecked_cvc5": s["confirmed"], "recheck_disagreements": len(s["disagreements"]),
            "recheck_not_rechecked": len(s["not_rechecked"]), "recheck_seconds": s["seconds"],
            "recheck_prove_seconds": round(prove_s, 3), "recheck_rlimit_per_obligation": s["rlimit_per_obligation"],
            "recheck_properties_confirmed": len(s["properties_confirmed"])}


def bench_dependencies() -> dict:
    """A full proof with the dependency analysis of every property."""
    run = prove(KERNEL, depth=8, display_path="firmware/kernel.py", dependencies=True)
    seconds = sum(r.depends_on["seconds"] for r in run.properties if r.depends_on)
    log("dependencies: %.1f s" % seconds)
    return {"dependency_seconds": round(seconds, 3),
            "dependency_lines": {r.id: len(r.depends_on["lines"]) if r.depends_on and r.depends_on["lines"] is not None
                                 else None for r in run.properties}}


PARTS = ("proofs", "bmc", "mutants", "campaign", "recheck", "dependencies")
# the figures of each part, kept from the last run when the part is left out
KEPT = {"proofs": ("prove_seconds", "prove_seconds_median", "properties_proved", "properties_total",
                   "per_property_seconds", "vacuity_"),
        "bmc": ("bmc_table",),
        "mutants": ("mutants_", "mutation_score_", "verifier_seconds_", "hypothesis_", "per_operator",
                    "survivors"),
        "campaign": ("campaign_",),
        "recheck": ("recheck_", "obligations_rechecked_cvc5"),
        "dependencies": ("dependency_",)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mutants", type=int, default=-1,
                    help="mutants to run: -1 every one (default), N an even spread of N, 0 keeps the figures "
                         "of the last run")
    ap.add_argument("--workers", type=int, default=2, help="local worker processes of the mutant campaign")
    ap.add_argument("--results", default=str(REPO / "bench" / "out" / "mutants.jsonl"),
                    help="JSON Lines file of the mutant verdicts, as they come in")
    ap.add_argument("--resume", action="store_true",
                    help="keep the verdicts already in --results for this kernel and run only the rest")
    ap.add_argument("--depths", default="1,2,3,4,5,6", help="BMC depths for the table")
    ap.add_argument("--bmc-timeout", type=float, default=120.0, help="per-check timeout of the BMC table (s)")
    ap.add_argument("--min-budget", type=float, default=1.0, help="least Hypothesis budget per mutant (s)")
    ap.add_argument("--campaign-mutants", type=int, default=16,
                    help="mutants of the 1- and 2-worker campaign timing; 0 keeps the figures of the last run")
    ap.add_argument("--parts", default=",".join(PARTS), help="which measurements to make (default: all)")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "verify.json"))
    args = ap.parse_args(argv)
    parts = [x for x in args.parts.split(",") if x]
    if any(x not in PARTS for x in parts):
        ap.error("--parts: %s is not a list of %s" % (args.parts, ",".join(PARTS)))
    if args.mutants == 0 and "mutants" in parts:
        parts.remove("mutants")
    if args.campaign_mutants <= 0 and "campaign" in parts:
        parts.remove("campaign")
    t0 = time.time()
    out: dict = {"kernel": "firmware/kernel.py", "machine": platform.platform(), "python": platform.python_version(),
                 "z3": z3.get_version_string()}
    old = json.loads(Path(args.out).read_text()) if Path(args.out).exists() else {}
    for part in PARTS:                      # a part left out keeps its figures of the last run
        if part not in parts:
            out.update({key: value for key, value in old.items() if key.startswith(KEPT[part])})
    if "proofs" in parts:
        out.update(bench_proofs())
    if "bmc" in parts:
        out["bmc_table"] = bench_bmc([int(d) for d in args.depths.split(",")], args.bmc_timeout)
    rows = None
    if "mutants" in parts:
        summary, rows = bench_mutants(args.mutants, args.min_budget, args.workers, Path(args.results), args.resume)
        out.update(summary)
        out.pop("mutants_note", None)
    elif "mutants_total" in out:
        out["mutants_note"] = "not rerun with the other figures: from the last run with --mutants"
    if "campaign" in parts:
        out.update(bench_campaign(args.campaign_mutants))
    if "recheck" in parts:
        out.update(bench_recheck())
    if "dependencies" in parts:
        out.update(bench_dependencies())
    out["bench_seconds"] = round(time.time() - t0, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    if rows is not None:
        Path(args.out).with_name("verify_mutants.json").write_text(json.dumps(rows, indent=1) + "\n")
    log("wrote %s" % args.out)
    print(json.dumps({k: out.get(k) for k in ("prove_seconds_median", "properties_proved", "mutants_total",
                                               "mutants_caught_verifier", "mutants_caught_hypothesis",
                                               "mutants_equivalent", "campaign_speedup_2_workers",
                                               "obligations_rechecked_cvc5", "recheck_disagreements",
                                               "recheck_seconds", "dependency_seconds")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
