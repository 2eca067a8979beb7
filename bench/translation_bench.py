"""Translation validation as a benchmark: N (state, entry point, input) triples from reachable
states, the kernel on CPython against its Z3 translation, every field and the return value
(verify/translation.py). Writes bench/results/translation.json.
Rerun: `.venv/bin/python bench/translation_bench.py [N]` (default 10,000; the issue's goal is
100,000, about 20 minutes on one core). MicroPython's side is not in it yet (issue 12)."""
from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from blinpump.verify import translation  # noqa: E402


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else 10000
    r = translation.validate(n, seed=0)
    r["machine"] = platform.platform()
    r["python"] = platform.python_version()
    out = REPO / "bench" / "results" / "translation.json"
    out.write_text(json.dumps(r, indent=1) + "\n")
    print("translation validation: %d triples (%d infusing), %d mismatches, %.1f s"
          % (r["triples"], r["running_triples"], r["mismatches"], r["seconds"]))
    return 1 if r["mismatches"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
