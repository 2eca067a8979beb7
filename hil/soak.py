"""Soak run: a simulated board over a noisy line, back to back, through days of simulated therapy.

Requirement: "the simulated board at the highest frame rate the link sustains for a simulated
week with random faults on the line: no leak (MicroPython heap stable), no missed tick, nothing
lost."

    result = run_soak("micropython", sim_days=7, seed=1, fault_rate=0.02)
    assert result.ok, "\\n".join(result.failures)

The line. FaultyLine sits between hil.client.Pump and the board's port (a pty opened with
pyserial for hil.sim.SimBoard, or hil.sim.BoardLink for the in-process CPython board). It
generalises NoisyLink of tests/test_protocol_faults.py from chunks of a BoardLink to whole frames
of any port: each frame, each way, is damaged with probability `fault_rate`, by one of
FAULT_KINDS (a byte dropped, a bit flipped, the frame duplicated, cut short, lost, held back
until the host's next write, or preceded by garbage). hil/sim.py is used as it is.

The host. Requests go back to back, with no sleep anywhere: the frame rate is what the link and
the board sustain. Pump resends the same SEQ on a missing, damaged or NAKed reply; the board
answers duplicates from its reply cache, so every command is applied once.

The therapy (TherapyModel keeps the host's own account of it). An MRD patient of 70 kg, bags of
24, 48, 72 and 96 h in turn (L2.5-durations: preservative from 72 h; rates fixed per bag,
L2-constant-rate) at rates up to the model's cap (L2-dose-28), each changed as soon as the host
sees it end or expire (L2.6-bag-*). ADVANCE steps of 1..step_max_min minutes, each followed by
STATUS and EVENTS; HEAP every heap_every_min. A few interruptions of each kind
(INTERRUPTION_KINDS): a clinician stop, a line alarm, a power cut with a known outage, and a
stop of more than 4 h that needs the acknowledgements again (L2-reinit-4h, L2-premed).

The checks (each a function below, so a test can feed it a failing case):
- no leak: check_heap, on live heap bytes after a collection (MicroPython: HEAP, gc.mem_alloc;
  CPython: BoardHeap, bytes of the objects reachable from the in-process board);
- no missed tick: compare_status after every step, now_min and delivered totals against the
  model (L2-constant-rate), day_ng against the cap (L2-dose-28), and the model's own sliding
  24 h window against the cap;
- nothing lost: check_journal (every seq once, none missing), check_commands (the journal's
  EV_COMMAND records equal the therapy commands the host got replies for), check_stream
  (unsolicited events equal the journal's), check_boots (one boot plus one per power cut).
A LinkError, an unexpected BoardRebooted or a PumpError ends the run as a failure.
"""
from __future__ import annotations

import gc
import random
import statistics
import sys
import time
import types
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from blinpump.firmware import journal
from blinpump.firmware import kernel as k
from blinpump.firmware import pump as fw_pump
from blinpump.hil import scenarios
from blinpump.hil.client import FLAG, BoardRebooted, LinkError, Pump, PumpError, open_serial
from blinpump.hil.sim import RUNTIMES, BoardLink, SimBoard
from blinpump.model import limits

MIN_PER_H = limits.MIN_PER_H
MIN_PER_DAY = limits.MIN_PER_DAY
REINIT_MIN = limits.REINIT_THRESHOLD_MIN            # L2-reinit-4h
EVENT_RING = journal.EVENT_SLOTS                    # the board keeps the last 256 events
MAX_SIM_DAYS = 21       # one cycle: 21 days of infusion plus a 4-day bag stay inside 28 (L2-cycle-42)

PATIENT = {"indication": "mrd", "weight_kg": 70}
PATIENT_ID = scenarios.PATIENT_ID
# (hours, share of the cap) in turn: L2.5-durations; the rate never exceeds the cap (L2-dose-28)
BAG_ROTATION = ((24, (1, 1)), (48, (1, 1)), (24, (1, 2)), (72, (1, 1)), (96, (3, 4)))
PRE_ROOM_MAX_MIN = 60           # room-temperature minutes before the bag is hung, when allowed
PRE_FRIDGE_MAX_MIN = 1440

FAULT_KINDS = ("drop_byte", "flip_bit", "duplicate", "cut", "lose", "delay", "garbage")
MAX_GARBAGE_BYTES = 24
POLL_S = 0.002                  # how long one read of the underlying port may block

INTERRUPTION_KINDS = ("clinician", "line_alarm", "power_cut", "reinit")
HEAP_BOUND_BYTES = 1024         # growth allowed after warm-up
HEAP_WINDOW = 5                 # samples in the medians of the heap's start and end
MAX_REPORTED = 20               # failure messages kept per kind of check


# ---------------------------------------------------------------- the line

