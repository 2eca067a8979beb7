"""Unauthorised frames against a running simulated pump (docs/security.md, hil/unauthorised.py).

Writes bench/results/hardening_auth.json: unauthorised_frames_tried, unauthorised_changes (goal 0),
the frames per kind, the refusal reasons seen, seconds. Rerun: `.venv/bin/python bench/hardening_auth.py`.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from blinpump.firmware import auth as fw_auth  # noqa: E402
from blinpump.hil import unauthorised  # noqa: E402

FRAMES = 1_000_000
SEED = 20261121


def main() -> int:
    r = unauthorised.run(frames=FRAMES, seed=SEED)
    doc = {
        "unauthorised_frames_tried": r.tried,
        "unauthorised_changes": r.changes,
        "frames_by_kind": dict(sorted(r.by_kind.items())),
        "refusal_reasons": {fw_auth.REASONS[code]: n for code, n in sorted(r.reasons.items())},
        "failures": r.failures,
        "seconds": round(r.seconds, 1),
        "board": "simulated board, CPython runtime, in-process (Board.feed); a running 7-day bag",
    }
    out = REPO / "bench" / "results" / "hardening_auth.json"
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print("unauthorised frames: %d tried, %d changed anything (%.1f s) -> %s"
          % (r.tried, r.changes, r.seconds, out.relative_to(REPO)))
    return 0 if r.changes == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
