"""Coverage-guided fuzzing of the board's frame path: at least 1,000,000 frames, crashes counted (goal 0).

Runs fuzz/fuzz_board.py under atheris (libFuzzer; firmware/ instrumented) in a subprocess, seeded
with fuzz/corpus/ (copied: the committed corpus is never written), until the harness has fed at least
TARGET_FRAMES frames. A frame is counted when it is complete and reaches the board's decoder: a
good-CRC frame (Decoder.frames) or a NAKed one (Decoder.bad), summed over every simulated board the
harness used; the harness keeps these counts in a file through mmap, so they survive libFuzzer's exit.
The first run does FIRST_RUNS inputs; if it falls short, further runs (same work corpus, next seed)
do the inputs the measured frames per input say are missing. A crash is any input for which an
exception escaped Board.feed or a harness check failed (kernel invariant, daily cap, motor rate,
output parsing, one answer per frame, bounded buffers and RSS, per-input time), a libFuzzer timeout
or an out-of-memory: libFuzzer stops and leaves a crash-/timeout-/oom- file; the bench stops too.

Writes bench/results/hardening_fuzz.json; libFuzzer's log goes to bench/out/hardening_fuzz.log.
Rerun: `.venv/bin/python bench/hardening_fuzz.py` (about 7 minutes on 2 cores; --frames for a shorter run).
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fuzz import fuzz_board  # noqa: E402

HARNESS = REPO / "fuzz" / "fuzz_board.py"
CORPUS = REPO / "fuzz" / "corpus"
RESULT = REPO / "bench" / "results" / "hardening_fuzz.json"
LOG = REPO / "bench" / "out" / "hardening_fuzz.log"
TARGET_FRAMES = 1_000_000
FIRST_RUNS = 320_000
MAX_RUNS = 6
MAX_LEN = 1024
TIMEOUT_S = 30
RSS_LIMIT_MB = 2048
SEED = 20261121
ARTIFACTS = ("crash-", "timeout-", "oom-", "leak-", "slow-unit-")


def parse_log(text: str) -> dict[str, int]:
    """libFuzzer's last status line (cov, ft, corp) and final stats."""
    out: dict[str, int] = {}
    for m in re.finditer(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/(\d+)(b|Kb|Mb)", text, re.M):
        scale = {"b": 1, "Kb": 1024, "Mb": 1024 * 1024}[m.group(6)]
        out.update(runs=int(m.group(1)), cov=int(m.group(2)), ft=int(m.group(3)),
                   corpus_units=int(m.group(4)), corpus_bytes=int(m.group(5)) * scale)
    for m in re.finditer(r"^stat::(\w+):\s+(\d+)", text, re.M):
        out[m.group(1)] = int(m.group(2))
    return out


def run_once(index: int, runs: int, work: Path, artifacts: Path, stats: Path, log: TextIO) -> tuple[dict[str, int], dict[str, int], float]:
    """One atheris process: (libFuzzer figures, harness counters, seconds)."""
    cmd = [sys.executable, str(HARNESS), "-runs=%d" % runs, "-max_len=%d" % MAX_LEN, "-timeout=%d" % TIMEOUT_S,
           "-rss_limit_mb=%d" % RSS_LIMIT_MB, "-seed=%d" % (SEED + index), "-print_final_stats=1",
           "-artifact_prefix=%s/" % artifacts, str(work), str(CORPUS)]
    env = dict(os.environ, BLINPUMP_FUZZ_STATS=str(stats))
    log.write("== run %d: -runs=%d -seed=%d\n" % (index, runs, SEED + index))
    log.flush()
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, cwd=str(artifacts), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, errors="replace")
    seconds = time.monotonic() - started
    log.write(proc.stdout.replace(str(REPO) + os.sep, ""))
    log.flush()
    figures = parse_log(proc.stdout)
    figures["returncode"] = proc.returncode
    return figures, fuzz_board.Stats.read(str(stats)), seconds


