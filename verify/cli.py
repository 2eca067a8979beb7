"""`blinpump prove` and `blinpump replay` (registered in blinpump_cli.py).

    blinpump prove [--kernel PATH] [--depth N] [--json] [--junit FILE] [--report FILE.md]
                   [--recheck [--smt-dir DIR]] [--dependencies] [--workers N]
                   [--mutants [--max-mutants N] [--workers N | --scheduler tcp://HOST:PORT]
                              [--results FILE.jsonl [--resume]]]
                   [--property ID ...] [--traces DIR] [--quiet]
    blinpump replay TRACE [--runtime cpython|micropython|interpreted|serial] [--kernel PATH] [--json]
                          [--port URL] [--keys FILE] [--sim-runtime cpython|micropython]

`prove` exits 0 only when every property is PROVED (and, with --recheck, cvc5 finds no proof
obligation satisfiable); 1 otherwise; 2 when the kernel is not in the verifiable subset (the errors, file:line: reason, go to stderr) or on a usage error.
`replay` exits 1 when the trace violates its property on the chosen runtime (the failure is
reproduced), 0 when it does not, 2 on an error (unreadable trace, runtime unavailable).
Progress goes to stderr; results to stdout. Every error of the options or of a trace is one
line on stderr naming the option or the trace's field (`field=steps[2].args.weight_g`), status 2,
checked before any proof starts: --depth 1..64, --max-k 1..16, --bmc-budget a finite number of
seconds in (0, 86400], --max-mutants >= 1, --workers 1..256, --report, --junit, --traces and
--results writable, --results readable as a results file with --resume, and --scheduler the
address of a scheduler that answers (with the optional package `distributed` installed),
--smt-dir a writable folder and only with --recheck, and --recheck with the package cvc5.
argparse's own errors (an option's value not a number, an unknown option) are one line too.

The proof runs the properties against the label observer (the product) in a second process
beside the kernel's own when `--workers` (default: one per core) is 2 or more; with --recheck
or --dependencies it stays in one process.

`--mutants` proves every mutant of the kernel (verify/mutants.py), on the local cores
(`--workers`, default one per core) or on a Dask cluster (`--scheduler`); `--max-mutants N`
takes an even spread of N for a quick look. `--results` streams one JSON line per mutant;
`--resume` proves only those without a verdict there for this kernel.

`--recheck` gives every proof obligation of every PROVED property to cvc5 as an SMT-LIB file
(verify/recheck.py): a satisfiable one is a disagreement (exit 1), an undecided one leaves its
properties "not rechecked" (the proof stands on Z3; the exit status is unchanged). The files go
to --smt-dir, or to a temporary folder that is removed unless something was not confirmed.
`--dependencies` names the kernel lines each proof rests on (verify/dependencies.py).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any, NoReturn

from blinpump.arguments import Parser
from blinpump.outputs import shown, why, writable_dir, writable_file

REPO = Path(__file__).resolve().parent.parent
DEFAULT_KERNEL = REPO / "firmware" / "kernel.py"
DEFAULT_TRACES = REPO / "build" / "verify" / "traces"
# Sane bounds of the options, not limits of the method: BMC time grows about 3x per step
# (README, "BMC time grows with depth"), so depth 64 is already far beyond any budget.
MAX_DEPTH = 64
MAX_K = 16
MAX_BMC_BUDGET_S = 86400
MAX_WORKERS = 256
EXIT_USAGE = 2


def _error(prog: str, field: str, message: str) -> int:
    """One line on stderr naming the field; the exit status of a bad invocation."""
    print("%s: error: field=%s: %s" % (prog, field, " ".join(str(message).split())), file=sys.stderr)
    return EXIT_USAGE


class _Parser(Parser):
    """argparse (an option given twice refused: blinpump/arguments.py) whose own errors (a value that is not a number, an unknown option) are one line
    naming the option, like every other error of the command."""

    def error(self, message: str) -> NoReturn:
        m = re.search(r"argument (-[-\w]+)", message)
        self.exit(_error(self.prog, m.group(1) if m else "arguments", message))


def _prove_option_problem(args: argparse.Namespace) -> tuple[str, str] | None:
    """(option, why) of the first nonsensical option, or None."""
    if not 1 <= args.depth <= MAX_DEPTH:
        return "--depth", "%d is not in 1..%d" % (args.depth, MAX_DEPTH)
    if not 0 <= args.witness_depth <= MAX_DEPTH:
        return "--witness-depth", "%d is not in 0..%d" % (args.witness_depth, MAX_DEPTH)
    if not 1 <= args.max_k <= MAX_K:
        return "--max-k", "%d is not in 1..%d" % (args.max_k, MAX_K)
    if not (math.isfinite(args.bmc_budget) and 0 < args.bmc_budget <= MAX_BMC_BUDGET_S):
        return "--bmc-budget", "%r is not a number of seconds in (0, %d]" % (args.bmc_budget, MAX_BMC_BUDGET_S)
    if args.max_mutants is not None and args.max_mutants < 1:
        return "--max-mutants", "%d is not at least 1" % args.max_mutants
    if args.workers is not None and not 1 <= args.workers <= MAX_WORKERS:
        return "--workers", "%d is not in 1..%d" % (args.workers, MAX_WORKERS)
    for option, given in (("--max-mutants", args.max_mutants is not None),
                          ("--results", args.results is not None), ("--resume", args.resume),
                          ("--scheduler", args.scheduler is not None)):
        if given and not args.mutants:
            return option, "needs --mutants"
    if args.resume and args.results is None:
        return "--resume", "needs --results FILE (the verdicts to resume from)"
    if args.smt_dir is not None and not args.recheck:
        return "--smt-dir", "needs --recheck (the folder of the benchmarks cvc5 rechecks)"
    if args.recheck:
        from .recheck import missing
        problem = missing()
        if problem:
            return "--recheck", problem
    if args.scheduler is not None:
        from .mutants import scheduler_problem
        problem = scheduler_problem(args.scheduler)
        if problem:
            return "--scheduler", problem
        if args.workers is not None:
            return "--workers", "the cluster's workers prove the mutants: not with --scheduler"
    for option, value, check in (("--report", args.report, writable_file), ("--junit", args.junit, writable_file),
                                 ("--traces", args.traces, writable_dir), ("--results", args.results, writable_file),
                                 ("--smt-dir", args.smt_dir, writable_dir)):
        problem = None if value is None else check(value)
        if problem:
            return option, "cannot write %s: %s" % (shown(value), problem)
    return None


def display_path(path: Path) -> str:
    try:
        return path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        return str(path)


def _prove_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="blinpump prove",
                description="Prove the safety kernel's properties with Z3 (k-induction and BMC).")
    p.add_argument("--kernel", default=str(DEFAULT_KERNEL), help="kernel source (default: firmware/kernel.py)")
    p.add_argument("--depth", type=int, default=8, help="BMC depth for counterexamples (default 8)")
    p.add_argument("--max-k", type=int, default=3, help="largest k for k-induction (default 3)")
    p.add_argument("--bmc-budget", type=float, default=60.0, metavar="SECONDS",
                   help="time budget of the BMC search per property (default 60)")
    p.add_argument("--json", action="store_true", help="print one JSON object with the results")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML")
    p.add_argument("--report", metavar="FILE.md", help="write the Markdown assurance report")
    p.add_argument("--mutants", action="store_true", help="also run the mutation-adequacy check")
    p.add_argument("--max-mutants", type=int, default=None, metavar="N",
                   help="only N mutants, evenly spread, for a quick look (default: every mutant)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local processes: the proof runs the label observer's properties beside the kernel's "
                        "own with 2 or more; mutants are proved N at a time (default: one per core)")
    p.add_argument("--results", metavar="FILE.jsonl", help="append one JSON line per mutant as it finishes")
    p.add_argument("--resume", action="store_true",
                   help="skip the mutants that have a verdict in --results for this kernel")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="prove the mutants on this Dask cluster (needs the package distributed)")
    p.add_argument("--recheck", action="store_true",
                   help="have cvc5 recheck every proof obligation of every PROVED property")
    p.add_argument("--smt-dir", metavar="DIR",
                   help="with --recheck: write the obligations here as SMT-LIB (default: a temporary folder)")
    p.add_argument("--dependencies", action="store_true",
                   help="name the kernel lines each proof rests on (an unsat core; about doubles the time)")
    p.add_argument("--property", action="append", metavar="ID", help="prove only this property (repeatable)")
    p.add_argument("--traces", default=str(DEFAULT_TRACES), metavar="DIR",
                   help="where counterexample traces go (default build/verify/traces)")
    p.add_argument("--witness-depth", type=int, default=0, metavar="N",
                   help="also search, up to N steps from the initial state, a trace reaching each guarded case of "
                        "every proved property (vacuity; default 0: satisfiability only)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return p


def prove_main(argv: list[str] | None = None) -> int:
    prog = "blinpump prove"
    args = _prove_parser().parse_args(argv)
    problem = _prove_option_problem(args)
    if problem:
        return _error(prog, *problem)
    from .engine import stderr_progress
    from .properties import by_id

    kpath = Path(args.kernel)
    if not kpath.is_file():
        return _error(prog, "--kernel", "no kernel at %s" % kpath)
    shown = display_path(kpath)
    try:
        props = by_id(args.property) if args.property else None
    except KeyError as exc:
        return _error(prog, "--property", exc.args[0])
    progress = None if args.quiet else stderr_progress
    client = None
    if args.mutants:
        from .mutants import ClusterError, ResultsError, connect, kernel_sha256, read_results
        if args.resume:
            try:                            # a file that is not a results file is refused now, not after the proofs
                read_results(args.results, kernel_sha256(kpath.read_text()))
            except ResultsError as exc:
                return _error(prog, "--results", str(exc))
        if args.scheduler is not None:
            try:
                client = connect(args.scheduler)
            except ClusterError as exc:
                return _error(prog, "--scheduler", str(exc))
    try:
        return _prove_and_report(prog, args, kpath, shown, props, progress, client)
    finally:
        if client is not None:
            client.close()


def _prove_and_report(prog: str, args: argparse.Namespace, kpath: Path, shown: str, props: Any,
                      progress: Any, client: Any) -> int:
    from .engine import prove
    from .subset import SubsetError, load_kernel
    try:
        run = prove(kpath, props, depth=args.depth, max_k=args.max_k, trace_dir=args.traces,
                    progress=progress, display_path=shown, bmc_budget_s=args.bmc_budget,
                    vacuity=True, witness_depth=args.witness_depth, record_obligations=args.recheck,
                    dependencies=args.dependencies, workers=args.workers or os.cpu_count() or 1)
    except SubsetError as exc:
        print("blinpump prove: %s is not in the verifiable subset:" % shown, file=sys.stderr)
        for f, line, reason in exc.errors:
            print("%s:%d: %s" % (f, line, reason), file=sys.stderr)
        return 2
    disagreement = False
    if args.recheck:
        problem = _recheck(prog, run, args.smt_dir, progress)
        if problem is not None:
            return problem
        disagreement = bool(run.recheck and run.recheck["disagreements"])
    mutants: dict[str, Any] | None = None
    if args.mutants:
        from .mutants import ResultsError, run_mutants
        try:
            mutants = run_mutants(kpath, max_mutants=args.max_mutants, progress=progress, workers=args.workers,
                                  results=args.results, resume=args.resume, client=client)
        except ResultsError as exc:         # checked before the proofs, but the disk may have changed
            return _error(prog, "--results", str(exc))
    if args.report or args.junit:
        from .report import junit, markdown
        kernel = load_kernel(kpath, shown)
        link = os.path.relpath(kpath.resolve(), Path(args.report).resolve().parent) if args.report else None
        for option, path, text in (("--report", args.report,
                                    lambda: markdown(run, kernel, mutants=mutants, kernel_link=link)),
                                   ("--junit", args.junit, lambda: junit(run) + "\n")):
            if not path:
                continue
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                Path(path).write_text(text())
            except OSError as exc:          # checked before the proofs, but the disk may have changed
                return _error(prog, option, "cannot write %s: %s" % (path, why(exc)))
    if args.json:
        doc = run.as_json()
        if mutants is not None:
            doc["mutants"] = {k: v for k, v in mutants.items() if k != "results"}
        print(json.dumps(doc, indent=1))
    else:
        print("kernel %s  sha256 %s" % (run.kernel, run.kernel_sha256))
        from .recheck import describe
        kernel_now = load_kernel(kpath, shown) if any(r.depends_on for r in run.properties) else None
        for r in run.properties:
            extra = ("k=%d" % r.k) if (r.status == "proved" and r.k) else (r.detail[:120] if r.detail else "")
            if r.recheck is not None:
                extra += "  cvc5: %s" % describe(r.recheck)
            print("  %-18s %-9s %-12s %6.2fs  %s" % (r.id, r.status.upper(), r.engine, r.seconds, extra))
            if r.trace:
                print("  %-18s trace: %s" % ("", r.trace))
            if r.depends_on is not None:
                print("  %-18s %s" % ("", _dependency_line(r.depends_on, kernel_now)))
        print("%s in %.1f s" % ("ALL PROVED" if run.all_proved else "NOT ALL PROVED", run.seconds))
        if run.vacuity:
            print(vacuity_line(run.vacuity, args.witness_depth))
        if run.recheck is not None:
            print(_recheck_line(run.recheck))
        if mutants is not None:
            print("mutants: %d, caught %d, equivalent %d, survived %d, rejected %d%s, %.1f s" % (
                mutants["mutants_total"], mutants["mutants_caught_verifier"], mutants["mutants_equivalent"],
                mutants["mutants_survived"], mutants["mutants_rejected"],
                ", errors %d" % mutants["mutants_error"] if mutants["mutants_error"] else "", mutants["seconds"]))
            for s in mutants["survivors"]:
                print("  survivor line %d: %s%s" % (s["line"], s["description"], " (equivalent)" if s.get("equivalent") else ""))
    return 0 if run.all_proved and not disagreement else 1


def _recheck(prog: str, run: Any, smt_dir: str | None, progress: Any) -> int | None:
    """cvc5 rechecks the obligations (verify/recheck.py); a disagreement is said on stderr however
    the results are printed. A usage error's status, or None."""
    import shutil
    import tempfile

    from .recheck import recheck
    folder = smt_dir if smt_dir is not None else tempfile.mkdtemp(prefix="blinpump-smt-")
    try:
        summary = recheck(run, folder, progress=progress)
    except OSError as exc:              # checked before the proofs, but the disk may have changed
        return _error(prog, "--smt-dir", "cannot write %s: %s" % (folder, why(exc)))
    unsettled = summary["disagreements"] or summary["not_rechecked"]
    if smt_dir is None and not unsettled:
        shutil.rmtree(folder, ignore_errors=True)
        summary["smt_dir"] = None       # nothing to look at: the temporary folder is gone
    for name in summary["disagreements"]:
        print("%s: DISAGREEMENT: cvc5 finds %s satisfiable, Z3 found it unsat: not confirmed: %s" % (
            prog, Path(summary["smt_dir"], name), ", ".join(summary["properties_disagreement"])), file=sys.stderr)
    if summary["not_rechecked"]:
        print("%s: warning: cvc5 decided %d of %d obligations; not rechecked: %s (first: %s: %s)" % (
            prog, summary["confirmed"] + len(summary["disagreements"]), summary["obligations"],
            ", ".join(summary["properties_not_rechecked"]), summary["not_rechecked"][0]["file"],
            summary["not_rechecked"][0]["reason"]), file=sys.stderr)
    return None