class FaultyLine:
    """A pyserial-like port that damages whole frames, both ways, with probability `rate`.

    Host -> board: every write is one frame. Board -> host: bytes are split into frames at
    their flags, and each complete frame is damaged (or not) before the host can read it.
    `enabled` False passes everything through (the clean set-up before a soak).
    """

    def __init__(self, port: Any, rate: float, rng: random.Random, kinds: tuple[str, ...] = FAULT_KINDS) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("fault rate must be in [0, 1]")
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown or not kinds:
            raise ValueError("fault kinds must be some of %s" % ", ".join(FAULT_KINDS))
        self.port = port
        self.rate = rate
        self.rng = rng
        self.kinds = kinds
        self.enabled = True
        self.timeout: float | None = 0.05       # set by the client before each read (None: 0)
        self.faults: Counter[str] = Counter()   # "to_board:flip_bit" -> count
        self.frames_to_board = 0
        self.frames_to_host = 0
        self._partial = bytearray()             # board -> host: a frame not complete yet
        self._ready = bytearray()               # board -> host: bytes the host may read
        self._held = {"to_board": b"", "to_host": b""}
        if not isinstance(port, BoardLink):
            port.timeout = POLL_S

    # ---- pyserial interface used by hil.client.Pump
    @property
    def in_waiting(self) -> int:
        return len(self._ready)

    def write(self, data: bytes) -> int:
        self._ready += self._held["to_host"]        # frames held back arrive before the answer
        self._held["to_host"] = b""
        self.frames_to_board += 1
        earlier = self._held["to_board"]
        self._held["to_board"] = b""
        out = earlier + self._damage(bytes(data), "to_board")
        if out:
            self.port.write(out)
        return len(data)

    def read(self, n: int = 1) -> bytes:
        deadline = time.monotonic() + (self.timeout or 0.0)
        while not self._ready:
            self._pull()
            if self._ready or time.monotonic() >= deadline:
                break
        data = bytes(self._ready[:n])
        del self._ready[:n]
        return data

    def close(self) -> None:
        self.port.close()

    # ---- internals
    def _pull(self) -> None:
        chunk = self.port.read(max(1, self.port.in_waiting))
        if chunk:
            self._from_board(chunk)

    def _from_board(self, chunk: bytes) -> None:
        """Split at flags; a frame is flag..flag. Bytes outside any frame pass unchanged."""
        buf = bytes(self._partial) + chunk
        self._partial = bytearray()
        pos = 0
        while pos < len(buf):
            start = buf.find(FLAG, pos)
            if start < 0:
                self._ready += buf[pos:]
                return
            self._ready += buf[pos:start]
            end = buf.find(FLAG, start + 1)
            if end < 0:
                self._partial += buf[start:]
                return
            if end == start + 1:                    # two flags: the second opens the frame
                pos = end
                continue
            self.frames_to_host += 1
            self._ready += self._damage(buf[start:end + 1], "to_host")
            pos = end + 1

    def _damage(self, frame: bytes, way: str) -> bytes:
        if not self.enabled or not frame or self.rng.random() >= self.rate:
            return frame
        kind = self.rng.choice(self.kinds)
        self.faults["%s:%s" % (way, kind)] += 1
        rng = self.rng
        if kind == "drop_byte":
            i = rng.randrange(len(frame))
            return frame[:i] + frame[i + 1:]
        if kind == "flip_bit":
            bad = bytearray(frame)
            bad[rng.randrange(len(bad))] ^= 1 << rng.randrange(8)
            return bytes(bad)
        if kind == "duplicate":
            return frame + frame
        if kind == "cut":
            return frame[:rng.randrange(1, len(frame))]
        if kind == "lose":
            return b""
        if kind == "delay":
            self._held[way] += frame
            return b""
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, MAX_GARBAGE_BYTES))) + frame


# ---------------------------------------------------------------- the host's account of therapy

@dataclass(frozen=True)
class BagOrder:
    """A prepared bag: its rate is fixed for its whole life (L2-constant-rate). It holds 9/8 of
    what it infuses at the site's rate (EXT-rates: the overfill stays behind)."""
    hours: int
    ng_per_day: int
    room_min: int = 0
    fridge_min: int = 0

    @property
    def rate_ul_per_h(self) -> int:
        return scenarios.table_rate_ul_per_h(self.hours)

    @property
    def volume_ul(self) -> int:
        return scenarios.standard_volume_ul(self.hours)

    @property
    def preservative(self) -> int:
        return scenarios.standard_preservative(self.hours)      # L2.5-durations

    @property
    def drug_ng(self) -> int:
        return scenarios.prepared_drug_ng(self.ng_per_day, self.hours, self.volume_ul, self.rate_ul_per_h)

    @property
    def duration_min(self) -> int:
        return self.hours * MIN_PER_H

    @property
    def room_limit_min(self) -> int:
        return limits.BAG_ROOM_MIN[self.hours]      # L2.6-bag-*: infusion time included

    def args(self, patient_id: int, bag_id: int) -> list[int]:
        return [patient_id, bag_id, self.drug_ng, self.volume_ul, self.rate_ul_per_h, self.hours,
                self.preservative, self.room_min, self.fridge_min]


def bag_orders(cap_ng_per_day: int, rng: random.Random) -> Callable[[int], BagOrder]:
    """The n-th bag of the run: BAG_ROTATION in turn, with some storage time before it is hung
    where the label leaves room for it (L2.6-bag-*: storage plus infusion within the limit)."""
    def order(n: int) -> BagOrder:
        hours, (num, den) = BAG_ROTATION[n % len(BAG_ROTATION)]
        ng_per_day = cap_ng_per_day * num // den
        duration_min = hours * MIN_PER_H
        spare_min = limits.BAG_ROOM_MIN[hours] - duration_min
        room_min = rng.randint(0, min(PRE_ROOM_MAX_MIN, spare_min))
        fridge_min = rng.randint(0, min(PRE_FRIDGE_MAX_MIN, limits.BAG_FRIDGE_MIN[hours]))
        return BagOrder(hours, ng_per_day, room_min, fridge_min)
    return order


