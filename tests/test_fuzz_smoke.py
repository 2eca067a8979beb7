"""The fuzz harness and its corpus, checked without a long run (fuzz/fuzz_board.py, fuzz/make_corpus.py).

The harness's one-input function runs here in-process, without atheris instrumentation: over every
seed of fuzz/corpus/ on a fresh board each, and over a few thousand pseudo-random inputs on reused
boards. Its checks must hold for all of them (L2.5-errors: no frame changes therapy unless it is a
valid, authorised command; L2-dose-28: the daily cap; L2-constant-rate: the motor runs at the bag's
rate or not at all), and they must fire on a board with a dosing bug. One short atheris run in a
subprocess shows the instrumented harness works end to end.
"""
from __future__ import annotations

import gc
import os
import random
import re
import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

import atheris  # noqa: E402  (pinned in requirements.lock)

from blinpump.firmware import kernel as k  # noqa: E402
from blinpump.firmware import journal, main, pump  # noqa: E402
from fuzz import fuzz_board as F  # noqa: E402
from fuzz import make_corpus  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "fuzz" / "corpus"
SEEDS = sorted(CORPUS.iterdir())


def seed(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def test_the_corpus_is_what_make_corpus_writes() -> None:
    """fuzz/corpus/ can be regenerated: it is exactly fuzz/make_corpus.py's output, a modest number
    of small files, within the -max_len the benchmark gives libFuzzer."""
    seeds = make_corpus.build_corpus()
    assert {p.name: p.read_bytes() for p in SEEDS} == seeds, "run fuzz/make_corpus.py"
    assert 30 <= len(seeds) <= 100
    assert max(map(len, seeds.values())) <= 1024
    assert any(n.startswith("raw-vector-") for n in seeds) and any(n.startswith("structured-cmd-") for n in seeds)


@pytest.mark.parametrize("path", [p for p in SEEDS if p.name.startswith("structured-")], ids=lambda p: p.name)
def test_structured_seeds_decode_to_the_frames_they_were_written_for(path: Path) -> None:
    """encode_plans is the inverse of read_plans (atheris.FuzzedDataProvider's byte order)."""
    data = path.read_bytes()
    plans = F.read_plans(atheris.FuzzedDataProvider(data[1:]))
    assert plans == make_corpus.structured_plans()[path.name]
    assert F.encode_plans(plans) == data


def test_L2_5_errors_every_seed_on_a_fresh_board_passes_the_harness_checks() -> None:
    """Each seed on its own fresh board: no exception, every check holds, and together the seeds
    reach every kind of answer (so the corpus starts the fuzzer past the decoder and the MAC)."""
    target = F.Target(reset_every=1)
    for path in SEEDS:
        target.one_input(path.read_bytes())
    st = target.stats.values
    assert st["inputs"] == len(SEEDS) and st["boards"] == len(SEEDS)
    assert st["answers"] == st["frames"] - 1            # the one frame that cut the power mid-write
    for name in ("nak_bad_crc", "nak_malformed", "status_ok", "status_kernel_error", "e_malformed",
                 "e_unknown_cmd", "e_arity", "e_out_of_state", "e_unauthorised", "e_version"):
        assert st[name] > 0, name


def test_L2_5_errors_the_infusion_seed_really_starts_an_infusion() -> None:
    """The structured format reaches the kernel: the seed's signed frames start a 48 h bag."""
    target = F.Target(reset_every=1)
    target.one_input(seed("structured-infusion"))
    s = target.sim.board.controller.s
    assert (s.mode, s.motor_ul_per_h, s.now_min) == (k.MODE_RUNNING, 5000, 60)
    assert target.sim.motor.ul_per_h == 5000


def random_input(rng: random.Random) -> bytes:
    """Raw or structured (low bit of the first byte), up to 400 bytes."""
    return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 400)))


