"""Power-cut hardening benchmark: power lost at every byte of every record write.

Runs hil/powercut.py in full: the therapy scenario is recorded once, then every byte offset
(0..n) of every storage write (both state slots and the event ring) becomes a power cut, a
reboot and the harness's checks (DESIGN fail-safe rule "delivered-dose record survives power
loss at any instant"; L2-reinit-4h, L2.4-restart-9, L2.4-crs-4, L2-dose-28). Writes
bench/results/hardening_power.json and prints a summary.
Rerun: `.venv/bin/python bench/hardening_power.py`.
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from blinpump.firmware import journal  # noqa: E402
from blinpump.hil import powercut  # noqa: E402

OUT = REPO / "bench" / "results" / "hardening_power.json"
SEED = 0


def main() -> int:
    r = powercut.run(sample_every=1, seed=SEED)
    report = {
        "power_cuts_tried": r.power_cuts_tried,
        "power_cuts_lost_data": r.power_cuts_lost_data,
        "writes": r.writes,
        "state_slot_writes": r.slot_writes,
        "event_ring_writes": r.event_writes,
        "bytes_per_state_record": journal.RECORD_BYTES,
        "bytes_per_event_record": journal.EVENT_BYTES,
        "every_byte_offset": True,
        "unknown_outage_boots": r.unknown_outage_boots,
        "continued_after_cut": r.continued,
        "corrupt_record_checks_tried": r.corrupt_checks_tried,
        "corrupt_record_checks_failed": r.corrupt_checks_failed,
        "failures_by_check": r.failures_by_check,
        "failures": [asdict(f) for f in r.failures],
        "checks": [name for name, _ in powercut.CHECKS] + [powercut.CORRUPT, powercut.CONTINUES],
        "scenario": r.scenario,
        "seed": SEED,
        "seconds": round(r.seconds, 1),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(r.summary())
    print("wrote %s" % OUT.relative_to(REPO))
    return 0 if r.ok else 1


if __name__ == "__main__":
    sys.exit(main())