class TherapyModel:
    """What the pump must have done, kept by the host from the label's rules (not the kernel's code).

    Time: the board's clock moves by ADVANCE ticks and by power outages, nothing else, so
    now_min = ticks_min + outage_min exactly. Dose: a bag delivers its constant rate
    (L2-constant-rate): after r minutes booked it has given floor(r * ng_per_day / 1440) ng.
    The record books each minute before it runs (docs/protocol.md, "What the record counts"):
    a start books the first minute, each running tick the next one, so while the motor runs
    the record holds the minute in flight, and a stop keeps the minute it cut short; the most
    in any 1440 ticks counts the minutes that ran. A bag ends once its duration has run
    (L2.5-durations) or expires when its time at room temperature, storage before hanging
    included, reaches the label's limit (L2.6-bag-*), checked at the tick after the minute ran.
    A stop of 4 h or more needs the acknowledgements again before a start (L2-reinit-4h), like
    the first dose of a cycle (L2-premed).
    """

    def __init__(self) -> None:
        self.ticks_min = 0
        self.outage_min = 0
        self.running = False
        self.bag: BagOrder | None = None
        self.bag_run_min = 0
        self.bag_room_min = 0
        self.course_ng = 0
        self.stopped_at_min: int | None = None      # board minute of the current interruption
        self.inflight_ng = 0                        # the minute booked and running now
        self.acks_needed = True                     # L2-premed: first dose of the cycle
        self.bags_loaded = 0
        self.bags_ended = 0
        self.bags_expired = 0
        self._window: deque[int] = deque(maxlen=MIN_PER_DAY)
        self._window_ng = 0
        self.max_window_ng = 0                      # most delivered in any 1440 consecutive ticks

    @property
    def now_min(self) -> int:
        return self.ticks_min + self.outage_min

    def load(self, bag: BagOrder) -> None:
        self.bag = bag
        self.bag_run_min = 0
        self.bag_room_min = bag.room_min
        self.bags_loaded += 1

    def acks_due(self) -> bool:
        off_min = 0 if self.stopped_at_min is None else self.now_min - self.stopped_at_min
        return self.acks_needed or off_min >= REINIT_MIN            # L2-reinit-4h

    def start(self) -> None:
        self.running = True
        self.stopped_at_min = None
        self.acks_needed = False
        self._book()

    def _book(self) -> None:
        """Book the next minute of the running bag before it runs."""
        assert self.bag is not None
        rate, run = self.bag.ng_per_day, self.bag_run_min + 1
        self.inflight_ng = run * rate // MIN_PER_DAY - (run - 1) * rate // MIN_PER_DAY
        self.bag_run_min = run
        self.course_ng += self.inflight_ng

    def stop(self) -> None:
        if self.running:
            self.running = False
            self.stopped_at_min = self.now_min
        self.inflight_ng = 0                        # booked and kept; it did not run to its end

    def power_cut(self, outage_min: int) -> None:
        """Power off for a known time: the motor stops; the clock and the bag's room time go on."""
        self.stop()
        self.outage_min += outage_min
        if self.bag is not None:
            self.bag_room_min += outage_min
        self._end_checks()

    def advance(self, minutes: int) -> None:
        for _ in range(minutes):
            self._tick()

    def _tick(self) -> None:
        self.ticks_min += 1
        dose_ng = self.inflight_ng if self.running else 0   # the minute booked before has run
        self.inflight_ng = 0
        if self.bag is not None:
            self.bag_room_min += 1
        if len(self._window) == MIN_PER_DAY:
            self._window_ng -= self._window[0]
        self._window.append(dose_ng)
        self._window_ng += dose_ng
        self.max_window_ng = max(self.max_window_ng, self._window_ng)
        self._end_checks()
        if self.running and self.bag is not None:
            self._book()

    def _end_checks(self) -> None:
        bag = self.bag
        if bag is None:
            return
        if self.bag_run_min >= bag.duration_min:
            self.bags_ended += 1                    # L2.5-durations
        elif self.bag_room_min >= bag.room_limit_min:
            self.bags_expired += 1                  # L2.6-bag-*
        else:
            return
        self.stop()
        self.bag = None


@dataclass(frozen=True)
class Interruption:
    kind: str           # one of INTERRUPTION_KINDS
    at_min: int         # tick minute it begins
    length_min: int     # minutes stopped; a power cut: the outage, restarted at once


