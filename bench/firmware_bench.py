"""Firmware benchmark: allocation per tick, heap after start-up, .mpy size, tick cost ratio.

Runs the compiled firmware (.mpy) on the real MicroPython runtime (WebAssembly port under
Node) and the same source on CPython, in one run, and writes bench/results/firmware.json.
Heap is read in a separate call after start-up: this port frees garbage only between calls.
The board configuration is measured: kernel, record (on a file), hardware layer, controller.
Rerun: `make setup && .venv/bin/python bench/firmware_bench.py`.
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from blinpump.hil import build, micropython  # noqa: E402

TICKS = 10000
RUNS = 3

# Shared by both runtimes: a running 7-day bag, so 10,000 ticks all deliver.
SETUP = """
try:
    from blinpump.firmware import kernel as k     # CPython: the installed package
except ImportError:
    from firmware import kernel as k              # MicroPython: the .mpy files, as on a board
s = k.State()
assert k.setup(s, 1, k.IND_MRD, 70000, 0, 0) == 0
assert k.bag(s, 1, 1, 196000, 100800, 600, 168, 1, 0, 0) == 0
k.ack(s, 1); k.ack(s, 2)
assert k.start(s) == 0
"""

MPY_SCRIPT = """
import gc, time
#@phase
gc.collect()
print("HEAP_BASELINE", gc.mem_alloc())
#@phase
from firmware import kernel, journal, hal, pump, simhal
storage = hal.FileStorage("/record.bin", journal.TOTAL_BYTES)
c = pump.Controller(storage, simhal.SimClock(), simhal.SimMotor())
c.boot()
#@phase
gc.collect()
print("HEAP_AFTER_START", gc.mem_alloc())
#@phase
from firmware import main
board = main.Board(None, c)
#@phase
gc.collect()
print("HEAP_BOARD_LOOP", gc.mem_alloc())
#@phase
""" + SETUP + """
tick = k.tick
n = %(ticks)d
r = range(n)
for _ in range(50):       # warm-up: the first calls may allocate once (steady state is measured)
    tick(s)
gc.collect()
a0 = gc.mem_alloc()
for _ in r:
    tick(s)
a1 = gc.mem_alloc()
print("ALLOC_KERNEL", a1 - a0)
assert s.mode == k.MODE_RUNNING, s.mode
for run in range(%(runs)d):
    s2 = k.State()
    k.setup(s2, 1, k.IND_MRD, 70000, 0, 0); k.bag(s2, 1, 1, 196000, 100800, 600, 168, 1, 0, 0)
    k.ack(s2, 1); k.ack(s2, 2); k.start(s2)
    t0 = time.ticks_us()
    for _ in r:
        tick(s2)
    print("TICK_US", time.ticks_diff(time.ticks_us(), t0) / n)
c.command(pump.CMD_SETUP, [1, 1, 70000, 0, 0])
c.command(pump.CMD_BAG, [1, 1, 196000, 100800, 600, 168, 1, 0, 0])
c.command(pump.CMD_ACK, [1]); c.command(pump.CMD_ACK, [2]); c.command(pump.CMD_START, [])
gc.collect()
a0 = gc.mem_alloc()
for _ in range(1000):
    c.tick()
print("ALLOC_CONTROLLER", (gc.mem_alloc() - a0) / 1000)
"""


def cpython_tick_us() -> list[float]:
    from blinpump.firmware import kernel as k
    out = []
    for _ in range(RUNS):
        ns: dict[str, object] = {}
        exec(SETUP, ns)
        s = ns["s"]
        t0 = time.perf_counter()
        for _ in range(TICKS):
            k.tick(s)
        out.append((time.perf_counter() - t0) * 1e6 / TICKS)
    return out


def main() -> int:
    compiled = build.compile_firmware()
    mpy_total = sum(c.size_bytes for c in compiled)
    res = micropython.run_script(MPY_SCRIPT % {"ticks": TICKS, "runs": RUNS}, timeout=600)
    if res.returncode != 0:
        print(res.stdout, file=sys.stderr)
        return 1
    vals: dict[str, list[float]] = {}
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isupper():
            vals.setdefault(parts[0], []).append(float(parts[1]))
    cpy = cpython_tick_us()
    mpy_us = statistics.median(vals["TICK_US"])
    cpy_us = statistics.median(cpy)
    result = {
        "alloc_bytes_per_tick": vals["ALLOC_KERNEL"][0] / TICKS,
        "alloc_bytes_per_controller_tick": vals["ALLOC_CONTROLLER"][0],
        "heap_after_start_bytes": int(vals["HEAP_AFTER_START"][0]),
        "heap_runtime_baseline_bytes": int(vals["HEAP_BASELINE"][0]),
        "heap_firmware_bytes": int(vals["HEAP_AFTER_START"][0] - vals["HEAP_BASELINE"][0]),
        "heap_with_protocol_board_loop_bytes": int(vals["HEAP_BOARD_LOOP"][0]),
        "mpy_total_bytes": mpy_total,
        "mpy_files": {c.module: c.size_bytes for c in compiled},
        "tick_us_micropython_median": round(mpy_us, 3),
        "tick_us_cpython_median": round(cpy_us, 3),
        "tick_ratio_micropython_vs_cpython": round(mpy_us / cpy_us, 2),
        "ticks_per_run": TICKS,
        "runs": RUNS,
    }
    out = REPO / "bench" / "results" / "firmware.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
