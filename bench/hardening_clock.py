"""Clock and timing faults against the controller: a long seeded random campaign.

Episodes of random clock behaviour (good minutes, parts of a minute, late ticks of 1 to 5 min,
forward jumps of 5 min + 1 ms to 3 weeks, backward jumps of 1 ms to 3 weeks, backward jitter,
wrap-around of a 2**30 ms tick counter, reboots after known and unknown outages) interleaved
with therapy commands, on pump.Controller over simhal's plant, with the oracle of
tests/mpy/clock_rig.py after every step (L2-dose-28, L2.5-errors, L2-reinit-4h, L2-premed,
L2.6-bag-*). The random campaign in the test suite is tests/test_clock_faults.py.

Writes bench/results/hardening_clock.json: clock_faults_tried, overdoses (steps where a dose,
bag or motor check failed; goal 0), under_counted_interruptions (steps where the interruption
check failed; goal 0), other_failures, and what was exercised. Rerun:
`.venv/bin/python bench/hardening_clock.py [--faults N] [--seed S]`.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "mpy"))

from blinpump.firmware import kernel as k, pump  # noqa: E402
from clock_rig import MS_PER_MIN, WRAP_PERIOD_MS, Rig  # noqa: E402

FAULTS = 60000
SEED = 20261122
WEEK_MS = 7 * 1440 * MS_PER_MIN
MAX_JUMP_MS = 3 * WEEK_MS
MAX_WRAP_JUMP_MS = WRAP_PERIOD_MS - pump.MAX_GAP_MS - 1    # beyond: aliasing, the watchdog's job
ACTIONS = [  # (kind, weight)
    ("min", 14), ("sub", 6), ("late", 8), ("fwd", 12), ("back", 12), ("jitter", 3), ("reboot", 6),
    ("therapy", 10), ("bag", 3), ("ack", 4), ("start", 5), ("stop", 4), ("clear", 6), ("reaction", 2),
    ("resolved", 2), ("remove", 1),
]


def episode(rng: random.Random, counts: dict[str, int], actions: int, faults_by: dict[str, int] | None = None) -> Rig:
    wrap = rng.random() < 0.5
    period = WRAP_PERIOD_MS if wrap else 0
    if wrap:
        start = WRAP_PERIOD_MS - rng.randint(1, 30 * MS_PER_MIN) if rng.random() < 0.5 else rng.randrange(WRAP_PERIOD_MS)
    else:
        start = rng.randint(0, 10 ** 12)
    jump_max = MAX_WRAP_JUMP_MS if wrap else MAX_JUMP_MS
    r = Rig(period_ms=period, start_ms=start, strict=False)
    r.therapy(rng.choice([24, 48, 72, 96, 168]))
    kinds = [a for a, _ in ACTIONS]
    weights = [w for _, w in ACTIONS]
    for _ in range(actions):
        kind = rng.choices(kinds, weights)[0]
        counts[kind] = counts.get(kind, 0) + 1
        faults_before = r.clock_faults
        if kind == "min":
            r.minutes(rng.choice([1, 59, 60, 61, 239, 240, 241, rng.randint(1, 1500)]))
        elif kind == "sub":
            ms = rng.randint(1, MS_PER_MIN - 1)
            r.clock_step(ms, ms)
        elif kind == "late":
            ms = rng.choice([pump.MAX_GAP_MS, rng.randint(MS_PER_MIN + 1, pump.MAX_GAP_MS)])
            r.clock_step(ms, ms)
        elif kind == "fwd":                       # a stall: real time passes as the clock says
            ms = rng.choice([pump.MAX_GAP_MS + 1, rng.randint(pump.MAX_GAP_MS + 1, jump_max),
                             rng.randint(pump.MAX_GAP_MS + 1, 6 * 60 * MS_PER_MIN)])
            r.clock_step(ms, ms)
        elif kind == "back":                      # the clock went back; any real time passed
            ms = rng.choice([1, 1000, rng.randint(1, MS_PER_MIN), rng.randint(1, jump_max)])
            r.clock_step(-ms, rng.choice([0, rng.randint(0, 6 * 60 * MS_PER_MIN), rng.randint(0, MAX_JUMP_MS)]))
        elif kind == "jitter":
            back, step = rng.randint(1, 1000), rng.randint(0, 2 * MS_PER_MIN)
            for _ in range(rng.randint(1, 10)):
                r.clock_step(-back, 0)
                r.clock_step(back + step, step)
        elif kind == "reboot":
            outage = rng.choice([0, 1, MS_PER_MIN - 1, 240 * MS_PER_MIN, rng.randint(0, 6 * 60 * MS_PER_MIN),
                                 rng.randint(0, MAX_JUMP_MS)])
            known = rng.random() < 0.6
            counts["reboot_known" if known else "reboot_unknown"] = counts.get("reboot_known" if known else "reboot_unknown", 0) + 1
            r.reboot_as(outage, known, rng.randrange(WRAP_PERIOD_MS))
        elif kind == "therapy":
            if r.therapy(rng.choice([24, 48, 72, 96, 168])) == k.OK:
                counts["started"] = counts.get("started", 0) + 1
        elif kind == "bag":
            r.bag(rng.choice([24, 48, 72, 96, 168]))
        elif kind == "ack":
            r.ack()
        elif kind == "start":
            if r.start() == k.OK:
                counts["started"] = counts.get("started", 0) + 1
        elif kind == "stop":
            r.stop(rng.randint(1, 11))
        elif kind == "clear":
            r.clear_fault()
        elif kind == "reaction":
            r.command(pump.CMD_REACTION, [rng.choice([k.RX_CRS, k.RX_ICANS, k.RX_OTHER]), rng.choice([2, 3]), k.SCALE_CTCAE])
        elif kind == "resolved":
            for rx in range(k.RX_CRS, k.RX_OTHER + 1):     # every open reaction
                r.command(pump.CMD_RESOLVED, [rx])
        elif kind == "remove":
            r.command(pump.CMD_REMOVE_BAG, [])
        if faults_by is not None and r.clock_faults > faults_before:
            faults_by[kind] = faults_by.get(kind, 0) + r.clock_faults - faults_before
    return r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faults", type=int, default=FAULTS, help="stop after this many clock faults (default %d)" % FAULTS)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--actions", type=int, default=60, help="actions per episode (default 60)")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "hardening_clock.json"))
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    counts: dict[str, int] = {}
    faults_by: dict[str, int] = {}
    totals = {"episodes": 0, "steps": 0, "clock_faults": 0, "overdoses": 0, "under_counted": 0, "other": 0,
              "kernel_minutes": 0, "real_hours": 0.0, "delivered_ng": 0, "wraps": 0, "long_off_checks": 0}
    failures: list[str] = []
    t0 = time.time()
    while totals["clock_faults"] < args.faults:
        r = episode(rng, counts, args.actions, faults_by)
        totals["episodes"] += 1
        totals["steps"] += r.steps
        totals["clock_faults"] += r.clock_faults
        totals["overdoses"] += r.overdoses
        totals["under_counted"] += r.under_counted
        totals["other"] += r.other
        totals["kernel_minutes"] += r.c.s.now_min
        totals["real_hours"] += r.true_ms / 3600000.0
        totals["delivered_ng"] += r.c.s.course_ng
        totals["wraps"] += r.wraps
        totals["long_off_checks"] += r.long_off_checks
        failures.extend(r.failures[: max(0, 20 - len(failures))])
    seconds = time.time() - t0
    doc = {
        "clock_faults_tried": totals["clock_faults"],
        "overdoses": totals["overdoses"],
        "under_counted_interruptions": totals["under_counted"],
        "other_failures": totals["other"],
        "clock_faults_by_kind": {"forward_jump": faults_by.get("fwd", 0), "backward_jump": faults_by.get("back", 0),
                                 "backward_jitter": faults_by.get("jitter", 0)},
        "seconds": round(seconds, 1),
        "episodes": totals["episodes"],
        "steps_checked": totals["steps"],
        "kernel_minutes_ticked": totals["kernel_minutes"],
        "real_hours_simulated": round(totals["real_hours"], 1),
        "tick_counter_wraps": totals["wraps"],
        "checks_after_4h_or_more_stopped": totals["long_off_checks"],
        "delivered_mcg": round(totals["delivered_ng"] / 1000.0, 1),
        "actions": dict(sorted(counts.items())),
        "first_failures": failures,
        "seed": args.seed,
        "board": "pump.Controller on simhal (SimClock, half of the episodes wrapping at 2**30 ms), CPython, in-process",
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print("clock faults: %d tried, %d overdoses, %d under-counted interruptions, %d other failures (%.1f s) -> %s"
          % (doc["clock_faults_tried"], doc["overdoses"], doc["under_counted_interruptions"], doc["other_failures"],
             seconds, out))
    return 0 if totals["overdoses"] == totals["under_counted"] == totals["other"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
