"""Firmware benchmark: allocation per tick, ticks under heap_lock, heap after start-up and with
the board loop, .mpy sizes (production build, mpy-cross -O levels), tick cost per runtime, and
the time `blinpump flash` takes against the REPL board.

One run measures the compiled firmware (.mpy) on both real MicroPython ports, the WebAssembly
port (32-bit, under Node) and the unix port (64-bit), and the same source on CPython, and writes
bench/results/firmware.json. Every heap figure names its port: the WebAssembly port's are 32-bit
figures, the nearest to a board here; the unix port's objects are twice the size, never a
board's figure. On the WebAssembly port heap is read in separate calls (#@phase): it frees
garbage only between calls. The board configuration is measured: kernel, record (on a file),
hardware layer, controller; then the protocol, authentication and board loop.
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
storage = hal.FileStorage("record.bin", journal.TOTAL_BYTES)
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
import micropython
locked = 0
s3 = k.State()
k.setup(s3, 1, k.IND_MRD, 70000, 0, 0); k.bag(s3, 1, 1, 196000, 100800, 600, 168, 1, 0, 0)
k.ack(s3, 1); k.ack(s3, 2); k.start(s3); tick(s3)
micropython.heap_lock()
try:
    for _ in r:
        tick(s3)
        locked += 1
except MemoryError:
    pass
micropython.heap_unlock()
print("HEAP_LOCK_TICKS", locked)
"""

# Code against data: the firmware's modules imported (their bytecode, constants and globals:
# what freezing keeps in flash instead, but for the globals), then its objects made
SPLIT_SCRIPT = """
import gc
#@phase
gc.collect()
print("HEAP_BASELINE", gc.mem_alloc())
#@phase
from firmware import auth, codes, hal, journal, kernel, kernel_sha, main, protocol, pump
#@phase
gc.collect()
print("HEAP_CODE", gc.mem_alloc())
#@phase
from firmware import simhal
storage = hal.FileStorage("record.bin", journal.TOTAL_BYTES)
c = pump.Controller(storage, simhal.SimClock(), simhal.SimMotor())
c.boot()
board = main.Board(None, c)
#@phase
gc.collect()
print("HEAP_DATA", gc.mem_alloc())
"""

# the heap figures only, for the mpy-cross -O levels (WebAssembly port)
HEAP_SCRIPT = MPY_SCRIPT.split("#@phase\n" + SETUP)[0]




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


def _values(output: str) -> dict[str, list[float]]:
    vals: dict[str, list[float]] = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isupper():
            vals.setdefault(parts[0], []).append(float(parts[1]))
    return vals


def on_port(port: str, script: str, root: str = build.DEFAULT_OUT_DIR) -> dict[str, list[float]] | None:
    res = micropython.run_script(script, root=root, timeout=900, port=port, compile_first=False)
    if res.returncode != 0:
        print("%s port:\n%s" % (port, res.stdout), file=sys.stderr)
        return None
    return _values(res.stdout)


def flash_seconds() -> float:
    """`blinpump flash` (production build, a new board) against the REPL board: from the first
    mpremote session to the pump's HELLO naming the kernel."""
    import contextlib
    import io
    from blinpump.hil import flash
    from blinpump.hil.replboard import ReplBoard
    build.compile_firmware(production=True)
    with ReplBoard() as board, contextlib.redirect_stdout(io.StringIO()):
        t0 = time.perf_counter()
        rc = flash.flash_main(["--port", board.path, "--no-pump"])
        took = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit("flash against the REPL board failed")
    return took


def main() -> int:
    compiled = build.compile_firmware()
    production = build.compile_firmware(production=True)
    script = MPY_SCRIPT % {"ticks": TICKS, "runs": RUNS}
    ports = {}
    for port in micropython.PORTS:
        vals = on_port(port, script)
        if vals is None:
            return 1
        ports[port] = vals
    cpy_us = statistics.median(cpython_tick_us())
    wasm, unix = ports["webassembly"], ports["unix"]
    levels = {}
    for opt in (0, 1, 2, 3):
        out_dir = "build/opt%d" % opt
        files = build.compile_firmware(out_dir, production=True, opt=opt)
        build.compile_firmware(out_dir, opt=opt)            # the heap script imports simhal too
        heap = on_port("webassembly", HEAP_SCRIPT, root=out_dir)
        if heap is None:
            return 1
        levels[str(opt)] = {"mpy_total_bytes_production": sum(c.size_bytes for c in files),
                            "heap_with_board_loop_bytes_webassembly": int(heap["HEAP_BOARD_LOOP"][0])}

    split = on_port("webassembly", SPLIT_SCRIPT)
    if split is None:
        return 1

    def per_port(key: str, scale: float = 1.0) -> dict[str, float]:
        return {port: round(vals[key][0] / scale, 3) for port, vals in ports.items()}

    result = {
        "tick_us_cpython": round(cpy_us, 3),
        "tick_us_unix": round(statistics.median(unix["TICK_US"]), 3),
        "tick_us_wasm": round(statistics.median(wasm["TICK_US"]), 3),
        "alloc_bytes_per_tick": per_port("ALLOC_KERNEL", TICKS),
        "heap_lock_ticks": {port: int(vals["HEAP_LOCK_TICKS"][0]) for port, vals in ports.items()},
        "alloc_bytes_per_controller_tick": per_port("ALLOC_CONTROLLER"),
        "heap_runtime_baseline_bytes": {port: int(v["HEAP_BASELINE"][0]) for port, v in ports.items()},
        "heap_after_start_bytes": {port: int(v["HEAP_AFTER_START"][0]) for port, v in ports.items()},
        "heap_firmware_bytes": {port: int(v["HEAP_AFTER_START"][0] - v["HEAP_BASELINE"][0])
                                for port, v in ports.items()},
        "heap_with_board_loop_bytes": {port: int(v["HEAP_BOARD_LOOP"][0]) for port, v in ports.items()},
        "heap_firmware_with_board_loop_bytes": {port: int(v["HEAP_BOARD_LOOP"][0] - v["HEAP_BASELINE"][0])
                                                for port, v in ports.items()},
        # production modules (simhal, the plant, is imported only for the objects' clock and motor)
        "heap_code_bytes_webassembly": int(split["HEAP_CODE"][0] - split["HEAP_BASELINE"][0]),
        "heap_data_bytes_webassembly": int(split["HEAP_DATA"][0] - split["HEAP_CODE"][0]),
        "mpy_total_bytes": sum(c.size_bytes for c in production),
        "mpy_total_bytes_simulation": sum(c.size_bytes for c in compiled),
        "mpy_files": {c.module: c.size_bytes for c in production},
        "mpy_cross_opt_levels": levels,
        "flash_seconds": round(flash_seconds(), 2),
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
