"""The test suite gives the same answer twice: clone the committed main into an empty folder (with
the project's shared documents beside it, as CI has them), then run the README's test command
there three times in a row.

    .venv/bin/python bench/suite_repeat.py [--runs N]     # writes bench/results/suite_repeat.json

suite_runs_same_result is the number of runs whose result (exit status and pytest's closing line
minus its time) equals the first run's, when that first run is green; 0 otherwise.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory(prefix="suite-repeat-") as tmp:
        clone = Path(tmp) / "main"
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        if SHARED.is_dir():
            shutil.copytree(SHARED, Path(tmp) / "shared")
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True).stdout.strip()
        for i in range(args.runs):
            t0 = time.monotonic()
            proc = subprocess.run(["make", "test"], cwd=clone, capture_output=True, text=True)
            lines = [line for line in proc.stdout.splitlines() if re.search(r"\d+ (passed|failed)", line)]
            closing = re.sub(r" in [\d.]+s.*", "", lines[-1]) if lines else "(no closing line)"
            runs.append({"run": i + 1, "exit": proc.returncode, "result": closing,
                         "seconds": round(time.monotonic() - t0, 1)})
            print("run %d: exit %d, %s, %.0f s" % (i + 1, proc.returncode, closing, runs[-1]["seconds"]), flush=True)
    first = (runs[0]["exit"], runs[0]["result"])
    same = sum(1 for r in runs if (r["exit"], r["result"]) == first) if first[0] == 0 else 0
    out = {"suite_runs_same_result": same, "runs": runs, "commit": commit,
           "machine": "2 cores; the first run includes the set-up (venv, pip, npm)"}
    (REPO / "bench" / "results" / "suite_repeat.json").write_text(json.dumps(out, indent=2) + "\n")
    return 0 if same == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