def plan_interruptions(total_min: int, rng: random.Random) -> list[Interruption]:
    """Rounds of one interruption of each kind, in random order, one per slot of the run
    (a round every two simulated days, at least one); a kind too long for its slot is left out."""
    rounds = max(1, total_min // (2 * MIN_PER_DAY))
    kinds = [kind for _ in range(rounds) for kind in rng.sample(INTERRUPTION_KINDS, len(INTERRUPTION_KINDS))]
    slot_min = total_min // (len(kinds) + 1)
    out = []
    for i, kind in enumerate(kinds):
        length_min = {"clinician": rng.randint(10, 60), "line_alarm": rng.randint(5, 30),
                      "power_cut": rng.randint(1, 30), "reinit": REINIT_MIN + rng.randint(5, 30)}[kind]
        if length_min >= slot_min // 2:
            continue
        at_min = (i + 1) * slot_min + rng.randrange(max(1, slot_min // 4))
        out.append(Interruption(kind, at_min, length_min))
    return out


# ---------------------------------------------------------------- checks

@dataclass
class HeapReport:
    """Live heap bytes after a collection, sampled through the run: (tick minute, bytes)."""
    samples: list[tuple[int, int]]
    start_bytes: int = -1       # baseline: median of the first HEAP_WINDOW samples after warm-up
    end_bytes: int = -1         # median of the last HEAP_WINDOW samples
    max_bytes: int = -1         # highest single sample after warm-up
    growth_bytes: int = 0       # end - start
    trend_bytes: int = 0        # rise of the least-squares line over the samples after warm-up


def check_heap(samples: list[tuple[int, int]], warm_up_min: int, bound_bytes: int,
               window: int = HEAP_WINDOW) -> tuple[HeapReport, list[str]]:
    """No leak: after warm-up, the live heap may neither end more than bound_bytes above its
    baseline nor rise along a trend by more than bound_bytes over the run (a slow leak whose
    last samples happen to dip is still a trend). Start and end are medians of `window`
    samples: MicroPython's collector is conservative, so a sample taken on a noisy line can find
    the previous reply's garbage still pointed at from the stack (one sample ~1.3 kB higher,
    gone at the next); a leak stays. Needs at least three samples after warm-up."""
    after = [(t, b) for t, b in samples if t >= warm_up_min and b >= 0]
    report = HeapReport(list(samples))
    if len(after) < 3:
        return report, ["heap: %d samples after warm-up (minute %d), at least 3 needed" % (len(after), warm_up_min)]
    w = max(1, min(window, len(after) // 2))
    report.start_bytes = round(statistics.median(b for _, b in after[:w]))
    report.end_bytes = round(statistics.median(b for _, b in after[-w:]))
    report.max_bytes = max(b for _, b in after)
    report.growth_bytes = report.end_bytes - report.start_bytes
    report.trend_bytes = round(_slope(after) * (after[-1][0] - after[0][0]))
    failures = []
    if report.growth_bytes > bound_bytes:
        failures.append("heap: grew %d bytes from %d to %d after warm-up (bound %d): a leak"
                        % (report.growth_bytes, report.start_bytes, report.end_bytes, bound_bytes))
    if report.trend_bytes > bound_bytes:
        failures.append("heap: rising trend of %d bytes over the run (bound %d): a leak"
                        % (report.trend_bytes, bound_bytes))
    return report, failures


def _slope(points: list[tuple[int, int]]) -> float:
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_b = sum(b for _, b in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    return sum((t - mean_t) * (b - mean_b) for t, b in points) / var


def compare_status(model: TherapyModel, status: dict[str, int], cap_ng_per_day: int) -> list[str]:
    """No missed tick, and the dose the label allows: the board's clock is exactly the minutes
    the host advanced plus the outages (ADVANCE is applied once per SEQ, however often it is
    resent); it has delivered exactly what the bag rates give over the running minutes
    (L2-constant-rate), runs and holds a bag when the host's account says so (L2.5-durations,
    L2.6-bag-*), and its 24 h total stays within the cap without the cap guard firing (L2-dose-28)."""
    at = "minute %d:" % model.ticks_min
    out = []
    if status["now_min"] != model.now_min:
        out.append("%s now_min %d, expected %d (%+d ticks)" % (at, status["now_min"], model.now_min,
                                                               status["now_min"] - model.now_min))
    if status["course_ng"] != model.course_ng:
        out.append("%s course_ng %d, expected %d from the bag rates (L2-constant-rate)"
                   % (at, status["course_ng"], model.course_ng))
    if (status["mode"] == k.MODE_RUNNING) != model.running:
        out.append("%s mode %d, expected %s" % (at, status["mode"], "running" if model.running else "stopped"))
    if status["bag_loaded"] != (model.bag is not None):
        out.append("%s bag_loaded %d, expected %d (L2.5-durations, L2.6-bag-*)"
                   % (at, status["bag_loaded"], model.bag is not None))
    elif model.bag is not None and status["bag_run_min"] != model.bag_run_min:
        out.append("%s bag_run_min %d, expected %d" % (at, status["bag_run_min"], model.bag_run_min))
    if status["day_ng"] > cap_ng_per_day:
        out.append("%s day_ng %d above the cap %d (L2-dose-28)" % (at, status["day_ng"], cap_ng_per_day))
    if status["alarm"] & k.AL_CAP:
        out.append("%s the cap guard stopped the motor (AL_CAP, L2-dose-28)" % at)
    return out


@dataclass
class JournalReport:
    events: int = 0             # distinct seqs collected
    next_seq: int = 0           # the board's next journal seq (STATUS events)
    lost: int = 0               # seqs below next_seq never collected
    duplicates: int = 0         # seqs collected more than once
    unexpected: int = 0         # seqs at or above next_seq


def check_journal(events: list[dict[str, int]], next_seq: int) -> tuple[JournalReport, list[str]]:
    """Nothing lost: every journal seq from 0 to next_seq - 1 was collected exactly once (EVENTS
    pages read before the ring of EVENT_RING events could wrap), and none beyond it."""
    seen = Counter(ev["seq"] for ev in events)
    missing = [s for s in range(next_seq) if s not in seen]
    report = JournalReport(len(seen), next_seq, len(missing), sum(n - 1 for n in seen.values() if n > 1),
                           sum(1 for s in seen if s < 0 or s >= next_seq))
    failures = []
    if missing:
        failures.append("journal: %d of %d events never collected (first: %s)"
                        % (len(missing), next_seq, missing[:MAX_REPORTED]))
    if report.duplicates:
        dups = sorted(s for s, n in seen.items() if n > 1)
        failures.append("journal: %d events collected twice (seqs %s)" % (report.duplicates, dups[:MAX_REPORTED]))
    if report.unexpected:
        failures.append("journal: %d events outside 0..%d" % (report.unexpected, next_seq - 1))
    return report, failures


def check_commands(events: list[dict[str, int]], replied: Counter[tuple[int, int]]) -> list[str]:
    """Each therapy command applied exactly once: the journal's EV_COMMAND records, as
    (command id, status), equal the commands the host got a reply for, however many resends."""
    journaled = Counter((ev["a"], ev["b"]) for ev in events if ev["code"] == journal.EV_COMMAND)
    if journaled == replied:
        return []
    extra = journaled - replied
    missing = replied - journaled
    return ["commands: journal has %d, host got replies for %d; applied without a reply %s, "
            "replied but not applied %s" % (sum(journaled.values()), sum(replied.values()),
                                            dict(extra), dict(missing))]


def check_stream(stream: list[dict[str, int]], events: list[dict[str, int]],
                 security: list[dict[str, int]] = ()) -> tuple[int, int, list[str]]:  # type: ignore[assignment]
    """Unsolicited events may be lost on a noisy line (the journal is the reference), but each
    one that arrives must be the journal's record (EV_AUTH: the security ring's, which has its
    own seqs). Returns (missed, mismatches, failures): missed counts journal events the board
    sends unsolicited (all but EV_COMMAND) never seen."""
    by_seq = {ev["seq"]: ev for ev in events}
    by_auth_seq = {ev["seq"]: ev for ev in security}

    def record(ev: dict[str, int]) -> dict[str, int]:
        return {k: v for k, v in ev.items() if k != "verified"}     # the client's mark, not the board's
    mismatches = [ev for ev in stream
                  if (by_auth_seq if ev["code"] == journal.EV_AUTH else by_seq).get(ev["seq"]) != record(ev)]
    stream = [ev for ev in stream if ev["code"] != journal.EV_AUTH]
    seen = {ev["seq"] for ev in stream}
    missed = sum(1 for ev in events if ev["code"] != journal.EV_COMMAND and ev["seq"] not in seen)
    failures = []
    if mismatches:
        failures.append("stream: %d unsolicited events differ from the journal (first %s)"
                        % (len(mismatches), mismatches[:3]))
    return missed, len(mismatches), failures


def check_boots(events: list[dict[str, int]], power_cuts: int,
                security: list[dict[str, int]] = ()) -> list[str]:  # type: ignore[assignment]
    """No reboot but the power cuts the soak injected, and nothing refused or corrupt on the
    record (refusals are in the security ring): a damaged frame never reaches authentication
    (L2.5-errors)."""
    codes = Counter(ev["code"] for ev in list(events) + list(security))
    failures = []
    if codes[journal.EV_BOOT] != 1 + power_cuts:
        failures.append("journal: %d boots, expected 1 + %d power cuts" % (codes[journal.EV_BOOT], power_cuts))
    for code, name in ((journal.EV_AUTH, "refused frames (EV_AUTH)"), (journal.EV_CORRUPT, "corrupt records"),
                       (journal.EV_FAULT, "faults (EV_FAULT)")):
        if codes[code]:
            failures.append("journal: %d %s" % (codes[code], name))
    return failures


# ---------------------------------------------------------------- the result

@dataclass
class SoakResult:
    runtime: str
    transport: str
    seed: int
    fault_rate: float
    sim_min: int = 0                # minutes the host advanced (ticks)
    outage_min: int = 0
    step_max_min: int = 0
    seconds: float = 0.0
    requests: int = 0               # requests the host made (each one SEQ)
    resends: int = 0
    naks: int = 0
    bad_frames: int = 0
    stale_replies: int = 0
    bytes_out: int = 0
    bytes_in: int = 0
    frames_to_board: int = 0
    frames_to_host: int = 0
    line_faults: dict[str, int] = field(default_factory=dict)
    heap: HeapReport = field(default_factory=lambda: HeapReport([]))
    heap_probe: str = ""
    missed_ticks: int = 0           # most the board's clock was ever behind the host's minutes
    extra_ticks: int = 0            # most it was ever ahead
    status_mismatches: int = 0      # STATUS samples that disagreed with the host's account
    status_samples: int = 0
    course_ng: int = 0
    expected_course_ng: int = 0
    cap_ng_per_day: int = 0
    max_day_ng: int = 0             # highest day_ng the board reported
    max_window_ng: int = 0          # highest total over 1440 consecutive ticks, host's account
    journal: JournalReport = field(default_factory=JournalReport)
    stream_events: int = 0
    stream_missed: int = 0
    stream_mismatches: int = 0
    commands_replied: int = 0
    commands_journaled: int = 0
    bags_loaded: int = 0
    bags_ended: int = 0
    bags_expired: int = 0
    interruptions: dict[str, int] = field(default_factory=dict)
    power_cuts: int = 0
    boots: int = 0                  # EV_BOOT records in the journal
    aborted: str = ""
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def frames(self) -> int:
        """Frames the host sent: every request and every resend (each one a round trip)."""
        return self.requests + self.resends

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def lost_events(self) -> int:
        return self.journal.lost

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["heap"]["samples"] = len(self.heap.samples)
        d.update(ok=self.ok, frames=self.frames, frames_per_s=round(self.frames_per_s, 1),
                 lost_events=self.lost_events, seconds=round(self.seconds, 2))
        return d


# ---------------------------------------------------------------- heap probes

class BoardHeap:
    """CPython board: bytes of every object reachable from the simulated board and from the
    firmware modules' globals, after a full collection (sys.getsizeof of each object once).
    The counterpart of MicroPython's gc.mem_alloc() for a board in this process: what the board
    holds on to, whoever allocated it (tracemalloc's allocation sites would not do: CPython's
    free lists hand blocks allocated by the board to the host's objects).
    Code and types are counted but not followed, so the host is never reached through them."""

    _LEAVES = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType,
               types.MethodType, types.CodeType)

    def __init__(self, sim: Any) -> None:
        self.sim = sim

    def __call__(self) -> int:
        gc.collect()
        roots: list[Any] = [self.sim]
        roots += [vars(mod) for name, mod in sorted(sys.modules.items())
                  if name == "blinpump.firmware" or name.startswith("blinpump.firmware.")]
        seen: set[int] = set()
        total = 0
        while roots:
            obj = roots.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            total += sys.getsizeof(obj)
            if not isinstance(obj, self._LEAVES):
                roots.extend(gc.get_referents(obj))
        return total


# ---------------------------------------------------------------- the run

class _Soak:
    def __init__(self, pump: Pump, line: FaultyLine, heap: Callable[[], int], result: SoakResult,
                 total_min: int, rng: random.Random, step_max_min: int, heap_every_min: int) -> None:
        self.pump, self.line, self.heap_probe, self.result = pump, line, heap, result
        self.total_min = total_min
        self.rng = rng
        self.step_max_min = step_max_min
        self.heap_every_min = heap_every_min
        names = scenarios.model_names(PATIENT)
        self.names = names
        self.cap_ng_per_day = names["cap_full"]                     # L2-dose-28, from model/
        self.order = bag_orders(self.cap_ng_per_day, rng)
        self.model = TherapyModel()
        self.plan = deque(plan_interruptions(total_min, rng))
        self.planned = len(self.plan)
        self.current: Interruption | None = None
        self.resume_at_min = 0
        self.replied: Counter[tuple[int, int]] = Counter()
        self.events: list[dict[str, int]] = []
        self.next_seq = 0
        self.security_events: list[dict[str, int]] = []   # refused requests (the security ring)
        self.next_auth_seq = 0
        self.stream: list[dict[str, int]] = []
        self.heap_samples: list[tuple[int, int]] = []
        self.next_heap_min = 0
        self.mismatches: list[str] = []
        self.refusals: list[str] = []

    # ---- commands
    def command(self, name: str, *args: int, expect: int = k.OK) -> int:
        """A therapy command; its (id, status) is counted once its reply is in."""
        st = int(getattr(self.pump, name)(*args))
        self.replied[(fw_pump.COMMAND_IDS[name], st)] += 1
        if st != expect:
            self.refusals.append("minute %d: %s%s answered %d, expected %d"
                                 % (self.model.ticks_min, name.upper(), list(args), st, expect))
        return st

    def fault(self, kind: str, value: int) -> None:
        st = int(self.pump.inject_fault(kind, value))
        if st != k.OK:
            self.refusals.append("minute %d: FAULT %s %d answered %d" % (self.model.ticks_min, kind, value, st))

    def hang_bag(self) -> None:
        bag = self.order(self.model.bags_loaded)
        if self.command("bag", *bag.args(PATIENT_ID, self.model.bags_loaded + 1)) == k.OK:
            self.model.load(bag)

    def restart(self) -> None:
        """Silence the alarms, acknowledge when the label asks for it, start (L2-reinit-4h, L2-premed)."""
        if self.model.bag is None:
            self.hang_bag()
        self.command("ack_alarm", 255)
        if self.model.acks_due():
            self.command("ack", k.ACK_PREMED)
            self.command("ack", k.ACK_SUPERVISION)
        if self.command("start") == k.OK:
            self.model.start()

    def begin(self, it: Interruption) -> None:
        self.result.interruptions[it.kind] = self.result.interruptions.get(it.kind, 0) + 1
        if it.kind == "line_alarm":
            self.fault("occlusion", 0)                  # the board's sensor stops the motor
            self.model.stop()
        elif it.kind == "power_cut":
            self.fault("power_cut", it.length_min)      # reboots; the client says HELLO again
            self.model.power_cut(it.length_min)
            self.result.power_cuts += 1
        else:
            self.command("stop", k.STOP_CLINICIAN)
            self.model.stop()
        self.current = it
        self.resume_at_min = self.model.ticks_min + (0 if it.kind == "power_cut" else it.length_min)

    def act(self) -> None:
        """What a nurse does at this minute: end an interruption, hang a new bag when one has
        ended or expired (L2.5-durations, L2.6-bag-*), begin the next interruption."""
        m = self.model
        if self.current is not None and m.ticks_min >= self.resume_at_min:
            self.current = None
            self.restart()
        if self.current is None and not m.running:
            self.restart()
        if self.current is None and self.plan and self.plan[0].at_min <= m.ticks_min and m.running:
            self.begin(self.plan.popleft())

    def next_action_min(self) -> int:
        if self.current is not None:
            return self.resume_at_min
        return self.plan[0].at_min if self.plan else self.total_min

    # ---- time and polling
    def step(self) -> None:
        m = self.model
        n = min(self.rng.randint(1, self.step_max_min), self.total_min - m.ticks_min,
                max(1, self.next_action_min() - m.ticks_min))
        now_min = self.pump.advance(n)
        m.advance(n)
        self.note_clock(now_min)
        self.poll()

    def note_clock(self, board_min: int) -> None:
        diff = self.model.now_min - board_min
        self.result.missed_ticks = max(self.result.missed_ticks, diff)
        self.result.extra_ticks = max(self.result.extra_ticks, -diff)

    def poll(self) -> None:
        s = self.pump.status()
        self.result.status_samples += 1
        self.note_clock(s["now_min"])
        self.result.max_day_ng = max(self.result.max_day_ng, s["day_ng"])
        problems = compare_status(self.model, s, self.cap_ng_per_day)
        if problems:
            self.result.status_mismatches += 1
            self.mismatches.extend(problems)
        if s["events"] - self.next_seq > EVENT_RING:
            self.mismatches.append("minute %d: %d events not yet read: the ring of %d has wrapped"
                                   % (self.model.ticks_min, s["events"] - self.next_seq, EVENT_RING))
        self.collect_events()
        if self.model.ticks_min >= self.next_heap_min:
            self.sample_heap()

    def collect_events(self) -> None:
        for ev in self.pump.events(self.next_seq):
            self.events.append(ev)
            self.next_seq = max(self.next_seq, ev["seq"] + 1)
        for ev in self.pump.events(self.next_auth_seq, security=True):
            self.security_events.append(ev)
            self.next_auth_seq = max(self.next_auth_seq, ev["seq"] + 1)

    def sample_heap(self) -> None:
        self.heap_samples.append((self.model.ticks_min, self.heap_probe()))
        self.next_heap_min = self.model.ticks_min + self.heap_every_min

    def run(self) -> None:
        while self.model.ticks_min < self.total_min:
            self.act()
            self.step()


def _open(runtime: str, transport: str) -> tuple[Any, SimBoard | None, Any]:
    """(port, SimBoard or None, the CPython board's firmware.simboard.Sim or None): an
    in-process BoardLink (CPython only) or the pty of a SimBoard."""
    if transport == "direct":
        if runtime != "cpython":
            raise ValueError("the direct transport runs the CPython board in this process only")
        link = BoardLink()
        return link, None, link.sim
    if transport != "pty":
        raise ValueError("transport must be auto, direct or pty")
    board = SimBoard(runtime)
    try:
        return open_serial(board.path), board, board.sim
    except Exception:
        board.close()
        raise


def run_soak(runtime: str = "micropython", sim_days: float = 7, seed: int = 1, fault_rate: float = 0.02, *,
             transport: str = "auto", step_max_min: int = 5, heap_every_min: int = 60,
             warm_up_min: int | None = None, heap_bound_bytes: int | None = None,
             timeout_s: float | None = None, retries: int = 50,
             fault_kinds: tuple[str, ...] = FAULT_KINDS) -> SoakResult:
    """Drive a simulated board through sim_days of therapy over a line that damages fault_rate
    of the frames each way, as fast as the link allows, and check it (module docstring).

    runtime: "micropython" (the .mpy firmware in WebAssembly under Node, behind a pty) or
    "cpython". transport: "pty" (hil.sim.SimBoard) or "direct" (hil.sim.BoardLink, CPython
    only); "auto" is direct for CPython, pty for MicroPython. step_max_min: ADVANCE steps are
    1..step_max_min minutes. warm_up_min: heap samples before it are not the baseline (default
    one simulated day, at most a quarter of the run). heap_bound_bytes: growth allowed after
    warm-up (HEAP_BOUND_BYTES: MicroPython's heap after a collection varies by ~128 bytes from
    sample to sample, the CPython board's by tens of bytes). timeout_s: the client's wait for a
    reply before it resends, so what a lost frame costs (default 10 ms direct, 20 ms over a pty).
    retries: resends before LinkError; (retries + 1) * timeout_s is how long the board may stall
    (about 1 s over a pty) before the run ends as a failure. fault_kinds: some of FAULT_KINDS.
    """
    if runtime not in RUNTIMES:
        raise ValueError("runtime must be one of %s" % ", ".join(RUNTIMES))
    total_min = round(sim_days * MIN_PER_DAY)
    if not 0 < total_min <= MAX_SIM_DAYS * MIN_PER_DAY:
        raise ValueError("sim_days must be in (0, %d]: the soak gives one cycle (L2-cycle-42)" % MAX_SIM_DAYS)
    if step_max_min < 1:
        raise ValueError("step_max_min must be at least 1")
    if transport == "auto":
        transport = "direct" if runtime == "cpython" else "pty"
    warm_up_min = min(MIN_PER_DAY, total_min // 4) if warm_up_min is None else warm_up_min
    heap_bound_bytes = HEAP_BOUND_BYTES if heap_bound_bytes is None else heap_bound_bytes
    timeout_s = (0.01 if transport == "direct" else 0.02) if timeout_s is None else timeout_s

    result = SoakResult(runtime, transport, seed, fault_rate, step_max_min=step_max_min)
    port, board, sim = _open(runtime, transport)
    line = FaultyLine(port, fault_rate, random.Random("soak-line-%d" % seed), fault_kinds)
    line.enabled = False
    soak: _Soak | None = None
    try:
        stream: list[dict[str, int]] = []
        pump = Pump(line, timeout_s=timeout_s, retries=retries, on_event=stream.append)
        stream.clear()
        pump.reset()                                    # a fresh pump, on a clean line
        heap: Callable[[], int] = BoardHeap(sim) if sim is not None else (lambda: pump.heap()[0])
        result.heap_probe = ("bytes reachable from the CPython board (sys.getsizeof)" if sim is not None
                             else "HEAP: gc.mem_alloc() after gc.collect() on the board")
        soak = _Soak(pump, line, heap, result, total_min, random.Random("soak-plan-%d" % seed),
                     step_max_min, heap_every_min)
        soak.stream = stream
        if soak.command("setup", PATIENT_ID, soak.names["indication"], soak.names["weight_g"],
                        soak.names["bsa_cm2"]) != k.OK:
            raise PumpError(k.E_STATE, "SETUP refused")
        line.enabled = True
        t0 = time.perf_counter()
        try:
            soak.run()
            soak.poll()
            soak.sample_heap()
        except (LinkError, BoardRebooted, PumpError) as exc:
            result.aborted = "%s at minute %d: %s" % (type(exc).__name__, soak.model.ticks_min, exc)
        result.seconds = time.perf_counter() - t0
        line.enabled = False
        if result.aborted:
            _try_final_read(soak)
        _finish(soak, pump, line, warm_up_min, heap_bound_bytes)
    finally:
        line.close()
        if board is not None:
            board.close()
    return result


def _try_final_read(soak: _Soak) -> None:
    """After an aborted run: read what the journal still holds, on a clean line."""
    try:
        soak.pump.hello()
        soak.collect_events()
        soak.poll()
    except (LinkError, BoardRebooted, PumpError):
        pass


def _finish(soak: _Soak, pump: Pump, line: FaultyLine, warm_up_min: int, heap_bound_bytes: int) -> None:
    r, m = soak.result, soak.model
    st = pump.stats
    r.requests, r.resends, r.naks = st["requests"], st["resends"], st["naks"]
    r.bad_frames, r.stale_replies = st["bad_frames"], st["stale_replies"]
    r.bytes_out, r.bytes_in = st["bytes_out"], st["bytes_in"]
    r.frames_to_board, r.frames_to_host = line.frames_to_board, line.frames_to_host
    r.line_faults = dict(sorted(line.faults.items()))
    r.sim_min, r.outage_min = m.ticks_min, m.outage_min
    r.expected_course_ng, r.max_window_ng, r.cap_ng_per_day = m.course_ng, m.max_window_ng, soak.cap_ng_per_day
    r.bags_loaded, r.bags_ended, r.bags_expired = m.bags_loaded, m.bags_ended, m.bags_expired
    failures = r.failures
    if r.aborted:
        failures.append("aborted: " + r.aborted)
    try:
        final = pump.status()
        r.course_ng = final["course_ng"]
        next_seq = final["events"]
    except (LinkError, BoardRebooted, PumpError) as exc:
        failures.append("final STATUS failed: %s" % exc)
        next_seq = soak.next_seq
    r.heap, heap_failures = check_heap(soak.heap_samples, warm_up_min, heap_bound_bytes)
    failures.extend(heap_failures)
    if r.missed_ticks or r.extra_ticks:
        failures.append("ticks: the board's clock was up to %d minutes behind and %d ahead of the host's"
                        % (r.missed_ticks, r.extra_ticks))
    if soak.mismatches:
        failures.append("status: %d of %d samples disagree with the host's account; first: %s"
                        % (r.status_mismatches, r.status_samples, "; ".join(soak.mismatches[:MAX_REPORTED])))
    if r.max_window_ng > r.cap_ng_per_day:
        failures.append("dose: %d ng in 24 h of ticks, above the cap %d (L2-dose-28)"
                        % (r.max_window_ng, r.cap_ng_per_day))
    if soak.refusals:
        failures.append("commands refused: %s" % "; ".join(soak.refusals[:MAX_REPORTED]))
    r.journal, journal_failures = check_journal(soak.events, next_seq)
    failures.extend(journal_failures)
    failures.extend(check_commands(soak.events, soak.replied))
    failures.extend(check_boots(soak.events, r.power_cuts, soak.security_events))
    r.stream_events = len(soak.stream)
    r.stream_missed, r.stream_mismatches, stream_failures = check_stream(soak.stream, soak.events,
                                                                         soak.security_events)
    failures.extend(stream_failures)
    r.commands_replied = sum(soak.replied.values())
    r.commands_journaled = sum(1 for ev in soak.events if ev["code"] == journal.EV_COMMAND)
    r.boots = sum(1 for ev in soak.events if ev["code"] == journal.EV_BOOT)
    done = sum(r.interruptions.values())
    if not r.aborted and done != soak.planned:
        failures.append("interruptions: %d of %d planned were given" % (done, soak.planned))
