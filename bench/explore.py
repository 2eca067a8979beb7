"""Explore: the Hypothesis tests with many more examples and fresh random seeds.

`make test` runs the Hypothesis tests under the "ci" profile (tests/hypo.py): derandomized, so
the same commit always tests the same examples and gives the same answer. That answer never
changes, so it never finds anything new either. This benchmark runs the same tests under the
"explore" profile (HYPOTHESIS_PROFILE=explore): FACTOR times the examples (--factor, default 20),
a new random seed every run, failures kept in build/hypothesis-explore/ and tried first the
next time. It is not part of the test suite.

A failure found here is a bug in the code or in a test. Fix it, then add the failing case to the
test as an explicit @example(...) (for a state machine, which takes no @example: a deterministic
regression test that replays the steps, as at the end of tests/test_kernel_vs_model.py), so
that the ci profile checks it on every run. The falsifying example, as Hypothesis printed it,
is in the JSON (`failures`), with the blob to reproduce it (@reproduce_failure).

Runs every tests/test_*.py that uses Hypothesis, each in its own pytest process, keeping only
the Hypothesis tests (given and state machines). --budget bounds the whole run in seconds
(default 300): files run cheapest first (by the seconds of the last run's JSON; files cut short
then go last), each gets an equal share of what is left, and a file that runs out of its
share is stopped; the tests it finished are kept and the JSON says it was cut short.

Writes bench/results/explore.json: per test the examples run (passing, failing, invalid, from
Hypothesis' statistics), the outcome and the seconds; per file the seconds and whether it
finished; the failures found. Rerun:
`.venv/bin/python bench/explore.py [--budget SECONDS] [--factor N] [FILE ...]`.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "results" / "explore.json"
RESULTS_ENV = "BLINPUMP_EXPLORE_RESULTS"       # set in the pytest processes this script starts
_STATS = re.compile(r"during (\w+) phase \(([\d.]+) seconds\):.*?- (\d+) passing, (\d+) failing, and (\d+) invalid",
                    re.S)


# ---------------------------------------------------------------- the pytest plugin (in the child)
# Loaded with `-p explore` (this file, bench/ on PYTHONPATH) only when RESULTS_ENV is set.

def pytest_collection_modifyitems(config, items):  # type: ignore[no-untyped-def]
    """Keep only the Hypothesis tests."""
    if not os.environ.get(RESULTS_ENV):
        return
    from hypothesis import is_hypothesis_test
    keep = [it for it in items if is_hypothesis_test(getattr(it, "obj", None))]
    drop = [it for it in items if it not in keep]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


_outcomes: dict[str, dict] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    """One JSON line per finished test, written at once, so a file stopped by the budget keeps
    the tests it finished; with Hypothesis' statistics of the test (examples run)."""
    outcome = yield
    path = os.environ.get(RESULTS_ENV)
    if not path:
        return
    report = outcome.get_result()
    row = _outcomes.setdefault(item.nodeid, {"nodeid": item.nodeid, "outcome": "passed", "seconds": 0.0})
    row["seconds"] += report.duration
    if report.failed:
        row["outcome"] = "failed" if report.when == "call" else "error"
        row["failure"] = "\n".join(str(report.longrepr).splitlines()[-60:])
    elif report.skipped and row["outcome"] == "passed":
        row["outcome"] = "skipped"
    if report.when != "teardown":
        return
    row["statistics"] = getattr(item, "hypothesis_statistics", "")
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(_outcomes.pop(item.nodeid)) + "\n")


# ---------------------------------------------------------------- the benchmark (the parent)

def hypothesis_files() -> list[Path]:
    out = []
    for path in sorted((REPO / "tests").glob("test_*.py")):
        text = path.read_text(encoding="utf-8")
        if re.search(r"^\s*(from hypothesis\b|import hypothesis\b)", text, re.M) and re.search(
                r"@given\(|RuleBasedStateMachine", text):
            out.append(path)
    return out


def cheapest_first(files: list[Path], previous: Path) -> list[Path]:
    """Order by the seconds each file took in the previous run (unknown: 0; cut short: last), so
    the expensive files share what the cheap ones leave of the budget."""
    cost: dict[str, float] = {}
    try:
        for f in json.loads(previous.read_text(encoding="utf-8")).get("files", []):
            cost[f["file"]] = f["seconds"] if f.get("complete") else float("inf")
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return sorted(files, key=lambda p: (cost.get(rel(p), 0.0), rel(p)))


def rel(path: Path) -> str:
    return os.path.relpath(path, REPO)