def crash_reports(artifacts: Path, log_text: str) -> list[str]:
    names = sorted(p.name for p in artifacts.iterdir() if p.name.startswith(ARTIFACTS))
    tracebacks = re.findall(r"=== Uncaught Python exception: ===\n(.*?)(?:\n\n|==\d+==)", log_text, re.S)
    return names + [t.strip()[-600:] for t in tracebacks]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=TARGET_FRAMES, help="frames to reach (default %(default)s)")
    ap.add_argument("--first-runs", type=int, default=FIRST_RUNS, help="inputs of the first atheris run")
    ap.add_argument("--out", type=Path, default=RESULT, help="result file (default %(default)s)")
    args = ap.parse_args(argv)
    LOG.parent.mkdir(parents=True, exist_ok=True)
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    totals = dict.fromkeys(fuzz_board.STAT_FIELDS, 0)
    figures: list[dict[str, int]] = []
    seconds = 0.0
    crashes: list[str] = []
    failed_runs = 0
    with tempfile.TemporaryDirectory(prefix="hardening-fuzz-") as tmp, LOG.open("w") as log:
        work, artifacts = Path(tmp) / "work", Path(tmp) / "artifacts"
        work.mkdir()
        artifacts.mkdir()
        runs = args.first_runs
        for index in range(MAX_RUNS):
            fig, stats, secs = run_once(index, runs, work, artifacts, Path(tmp) / ("stats-%d.bin" % index), log)
            figures.append(fig)
            seconds += secs
            for key, value in stats.items():
                totals[key] = max(totals[key], value) if key == "max_input_us" else totals[key] + value
            print("run %d: %d inputs, %d frames, cov %s, %.0f s, exit %d"
                  % (index, stats["inputs"], stats["frames"], fig.get("cov"), secs, fig["returncode"]), flush=True)
            if fig["returncode"]:
                failed_runs += 1
                crashes = crash_reports(artifacts, LOG.read_text())
                break
            if totals["frames"] >= args.frames:
                break
            per_input = max(totals["frames"] / max(totals["inputs"], 1), 0.1)
            runs = int(math.ceil((args.frames - totals["frames"]) / per_input * 1.05)) + 1000
        final_units = len(list(work.iterdir()))
        crash_files = len([p for p in artifacts.iterdir() if p.name.startswith(ARTIFACTS)])
    last = figures[-1]
    child_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    doc = {
        "fuzz_frames": totals["frames"],
        "fuzz_crashes": crash_files,
        "failed_runs": failed_runs,
        "fuzz_frames_definition": "complete frames that reached the board's decoder (good CRC: Decoder.frames, "
                                  "NAKed: Decoder.bad), summed over every simulated board; harness set-up frames "
                                  "not counted",
        "target_frames": args.frames,
        "runs": totals["inputs"],
        "libfuzzer_runs": sum(f.get("number_of_executed_units", f.get("runs", 0)) for f in figures),
        "atheris_processes": len(figures),
        "frames_good_crc": totals["good_frames"],
        "frames_naked": totals["bad_frames"],
        "answers": {k: totals[k] for k in ("answers", "nak_bad_crc", "nak_malformed", "status_ok",
                                           "status_kernel_error", "e_malformed", "e_unknown_cmd", "e_arity",
                                           "e_out_of_state", "e_unauthorised", "e_version")},
        "events_sent": totals["events"],
        "boards_used": totals["boards"],
        "power_cuts": totals["power_cuts"],
        "max_input_ms": round(totals["max_input_us"] / 1000.0, 1),
        "corpus_seed_files": len(list(CORPUS.iterdir())),
        "corpus_seed_bytes": sum(p.stat().st_size for p in CORPUS.iterdir()),
        "corpus_final_units": last.get("corpus_units"),
        "corpus_final_bytes": last.get("corpus_bytes"),
        "corpus_new_files": final_units,
        "coverage_edges": last.get("cov"),
        "coverage_features": last.get("ft"),
        "peak_rss_mb": max([f.get("peak_rss_mb", 0) for f in figures] + [round(child_rss_mb)]),
        "seconds": round(seconds, 1),
        "frames_per_second": round(totals["frames"] / seconds) if seconds else None,
        "crash_reports": crashes,
        "settings": {"max_len": MAX_LEN, "timeout_s": TIMEOUT_S, "rss_limit_mb": RSS_LIMIT_MB, "seed": SEED,
                     "reset_every_inputs": fuzz_board.RESET_EVERY, "start_states": list(fuzz_board.START_STATES),
                     "max_fuzz_advance_min": fuzz_board.MAX_FUZZ_ADVANCE_MIN,
                     "max_input_seconds": fuzz_board.MAX_INPUT_SECONDS,
                     "rss_growth_limit_mb": fuzz_board.RSS_GROWTH_LIMIT_MB},
        "atheris": importlib.metadata.version("atheris"),
        "python": platform.python_version(),
        "board": "simulated board (firmware/simboard.py), CPython, firmware/ instrumented by atheris, in-process Board.feed",
    }
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print("fuzz: %d frames (%d inputs), %d crashes, cov %s ft %s, %.0f s, peak RSS %s MB -> %s"
          % (doc["fuzz_frames"], doc["runs"], doc["fuzz_crashes"], doc["coverage_edges"], doc["coverage_features"],
             seconds, doc["peak_rss_mb"], args.out))
    return 0 if not crash_files and not failed_runs and doc["fuzz_frames"] >= args.frames else 1


if __name__ == "__main__":
    sys.exit(main())
