"""HIL benchmark: serial round trips on both simulated boards, a whole course in fast-forward,
bytes per command. Writes bench/results/hil.json.

- round trips per second over a real pty, hil.client.Pump against the CPython board and the
  MicroPython board (mpy-cross compiled firmware in the WebAssembly port), in the same run:
  ACK_ALARM(0) (a 16-byte request and reply that goes through the controller and its record
  write, like every therapy command) and STATUS (172-byte reply); medians of RUNS runs;
- a whole R/R course (9 cycles, 546 days, planned by model/) given over serial with the CPython
  board, and its first two cycles on both boards (for the runtime ratio); medians;
- bytes on the wire per command, and what that is at 115200 baud 8N1;
- boards_in_parallel: the same scenarios on 1 board, then on 4 at once (`blinpump bench
  --boards 4`: each scenario on the next free board), in one run, per runtime; the throughput
  ratio is the first time over the second. CPython boards twice: served by threads of the bench's
  own process (one interpreter lock for all four), and each in a `blinpump sim` process of its
  own; a MicroPython board is a Node process of its own; all share this machine's cores.
Rerun: `make setup && .venv/bin/python bench/hil_bench.py [--parts boards]`.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from blinpump.firmware import auth as fw_auth  # noqa: E402
from blinpump.firmware import kernel as k  # noqa: E402
from blinpump.firmware import protocol as P  # noqa: E402
from blinpump.firmware import simboard as SIM  # noqa: E402
from blinpump.firmware import pump as fw_pump  # noqa: E402
from blinpump.hil import scenarios  # noqa: E402
from blinpump.hil import auth as host_auth  # noqa: E402
from blinpump.hil.client import Pump, encode_signed  # noqa: E402
from blinpump.hil.sim import RUNTIMES, SimBoard  # noqa: E402

RUNS = 3
ROUND_TRIPS = 500
BAUD = 115200
BITS_PER_BYTE = 10          # 8N1


def round_trips_per_s(p: Pump, call, n: int = ROUND_TRIPS) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        call()
    return n / (time.perf_counter() - t0)


def course_s(p: Pump, cycles: int | None) -> float:
    result = scenarios.run_course(p, "rr", 70.0, cycles=cycles)
    assert result["ok"], result
    return float(result["wall_s"])


def wire_bytes() -> dict[str, dict[str, float]]:
    examples = {
        "START": (fw_pump.CMD_START, [], [k.OK]),
        "SETUP": (fw_pump.CMD_SETUP, [4242, k.IND_RR, 70000, 0, 0], [k.OK]),
        "BAG": (fw_pump.CMD_BAG, [4242, 1, 196000, 100800, 600, 168, 1, 0, 0], [k.OK]),
        "STATUS": (P.CMD_STATUS, [], [k.OK] + [0] * len(P.STATUS_FIELDS)),
        "ADVANCE": (SIM.CMD_ADVANCE, [10080], [k.OK, 10080, 20160]),
    }
    keys = host_auth.sim_keys()
    out = {}
    for name, (cmd, args, reply) in examples.items():
        role = host_auth.role_for(cmd, keys)        # as the client sends it: signed (docs/security.md)
        req = len(encode_signed(keys[role], 0x0101, cmd, args, role, 1))
        board = fw_auth.Auth(keys)                  # the board signs its reply (TYPE 6)
        rep = len(P.encode(bytearray(), P.T_AUTH_REPLY, 0x0101, cmd, reply, role, 1,
                           lambda m, r=role: board.mac(r, m)))
        out[name] = {"request_bytes": req, "reply_bytes": rep,
                     "round_trip_ms_at_115200": round((req + rep) * BITS_PER_BYTE * 1000 / BAUD, 2),
                     "round_trips_per_s_at_115200": round(BAUD / BITS_PER_BYTE / (req + rep), 1)}
    return out


# the parallel-boards figure's scenarios on MicroPython: the short ones (the courses take minutes there)
PARALLEL_MPY = ["flush-refused", "crs4-lockout", "neuro4-lockout", "overdose-12h-wait", "bag-durations",
                "icans2-restart-9", "other4-clinician-decides", "interruption-5h-reinit"]
BOARDS = 4


@contextlib.contextmanager
def board_process(runtime: str) -> Iterator[str]:
    """A simulated board in a process of its own (`blinpump sim`), as separate boards are: its
    device path while it runs."""
    proc = subprocess.Popen([sys.executable, "-m", "blinpump", "sim", "--runtime", runtime],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        path = proc.stdout.readline().strip() if proc.stdout else ""
        if not path:
            raise RuntimeError("blinpump sim --runtime %s did not start" % runtime)
        yield path
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def boards_in_parallel(runtime: str, names: list[str] | None, processes: bool = False) -> dict[str, object]:
    """Wall time of the same scenarios on 1 board and on BOARDS boards at once (in one run).
    processes: each CPython board in its own `blinpump sim` process, not a thread of this one."""
    chosen = scenarios.standard(names)
    seconds = {}
    for n in (1, BOARDS):
        with contextlib.ExitStack() as stack:
            boards = []
            for i in range(n):
                path = (stack.enter_context(board_process(runtime)) if processes
                        else stack.enter_context(SimBoard(runtime)).path)
                boards.append(("sim%d" % (i + 1), stack.enter_context(Pump(path, timeout_s=10.0))))
            t0 = time.perf_counter()
            results = scenarios.run_boards(boards, chosen)
            seconds[n] = time.perf_counter() - t0
            assert all(r.ok for r in results), [f for r in results for f in r.failures]
    return {"scenarios": len(chosen), "seconds_1_board": round(seconds[1], 2),
            "seconds_%d_boards" % BOARDS: round(seconds[BOARDS], 2),
            "throughput_ratio": round(seconds[1] / seconds[BOARDS], 2)}


def parallel_figures() -> dict[str, object]:
    cp = boards_in_parallel("cpython", None)
    cp_own = boards_in_parallel("cpython", None, processes=True)
    mp = boards_in_parallel("micropython", PARALLEL_MPY)
    return {"boards_in_parallel": BOARDS, "boards_in_parallel_cpython": cp,
            "boards_in_parallel_cpython_processes": cp_own, "boards_in_parallel_micropython": mp,
            "boards_in_parallel_cores": os.cpu_count(),
            "boards_in_parallel_note": ("the same scenarios on 1 board, then on %d at once, in one run; ratio = "
                                        "1-board time / %d-board time. cpython: the boards are threads of the "
                                        "bench's own process (one interpreter lock for boards and hosts); "
                                        "cpython_processes: each board a `blinpump sim` process; micropython: "
                                        "each board a Node process. All share this machine's cores "
                                        "(boards_in_parallel_cores); real boards work on their own" % (BOARDS, BOARDS)),
            **scenario_coverage()}


def parallel_figures_of(results: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in results.items() if k.startswith(("boards_in_parallel", "scenarios_total", "clauses_"))}


def scenario_coverage() -> dict[str, object]:
    """scenarios_total and the clauses the kernel enforces with no standard scenario (goal: none)."""
    from blinpump.hil import scenarios
    every = scenarios.standard()
    missing = scenarios.clauses_without_scenario(every)
    return {"scenarios_total": len(every), "clauses_enforced": len(scenarios.enforced_clauses()),
            "clauses_without_scenario": len(missing), "clauses_without_scenario_list": missing}


def main() -> int:
    if sys.argv[1:] == ["--parts", "boards"]:   # only the parallel boards, kept beside the rest
        out = REPO / "bench" / "results" / "hil.json"
        results = json.loads(out.read_text()) if out.exists() else {}
        results.update(parallel_figures())
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(parallel_figures_of(results), indent=2))
        return 0
    only_runtimes = sys.argv[1:] == ["--parts", "runtimes"]   # the per-runtime figures, kept beside the rest
    out = REPO / "bench" / "results" / "hil.json"
    results: dict[str, object] = json.loads(out.read_text()) if only_runtimes and out.exists() else {}
    rt: dict[str, list[float]] = {}
    two_cycles: dict[str, list[float]] = {}
    full: list[float] = []
    for runtime in RUNTIMES:
        with SimBoard(runtime) as board, Pump(board.path, timeout_s=5.0) as p:
            p.reset()
            p.status()
            rt["ack_" + runtime] = [round_trips_per_s(p, lambda: p.ack_alarm(0)) for _ in range(RUNS)]
            rt["status_" + runtime] = [round_trips_per_s(p, p.status) for _ in range(RUNS)]
            two_cycles[runtime] = [course_s(p, 2) for _ in range(RUNS)]
            if runtime == "cpython" and not only_runtimes:
                full = [course_s(p, None) for _ in range(RUNS)]
    med = {key: statistics.median(v) for key, v in rt.items()}
    # the unix port: a board process on a pseudo-terminal of its own (main.ConsoleTransport)
    results["round_trips_per_s_unix"] = round(med["ack_unix"], 1)
    results["status_round_trips_per_s_unix"] = round(med["status_unix"], 1)
    results["two_cycles_fast_forward_seconds_unix"] = round(statistics.median(two_cycles["unix"]), 2)
    results["fast_forward_ratio_unix_vs_cpython"] = round(
        statistics.median(two_cycles["unix"]) / statistics.median(two_cycles["cpython"]), 2)
    results["round_trips_per_s_cpython"] = round(med["ack_cpython"], 1)
    results["round_trips_per_s_micropython"] = round(med["ack_micropython"], 1)
    results["round_trip_ratio_cpython_vs_micropython"] = round(med["ack_cpython"] / med["ack_micropython"], 2)
    results["status_round_trips_per_s_cpython"] = round(med["status_cpython"], 1)
    results["status_round_trips_per_s_micropython"] = round(med["status_micropython"], 1)
    results["round_trip_command"] = ("ACK_ALARM(0) over a pty, authenticated (HMAC-SHA256 checked by the board: a 56-byte "
                                    "request; the board signs its 56-byte reply, the client checks it); status: STATUS")
    if not only_runtimes:
        results["course_fast_forward_seconds"] = round(statistics.median(full), 2)
        results["course"] = ("R/R, 70 kg, 9 cycles, 546 days, 7-day bags, planned by model.planner, over a pty, "
                             "CPython board")
    results["two_cycles_fast_forward_seconds_cpython"] = round(statistics.median(two_cycles["cpython"]), 2)
    results["two_cycles_fast_forward_seconds_micropython"] = round(statistics.median(two_cycles["micropython"]), 2)
    results["fast_forward_ratio_micropython_vs_cpython"] = round(
        statistics.median(two_cycles["micropython"]) / statistics.median(two_cycles["cpython"]), 2)
    if only_runtimes:
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps({k: v for k, v in results.items() if "per_s" in k or "fast_forward" in k}, indent=2))
        return 0
    results["bytes_per_command"] = wire_bytes()
    results["bytes_per_command_note"] = ("frame bytes on the wire incl. flags (12 + 4 per argument; requests "
                                         "and their signed replies add the 40-byte authentication trailer) and stuffing (+1 for each 0x7E, "
                                         "0x7D or 0x03 byte); at 115200 baud 8N1 a byte takes 86.8 us: on a real "
                                         "UART the line, not the board, limits the rate")
    results.update(parallel_figures())
    results["runs"] = RUNS
    results["round_trips_per_run"] = ROUND_TRIPS
    out = REPO / "bench" / "results" / "hil.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
