"""Soak runs (hil/soak.py): a simulated board, a line that damages frames both ways, simulated days
of therapy back to back. Short runs here; the simulated week on MicroPython is
bench/hardening_soak.py. Then boards that leak, drop a tick, skip a journal record or forget their
reply cache, and hand-made samples, to show that every check can fail.
"""
from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any, Callable

import pytest

from blinpump.firmware import journal
from blinpump.firmware import kernel as k
from blinpump.firmware import main as fw_main
from blinpump.firmware import pump as fw_pump
from blinpump.hil import soak
from blinpump.hil.client import T_REQUEST, encode_frame

ALL_FAULTS = {"%s:%s" % (way, kind) for way in ("to_board", "to_host") for kind in soak.FAULT_KINDS}


def _why(r: soak.SoakResult) -> str:
    return "\n".join(r.failures) + "\n" + json.dumps(r.to_dict(), indent=1)


# ---------------------------------------------------------------- short soaks that pass

def test_two_days_on_the_cpython_board_over_a_noisy_line() -> None:
    r = soak.run_soak("cpython", sim_days=2, seed=11, fault_rate=0.05)
    assert r.ok, _why(r)
    # no missed tick: the clock and the dose are exactly the host's account (L2-constant-rate)
    assert r.sim_min == 2 * 1440 and r.missed_ticks == 0 and r.extra_ticks == 0
    assert r.status_samples > 500 and r.status_mismatches == 0
    assert r.course_ng == r.expected_course_ng > 0
    assert r.max_day_ng <= r.cap_ng_per_day and r.max_window_ng <= r.cap_ng_per_day     # L2-dose-28
    # nothing lost: every journal record collected once, each command applied once
    assert r.lost_events == 0 and r.journal.events == r.journal.next_seq > 20
    assert r.commands_replied == r.commands_journaled > 10
    assert r.boots == 1 + r.power_cuts
    # no leak
    assert r.heap.start_bytes > 0 and r.heap.growth_bytes <= soak.HEAP_BOUND_BYTES
    # and the run did what a soak must: bags ended (L2.5-durations), every interruption, a noisy line
    assert r.bags_ended >= 1 and set(r.interruptions) == set(soak.INTERRUPTION_KINDS)
    assert {key for key, n in r.line_faults.items() if n} == ALL_FAULTS
    assert r.resends > 0 and r.naks > 0 and r.bad_frames > 0 and r.stale_replies > 0


def test_a_day_on_the_micropython_board_over_a_noisy_line() -> None:
    r = soak.run_soak("micropython", sim_days=1, seed=21, fault_rate=0.05)
    assert r.ok, _why(r)
    assert r.heap_probe.startswith("HEAP") and r.heap.start_bytes > 0
    assert abs(r.heap.growth_bytes) <= soak.HEAP_BOUND_BYTES
    assert r.sim_min == 1440 and r.missed_ticks == 0 and r.course_ng == r.expected_course_ng > 0
    assert r.lost_events == 0 and r.commands_replied == r.commands_journaled > 0
    assert r.power_cuts >= 1 and r.boots == 1 + r.power_cuts
    assert r.resends > 0 and sum(r.line_faults.values()) > 20


# ---------------------------------------------------------------- boards that must fail

def test_a_board_that_keeps_every_frame_is_caught_leaking(monkeypatch: pytest.MonkeyPatch) -> None:
    take: Callable[[Any], bytes] = fw_main.Board._take

    def hoarding(board: Any) -> bytes:
        data = take(board)
        if data:
            board.__dict__.setdefault("kept_frames", []).append(data)
        return data
    monkeypatch.setattr(fw_main.Board, "_take", hoarding)
    r = soak.run_soak("cpython", sim_days=0.5, seed=12, fault_rate=0.02)
    assert r.heap.growth_bytes > soak.HEAP_BOUND_BYTES and r.heap.trend_bytes > soak.HEAP_BOUND_BYTES
    assert r.failures and all(f.startswith("heap:") for f in r.failures), r.failures


