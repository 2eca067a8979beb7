"""Translation validation as a benchmark (verify/translation.py), on reachable (state, entry point,
input) triples:
- the kernel on CPython against its Z3 translation, every field and the return value;
- the kernel on CPython against the .mpy kernel on real MicroPython (the WebAssembly port).
Writes bench/results/translation.json.
Rerun: `.venv/bin/python bench/translation_bench.py [N_Z3] [N_MICROPYTHON]` (default 100,000 each;
the Z3 part takes about 20 minutes on one core). N = 0 skips a part and keeps its last figures."""
from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from blinpump.verify import translation  # noqa: E402

OUT = REPO / "bench" / "results" / "translation.json"


def main(argv: list[str]) -> int:
    n_z3 = int(argv[0]) if argv else 100000
    n_mpy = int(argv[1]) if len(argv) > 1 else 100000
    out = json.loads(OUT.read_text()) if OUT.exists() else {}
    out.update(machine=platform.platform(), python=platform.python_version())
    if n_z3:
        r = translation.validate(n_z3, seed=0)
        out.update(r)
        print("Z3 translation: %d triples (%d infusing), %d mismatches, %.1f s"
              % (r["triples"], r["running_triples"], r["mismatches"], r["seconds"]))
    if n_mpy:
        m = translation.cross_check_micropython(n_mpy, seed=0)
        out["micropython"] = m
        print("MicroPython: %d triples, %d mismatches, %.1f s" % (m["triples"], m["mismatches"], m["seconds"]))
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    bad = out.get("mismatches", 0) or out.get("micropython", {}).get("mismatches", 0)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