def _recheck_line(s: dict[str, Any]) -> str:
    return "second solver %s: %d of %d obligations confirmed unsat, %d disagreement%s, %d not rechecked, %.1f s%s" % (
        s["solver"], s["confirmed"], s["obligations"], len(s["disagreements"]),
        "" if len(s["disagreements"]) == 1 else "s", len(s["not_rechecked"]), s["seconds"],
        "; SMT-LIB files in %s" % s["smt_dir"] if s["smt_dir"] else "")


def _dependency_line(dep: dict[str, Any], kernel: Any) -> str:
    if dep["lines"] is None:
        return "kernel lines: not analysed (%s)" % dep.get("note", "")
    from .dependencies import ranges
    return "depends on kernel lines (%d, %s): %s" % (len(dep["lines"]), dep["file"], ", ".join(
        str(a) if a == b else "%d-%d" % (a, b) for a, b in ranges(dep["lines"], kernel)))


def vacuity_line(results: list[Any], witness_depth: int) -> str:
    guards = [g for v in results for g in v.guards]
    vacuous = [g for g in guards if not g.satisfiable] + [v for v in results if not v.premise_satisfiable]
    line = "vacuity: %d properties, %d guarded cases, %d vacuous" % (len(results), len(guards), len(vacuous))
    if witness_depth:
        line += "; %d reached from the initial state within %d steps" % (
            sum(1 for g in guards if g.witness_depth is not None), witness_depth)
    return line


