"""Run every benchmark and write bench/results/*.json (`make bench`).

Each benchmark is its own script so one can be rerun alone; this runs them in turn and
stops at the first that fails.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = ["firmware_bench.py", "verify_bench.py", "translation_bench.py", "hil_bench.py", "hardening_power.py", "hardening_fuzz.py",
           "hardening_clock.py", "hardening_auth.py", "hardening_soak.py", "hardening_reliability.py",
           "suite_repeat.py", "hardening.py",
           "explore.py"]   # last: the Hypothesis tests under the explore profile, at most 5 minutes


def main() -> int:
    for name in BENCHES:
        script = HERE / name
        if not script.exists():
            print("bench: %s is missing" % name, file=sys.stderr)
            return 1
        print("== %s" % name, flush=True)
        rc = subprocess.call([sys.executable, str(script)])
        if rc:
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
