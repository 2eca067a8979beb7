"""Nothing lost, nobody in, never a traceback: the reliability figures (CPython simulated board).

    .venv/bin/python bench/hardening_reliability.py      # writes bench/results/hardening_reliability.json

write_failures_tried / write_failures_acknowledged   every therapy step with the record's storage failing
reprovision_replays_tried / replays_accepted          recorded frames sent again after the same keys were
                                                      provisioned again (the counters are kept)
two_host_runs / double_applied                        a clinician's re-send after another host spoke
ring_flood_frames / therapy_events_lost               frames without a key, minute after minute
bad_inputs_tried / tracebacks                         every door of the command line (hil/doors.py)
Goals: 0 for each second figure. The campaigns are hil/reliability.py, hil/unauthorised.py and
hil/doors.py; tests/test_reliability.py and tests/test_doors.py run them (and planted bugs).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    from blinpump.hil import doors, reliability, unauthorised
    t0 = time.perf_counter()
    out: dict[str, object] = {"runtime": "cpython (simulated board in process)"}
    tried, failures = reliability.write_failures()
    out.update(write_failures_tried=tried, write_failures_acknowledged=len(failures))
    tried, accepted = unauthorised.reprovision_replays(frames=1000, seed=1)
    out.update(reprovision_replays_tried=tried, replays_accepted=accepted)
    runs, failures2 = reliability.two_hosts(runs=500)
    out.update(two_host_runs=runs, double_applied=len(failures2))
    sent, failures3 = reliability.ring_flood(minutes=600, frames_per_min=100)
    out.update(ring_flood_frames=sent, therapy_events_lost=len(failures3))
    tried, tracebacks = doors.walk_doors()
    out.update(bad_inputs_tried=tried, tracebacks=tracebacks)
    out["failures"] = (failures + failures2 + failures3)[:20]
    out["seconds"] = round(time.perf_counter() - t0, 1)
    path = REPO / "bench" / "results" / "hardening_reliability.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    goals = ("write_failures_acknowledged", "replays_accepted", "double_applied", "therapy_events_lost", "tracebacks")
    return 1 if any(out[g] for g in goals) else 0


if __name__ == "__main__":
    sys.exit(main())
