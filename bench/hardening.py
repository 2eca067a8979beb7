"""The hardening figures in one file: bench/results/hardening.json (and a table for the README).

Each part is its own benchmark with its own JSON (run them first, or `make bench`):
  hardening_power.py  power cut at every byte of every record write      power_cuts_tried, power_cuts_lost_data
  hardening_fuzz.py   atheris over the frame parser and dispatch         fuzz_frames, fuzz_crashes
  hardening_clock.py  clock jumps, wrap-around, late ticks, outages      clock_faults_tried, overdoses
  hardening_auth.py   unauthorised frames against a running pump         unauthorised_frames_tried, unauthorised_changes
  hardening_soak.py   a simulated week over a noisy line, MicroPython    soak_hours_simulated, heap_growth_bytes
  hardening_reliability.py  failed writes, re-provisioning, two hosts, ring floods, bad input at every door
  suite_repeat.py     the test suite three times in a row from a fresh clone   suite_runs_same_result
This script only gathers: it copies each figure from the part that measured it, names the
source, and fails if a part is missing or a figure with a goal of 0 is not 0.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
# figure -> (part, goal: 0 or None for "report only")
FIGURES: dict[str, tuple[str, int | None]] = {
    "power_cuts_tried": ("hardening_power", None),
    "power_cuts_lost_data": ("hardening_power", 0),
    "fuzz_frames": ("hardening_fuzz", None),
    "fuzz_crashes": ("hardening_fuzz", 0),
    "clock_faults_tried": ("hardening_clock", None),
    "overdoses": ("hardening_clock", 0),
    "unauthorised_frames_tried": ("hardening_auth", None),
    "unauthorised_changes": ("hardening_auth", 0),
    "soak_hours_simulated": ("hardening_soak", None),
    "heap_growth_bytes": ("hardening_soak", None),
    "write_failures_tried": ("hardening_reliability", None),
    "write_failures_acknowledged": ("hardening_reliability", 0),
    "reprovision_replays_tried": ("hardening_reliability", None),
    "replays_accepted": ("hardening_reliability", 0),
    "two_host_runs": ("hardening_reliability", None),
    "double_applied": ("hardening_reliability", 0),
    "ring_flood_frames": ("hardening_reliability", None),
    "therapy_events_lost": ("hardening_reliability", 0),
    "bad_inputs_tried": ("hardening_reliability", None),
    "tracebacks": ("hardening_reliability", 0),
    "suite_runs_same_result": ("suite_repeat", None),
}


def gather() -> tuple[dict[str, object], list[str]]:
    doc: dict[str, object] = {}
    sources: dict[str, str] = {}
    problems = []
    for name, (part, goal) in FIGURES.items():
        path = RESULTS / (part + ".json")
        if not path.exists():
            problems.append("%s: %s is missing (run bench/%s.py)" % (name, path.name, part))
            continue
        data = json.loads(path.read_text())
        if name not in data:
            problems.append("%s: not in %s" % (name, path.name))
            continue
        doc[name] = data[name]
        sources[name] = "bench/results/%s.json" % part
        if goal is not None and data[name] != goal:
            problems.append("%s = %s (goal %s)" % (name, data[name], goal))
    doc["sources"] = sources
    return doc, problems


def main() -> int:
    doc, problems = gather()
    (RESULTS / "hardening.json").write_text(json.dumps(doc, indent=2) + "\n")
    print("| figure | value | goal |\n| --- | --- | --- |")
    for name, (_, goal) in FIGURES.items():
        print("| %s | %s | %s |" % (name, doc.get(name, "missing"), "0" if goal == 0 else "-"))
    for p in problems:
        print("hardening: %s" % p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