def test_a_board_that_drops_a_tick_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    tick: Callable[[Any], None] = fw_pump.Controller.tick
    dropped: list[int] = []

    def unreliable(ctrl: Any) -> None:
        if ctrl.s.now_min >= 300 and not dropped:
            dropped.append(ctrl.s.now_min)          # this minute's tick never runs
            return
        tick(ctrl)
    monkeypatch.setattr(fw_pump.Controller, "tick", unreliable)
    r = soak.run_soak("cpython", sim_days=0.5, seed=13, fault_rate=0.02)
    assert len(dropped) == 1
    assert r.missed_ticks == 1 and r.extra_ticks == 0 and r.status_mismatches > 0
    assert any(f.startswith("ticks:") for f in r.failures), r.failures
    assert any("now_min" in f for f in r.failures), r.failures


def test_a_journal_that_skips_a_record_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    log: Callable[..., bool] = journal.Journal.log

    def skipping(j: Any, time_min: int, code: int, a: int, b: int) -> bool:
        if j.event_seq == 5:
            j.event_seq += 1                        # record 5 is never written
        return bool(log(j, time_min, code, a, b))
    monkeypatch.setattr(journal.Journal, "log", skipping)
    r = soak.run_soak("cpython", sim_days=0.25, seed=14, fault_rate=0.02)
    assert r.lost_events == 1 and r.journal.events == r.journal.next_seq - 1
    assert any("never collected" in f and "[5]" in f for f in r.failures), r.failures


def test_a_board_that_forgets_its_reply_cache_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the cache a resent frame is executed again: the board refuses it as a replayed
    counter (so nothing is applied twice), and the soak reports the refusals."""
    frame: Callable[[Any], None] = fw_main.Board._frame

    def forgetful(board: Any) -> None:
        board.cache_seq = [-1] * len(board.cache_seq)
        frame(board)
    monkeypatch.setattr(fw_main.Board, "_frame", forgetful)
    r = soak.run_soak("cpython", sim_days=0.25, seed=15, fault_rate=0.1, fault_kinds=("duplicate", "lose"))
    assert not r.ok
    assert any("EV_AUTH" in f for f in r.failures), r.failures


# ---------------------------------------------------------------- the checks on hand-made cases

def _events(n: int, code: int = journal.EV_ALARM) -> list[dict[str, int]]:
    return [{"seq": s, "time_min": s, "code": code, "a": s, "b": 0} for s in range(n)]


def test_check_heap_passes_noise_and_spikes_and_catches_a_slow_leak() -> None:
    rng = random.Random(1)
    flat = [(60 * i, 50000 + rng.choice((-96, -32, 0, 32, 64))) for i in range(200)]
    report, failures = soak.check_heap(flat, 1440, 1024)
    assert failures == [] and abs(report.growth_bytes) <= 160 and report.start_bytes > 0
    spiky = flat[:-1] + [(flat[-1][0], flat[-1][1] + 1344)]            # garbage held by a stale pointer
    report, failures = soak.check_heap(spiky, 1440, 1024)
    assert failures == [] and report.max_bytes == spiky[-1][1]
    leak = [(t, b + 10 * i) for i, (t, b) in enumerate(flat)]         # 10 bytes an hour
    report, failures = soak.check_heap(leak, 1440, 1024)
    assert report.growth_bytes > 1024 and len(failures) == 2
    dip = leak[:-5] + [(t, b - 10 * (len(flat) - 5)) for t, b in leak[-5:]]   # ends where it began
    report, failures = soak.check_heap(dip, 1440, 1024)
    assert report.growth_bytes <= 1024 and [f for f in failures if "trend" in f] == failures != []
    _, failures = soak.check_heap(flat[:26], 1440, 1024)               # two samples after warm-up
    assert failures and "at least 3" in failures[0]


def test_check_journal_finds_gaps_duplicates_and_unread_records() -> None:
    evs = _events(10)
    assert soak.check_journal(evs, 10)[1] == []
    report, failures = soak.check_journal(evs[:4] + evs[5:], 10)
    assert report.lost == 1 and failures
    report, failures = soak.check_journal(evs + [evs[3]], 10)
    assert report.duplicates == 1 and failures
    report, failures = soak.check_journal(evs, 12)                     # the last two never read
    assert report.lost == 2 and failures


def test_check_commands_finds_a_command_applied_twice_or_not_at_all() -> None:
    start = (fw_pump.CMD_START, k.OK)
    evs = _events(3, journal.EV_COMMAND)
    for ev in evs:
        ev["a"], ev["b"] = start
    assert soak.check_commands(evs, Counter({start: 3})) == []
    assert soak.check_commands(evs, Counter({start: 2}))               # applied without a reply
    assert soak.check_commands(evs, Counter({start: 4}))               # replied but not applied


def test_check_stream_and_boots() -> None:
    evs = _events(6)
    evs[0]["code"] = journal.EV_BOOT
    missed, mismatches, failures = soak.check_stream(evs[:2] + evs[4:], evs)
    assert (missed, mismatches, failures) == (2, 0, [])
    changed = dict(evs[2], a=99)
    assert soak.check_stream([changed], evs)[1:] != (0, [])
    assert soak.check_boots(evs, 0) == []
    assert soak.check_boots(evs, 1)                                     # a power cut without its boot
    assert soak.check_boots(evs + [dict(evs[1], seq=6, code=journal.EV_AUTH)], 0)


# ---------------------------------------------------------------- the line

class _Wire:
    """A port that records what is written and serves what the test puts in `rx`."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.rx = bytearray()
        self.timeout = 0.0

    @property
    def in_waiting(self) -> int:
        return len(self.rx)

    def write(self, data: bytes) -> int:
        self.written += data
        return len(data)

    def read(self, n: int = 1) -> bytes:
        data = bytes(self.rx[:n])
        del self.rx[:n]
        return data

    def close(self) -> None:
        pass


