"""`blinpump prove` and `blinpump replay` (registered in blinpump_cli.py).

    blinpump prove [--kernel PATH] [--depth N] [--json] [--junit FILE] [--report FILE.md]
                   [--mutants [--max-mutants N]] [--property ID ...] [--traces DIR] [--quiet]
    blinpump replay TRACE [--runtime cpython|micropython|interpreted] [--kernel PATH] [--json]

`prove` exits 0 only when every property is PROVED; 1 otherwise; 2 when the kernel is not in
the verifiable subset (the errors, file:line: reason, go to stderr) or on a usage error.
`replay` exits 1 when the trace violates its property on the chosen runtime (the failure is
reproduced), 0 when it does not, 2 on an error (unreadable trace, runtime unavailable).
Progress goes to stderr; results to stdout.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_KERNEL = REPO / "firmware" / "kernel.py"
DEFAULT_TRACES = REPO / "build" / "verify" / "traces"


def display_path(path: Path) -> str:
    try:
        return path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        return str(path)


def _prove_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="blinpump prove",
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
    p.add_argument("--max-mutants", type=int, default=None, metavar="N", help="at most N mutants (spread sample)")
    p.add_argument("--property", action="append", metavar="ID", help="prove only this property (repeatable)")
    p.add_argument("--traces", default=str(DEFAULT_TRACES), metavar="DIR",
                   help="where counterexample traces go (default build/verify/traces)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return p


def prove_main(argv: list[str] | None = None) -> int:
    args = _prove_parser().parse_args(argv)
    from .engine import prove, stderr_progress
    from .properties import by_id
    from .subset import SubsetError, load_kernel

    kpath = Path(args.kernel)
    if not kpath.is_file():
        print("blinpump prove: no kernel at %s" % kpath, file=sys.stderr)
        return 2
    shown = display_path(kpath)
    try:
        props = by_id(args.property) if args.property else None
    except KeyError as exc:
        print("blinpump prove: %s" % exc.args[0], file=sys.stderr)
        return 2
    progress = None if args.quiet else stderr_progress
    try:
        run = prove(kpath, props, depth=args.depth, max_k=args.max_k, trace_dir=args.traces,
                    progress=progress, display_path=shown, bmc_budget_s=args.bmc_budget)
    except SubsetError as exc:
        print("blinpump prove: %s is not in the verifiable subset:" % shown, file=sys.stderr)
        for f, line, reason in exc.errors:
            print("%s:%d: %s" % (f, line, reason), file=sys.stderr)
        return 2
    mutants: dict[str, Any] | None = None
    if args.mutants:
        from .mutants import run_mutants
        mutants = run_mutants(kpath, max_mutants=args.max_mutants, progress=progress)
    if args.report or args.junit:
        from .report import junit, markdown
        kernel = load_kernel(kpath, shown)
        if args.report:
            Path(args.report).parent.mkdir(parents=True, exist_ok=True)
            Path(args.report).write_text(markdown(run, kernel, mutants=mutants))
        if args.junit:
            Path(args.junit).parent.mkdir(parents=True, exist_ok=True)
            Path(args.junit).write_text(junit(run) + "\n")
    if args.json:
        doc = run.as_json()
        if mutants is not None:
            doc["mutants"] = {k: v for k, v in mutants.items() if k != "results"}
        print(json.dumps(doc, indent=1))
    else:
        print("kernel %s  sha256 %s" % (run.kernel, run.kernel_sha256))
        for r in run.properties:
            extra = ("k=%d" % r.k) if (r.status == "proved" and r.k) else (r.detail[:120] if r.detail else "")
            print("  %-18s %-9s %-12s %6.2fs  %s" % (r.id, r.status.upper(), r.engine, r.seconds, extra))
            if r.trace:
                print("  %-18s trace: %s" % ("", r.trace))
        print("%s in %.1f s" % ("ALL PROVED" if run.all_proved else "NOT ALL PROVED", run.seconds))
        if mutants is not None:
            print("mutants: %d, caught %d, survivors %d (equivalent %d), %.1f s" % (
                mutants["total"], mutants["caught"], len(mutants["survivors"]), mutants.get("equivalent", 0),
                mutants["seconds"]))
            for s in mutants["survivors"]:
                print("  survivor line %d: %s%s" % (s["line"], s["description"], " (equivalent)" if s.get("equivalent") else ""))
    return 0 if run.all_proved else 1


def replay_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="blinpump replay",
                                description="Replay a counterexample trace against the kernel and show the violation.")
    p.add_argument("trace", help="trace JSON written by `blinpump prove`")
    p.add_argument("--runtime", choices=("cpython", "micropython", "interpreted"), default="cpython")
    p.add_argument("--kernel", default=None, help="kernel to replay against (default: the trace's kernel)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    from .replay import ReplayError, describe, load_trace, replay
    from .subset import SubsetError
    try:
        doc = load_trace(args.trace)
        rep = replay(doc, args.runtime, args.kernel)
    except (ReplayError, SubsetError, OSError) as exc:
        print("blinpump replay: %s" % exc, file=sys.stderr)
        return 2
    except Exception as exc:  # a runtime that is not installed, a crash in the kernel
        print("blinpump replay: %s: %s" % (type(exc).__name__, exc), file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({k: v for k, v in rep.items()}, indent=1))
    else:
        print(describe(doc, rep))
    return 1 if rep["violated"] else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(prove_main())