def parse_statistics(text: str) -> dict:
    phases = {}
    for phase, seconds, passing, failing, invalid in _STATS.findall(text or ""):
        phases[phase] = {"seconds": float(seconds), "passing": int(passing), "failing": int(failing),
                         "invalid": int(invalid)}
    return phases


def run_file(path: Path, seconds: float, factor: int) -> dict:
    """pytest on one file under the explore profile, stopped after `seconds`."""
    with tempfile.NamedTemporaryFile("w+", suffix=".jsonl", delete=False) as tmp:
        results = Path(tmp.name)
    env = dict(os.environ, HYPOTHESIS_PROFILE="explore", HYPOTHESIS_EXPLORE_FACTOR=str(factor),
               PYTHONPATH=os.pathsep.join([str(REPO / "bench")] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    env[RESULTS_ENV] = str(results)
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "explore", "-q",
           "--no-header", "-rN", "--hypothesis-show-statistics", rel(path)]
    t0 = time.time()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    complete = True
    try:
        out, _ = proc.communicate(timeout=max(1.0, seconds))
    except subprocess.TimeoutExpired:
        complete = False
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    elapsed = time.time() - t0
    rows = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines() if line.strip()]
    results.unlink()
    for row in rows:
        row["examples"] = parse_statistics(row.pop("statistics", ""))
        row["examples_run"] = sum(p["passing"] + p["failing"] + p["invalid"] for p in row["examples"].values())
    return {"file": rel(path), "seconds": round(elapsed, 1), "complete": complete,
            "returncode": proc.returncode if complete else None, "tests": rows,
            "output_tail": "" if complete and proc.returncode in (0, 5) else "\n".join(out.splitlines()[-40:])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=300.0, metavar="SECONDS",
                    help="wall-clock bound of the whole run (default 300)")
    ap.add_argument("--factor", type=int, default=20, help="examples times the ci count (default 20)")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("files", nargs="*", help="test files (default: every tests/test_*.py that uses Hypothesis)")
    args = ap.parse_args(argv)
    if args.budget <= 0 or args.factor < 1:
        ap.error("--budget must be > 0 and --factor >= 1")
    files = cheapest_first([Path(f).resolve() for f in args.files] or hypothesis_files(), Path(args.out))
    t0 = time.time()
    done = []
    for i, path in enumerate(files):
        left = args.budget - (time.time() - t0)
        share = left / (len(files) - i)
        print("explore: %s (up to %.0f s)" % (rel(path), share), file=sys.stderr, flush=True)
        done.append(run_file(path, share, args.factor))
    seconds = time.time() - t0
    tests = [t for f in done for t in f["tests"]]
    failures = [{"nodeid": t["nodeid"], "outcome": t["outcome"], "failure": t.get("failure", "")}
                for t in tests if t["outcome"] in ("failed", "error")]
    failures += [{"nodeid": f["file"], "outcome": "file failed", "failure": f["output_tail"]}
                 for f in done if f["complete"] and f["returncode"] not in (0, 1, 5)]
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout.strip())
    import hypothesis
    doc = {
        "profile": "explore",
        "factor": args.factor,
        "budget_seconds": args.budget,
        "seconds": round(seconds, 1),
        "tests_run": len(tests),
        "tests_failed": sum(1 for t in tests if t["outcome"] in ("failed", "error")),
        "examples_run": sum(t["examples_run"] for t in tests),
        "files_cut_short_by_budget": [f["file"] for f in done if not f["complete"]],
        "failures_found": len(failures),
        "failures": failures,
        "files": [{k: v for k, v in f.items() if k != "tests"} for f in done],
        "tests": [{k: t[k] for k in ("nodeid", "outcome", "examples_run", "examples") if k in t}
                  | {"seconds": round(t["seconds"], 2)} for t in tests],
        "commit": commit + ("+dirty" if dirty else ""),
        "python": platform.python_version(),
        "hypothesis": hypothesis.__version__,
        "database": "build/hypothesis-explore",
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    for t in tests:
        print("  %-100s %-7s %6d examples %7.1f s" % (t["nodeid"], t["outcome"], t["examples_run"], t["seconds"]))
    print("explore: %d tests, %d examples, %d failures found, %d of %d files cut short by the budget (%.0f s) -> %s" % (
        len(tests), doc["examples_run"], len(failures), len(doc["files_cut_short_by_budget"]), len(done), seconds,
        out))
    for f in failures:
        print("FAILURE %s\n%s" % (f["nodeid"], f["failure"][-2000:]))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