def _frames(n: int) -> list[bytes]:
    return [encode_frame(T_REQUEST, seq, 33, [seq, 7]) for seq in range(1, n + 1)]


def _read_all(line: soak.FaultyLine) -> bytes:
    line.timeout = 0.0
    out = b""
    while True:
        chunk = line.read(4096)
        if not chunk:
            return out
        out += chunk


def test_a_clean_line_passes_every_byte_and_splits_frames() -> None:
    wire = _Wire()
    line = soak.FaultyLine(wire, 0.0, random.Random(1))
    frames = _frames(20)
    for f in frames:
        line.write(f)
    wire.rx += b"".join(frames)
    assert bytes(wire.written) == b"".join(frames) == _read_all(line)
    assert line.frames_to_board == line.frames_to_host == 20 and not line.faults


@pytest.mark.parametrize("kind", soak.FAULT_KINDS)
def test_each_fault_damages_every_frame_both_ways_at_rate_one(kind: str) -> None:
    frames = _frames(8)
    clean = b"".join(frames)
    wire = _Wire()
    line = soak.FaultyLine(wire, 1.0, random.Random(2), (kind,))
    for f in frames:
        line.write(f)
    wire.rx += clean
    to_board, to_host = bytes(wire.written), _read_all(line)
    assert line.faults == Counter({"to_board:" + kind: 8, "to_host:" + kind: 8})
    if kind == "delay":                     # each frame goes with the next write, the last one not yet
        assert to_board == clean[:-len(frames[-1])] and to_host == b""
        line.enabled = False
        line.write(frames[0])
        assert _read_all(line) == clean
        return
    for sent in (to_board, to_host):
        if kind == "lose":
            assert sent == b""
        elif kind == "duplicate":
            assert sent == b"".join(f + f for f in frames)
        elif kind in ("drop_byte", "cut"):
            assert len(sent) < len(clean)
        elif kind == "flip_bit":
            assert len(sent) == len(clean) and sum(bin(x ^ y).count("1") for x, y in zip(sent, clean)) == 8
        else:                               # garbage before each frame, the frame intact
            assert len(sent) > len(clean) and all(f in sent for f in frames)