def test_L2_5_errors_random_inputs_on_reused_boards_pass_and_memory_stays_bounded() -> None:
    """A few thousand pseudo-random inputs, boards reused as in the benchmark and cycling through
    the fresh, session and infusing start states: no exception, every check holds, and the live
    memory (after a collection) barely moves after the warm-up: 25 bytes an input would show."""
    rng = random.Random(20261121)
    target = F.Target(reset_every=300)
    for _ in range(600):
        target.one_input(random_input(rng))
    tracemalloc.start()
    try:
        for _ in range(300):
            target.one_input(random_input(rng))
        gc.collect()
        warm, _ = tracemalloc.get_traced_memory()
        for _ in range(2400):
            target.one_input(random_input(rng))
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    st = target.stats.values
    assert st["inputs"] == 3300 and st["boards"] == 11 and st["frames"] > 3300
    assert st["status_ok"] > 0 and st["e_unauthorised"] > 0 and st["naks"] > 0
    assert after - warm < 60 * 1024, (warm, after)


class OverdosingBoard(main.Board):
    """A deliberately broken board: after a successful START it drives the motor at twice the
    bag's rate (a dosing bug outside the kernel, which the kernel invariant alone cannot see)."""

    def _dispatch(self, cmd: int, args: list[int], authenticated: bool) -> list[int]:
        values: list[int] = super()._dispatch(cmd, args, authenticated)
        if cmd == pump.CMD_START and values == [k.OK]:
            self.controller.motor.set_rate(2 * self.controller.s.bag_ul_per_h)
        return values


def test_L2_constant_rate_the_harness_catches_a_board_that_overdoses() -> None:
    target = F.Target(reset_every=1, board_class=OverdosingBoard)
    with pytest.raises(F.FuzzCheckFailed, match="motor runs at 10000, commanded 5000"):
        target.one_input(seed("structured-infusion"))


class BoardBeforeTheEventsFix(main.Board):
    """firmware/main.py Board._events before it clamped since_seq: EVENTS [-1] returned the blank
    ring records (seq -1 < 0 is not below -1) with their 0xFFFFFFFF seq, which does not fit the
    reply's i32: struct.error escaped Board.feed, which on a board ends run() (the motor stops)."""

    def _events(self, since_seq: int, security: bool = False) -> list[int]:
        values = [k.OK, self.controller.journal.event_seq, 0]
        n = 0
        for ev in _events_before_the_fix(self.controller.journal, since_seq):
            if n == 8:
                break
            values.extend(ev)
            n += 1
        values[2] = n
        return values


def _events_before_the_fix(j: journal.Journal, since_seq: int) -> list[tuple[int, ...]]:
    """Journal.events before it skipped the seq -1 of blank and corrupt ring records."""
    out = []
    for i in range(journal.EVENT_SLOTS):
        rec = j.storage.read(journal.RING_OFFSET + i * journal.EVENT_BYTES, journal.EVENT_BYTES)
        if journal._event_seq(rec) >= since_seq:
            f = struct.unpack_from("<IihHii", rec, 0)
            out.append((f[0], f[1], f[2], f[4], f[5]))
    return sorted(out)


def test_L2_5_errors_the_harness_surfaces_an_exception_out_of_feed() -> None:
    """The bug the fuzz tests found: the seed that reproduces it raises out of one_input on the
    board as it was, and passes on the fixed board."""
    with pytest.raises(struct.error):
        F.Target(reset_every=1, board_class=BoardBeforeTheEventsFix).one_input(seed("structured-events-negative-seq"))
    F.Target(reset_every=1).one_input(seed("structured-events-negative-seq"))


def test_atheris_runs_the_instrumented_harness_over_the_corpus(tmp_path: Path) -> None:
    """A short libFuzzer run (subprocess, a few seconds): it loads the corpus, gets coverage of the
    instrumented firmware, finds no crash, and the stats file counts the frames."""
    stats = tmp_path / "stats.bin"
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run(
        [sys.executable, str(REPO / "fuzz" / "fuzz_board.py"), "-runs=3000", "-max_len=1024", "-seed=7",
         "-timeout=30", "-artifact_prefix=%s/" % tmp_path, str(work), str(CORPUS)],
        env=dict(os.environ, BLINPUMP_FUZZ_STATS=str(stats)), cwd=str(tmp_path),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "Done 3000 runs" in proc.stdout
    figures = F.Stats.read(str(stats))
    assert figures["inputs"] == 3000 and figures["frames"] > 3000
    cov = [int(m) for m in re.findall(r"cov: (\d+)", proc.stdout)]
    assert cov and max(cov) > 400, "firmware/ was not instrumented"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-"))]