def replay_main(argv: list[str] | None = None) -> int:
    p = Parser(prog="blinpump replay",
                                description="Replay a counterexample trace against the kernel and show the violation.")
    p.add_argument("trace", help="trace JSON written by `blinpump prove`")
    p.add_argument("--runtime", choices=("cpython", "micropython", "interpreted", "serial"), default="cpython",
                   help="serial: the steps as commands to a pump, compared with the CPython replay")
    p.add_argument("--kernel", default=None, help="kernel to replay against (default: the trace's kernel); "
                   "with --runtime serial, also the kernel of the simulated board")
    p.add_argument("--port", default=None, help="serial runtime: pyserial URL of the pump, a simulation build "
                   "(default: a simulated board started for the replay, running the kernel)")
    p.add_argument("--keys", default=None, metavar="FILE",
                   help="serial runtime: key file for authenticated commands (default: the simulation test keys)")
    p.add_argument("--sim-runtime", choices=("cpython", "micropython"), default=None,
                   help="serial runtime without --port: runtime of the simulated board (default cpython)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    from .replay import ReplayError, describe, load_trace, replay
    from .subset import SubsetError
    prog = "blinpump replay"
    board: dict[str, Any] = {}
    for option, value in (("--port", args.port), ("--keys", args.keys), ("--sim-runtime", args.sim_runtime)):
        if value is not None and args.runtime != "serial":
            return _error(prog, option, "only with --runtime serial")
    if args.runtime == "serial":
        if args.port is not None and args.sim_runtime is not None:
            return _error(prog, "--sim-runtime", "a simulated board is started only without --port")
        board = {"port": args.port, "keys": args.keys if args.keys is not None else "sim",
                 "sim_runtime": args.sim_runtime or "cpython"}
    try:
        doc = load_trace(args.trace)
        rep = replay(doc, args.runtime, args.kernel, **board)
    except ReplayError as exc:              # its message names the field: field=steps[2].args.weight_g: ...
        print("%s: error: %s" % (prog, " ".join(str(exc).split())), file=sys.stderr)
        return EXIT_USAGE
    except SubsetError as exc:
        first = "%s:%d: %s" % exc.errors[0] if exc.errors else str(exc)
        return _error(prog, "--kernel" if args.kernel else "kernel", "not in the verifiable subset: %s%s"
                      % (first, " (and %d more)" % (len(exc.errors) - 1) if len(exc.errors) > 1 else ""))
    except OSError as exc:
        return _error(prog, "--kernel" if args.kernel else "kernel", why(exc))
    except Exception as exc:  # a runtime that is not installed, a crash in the kernel
        print("%s: error: %s: %s" % (prog, type(exc).__name__, " ".join(str(exc).split())), file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps({k: v for k, v in rep.items()}, indent=1))
    else:
        print(describe(doc, rep))
    return 1 if rep["violated"] else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(prove_main())
