"""Power-cut harness: power lost at every byte of every record write of a whole therapy.

DESIGN.md, fail-safe rules: "The delivered-dose record survives power loss at any instant: it
can be old or new after a reboot, never lost, never corrupt, never lower than what was
delivered", and the motor never restarts by itself. This harness checks that claim against the
firmware as it is (firmware/pump.py over firmware/journal.py over firmware/simhal.MemStorage),
on CPython, without running the therapy once per cut.

Method
1. Record (once). The scenario (`scenario()`: set-up, bag, start, hours of running, a power
   blip, an interruption of 4 h or more and its re-initiation, a bag change, grade 3 CRS
   withheld then restarted at 9 mcg/day, line alarms enough to wrap the event ring, grade 4 CRS
   lock-out) runs on one Controller whose storage is a recorder. For every storage write the
   recorder keeps the device image before it, its offset and bytes, and the reference facts of
   that instant: the newest complete state record (old), the record being written (new), the
   events on the device, and what the motor has been told to deliver. The motor is a probe:
   each time it is set running it notes the totals of the kernel state it is about to run,
   which under write-ahead are the totals of the last complete record.
2. Replay each cut. For a write and a byte count k (every k in 0..n, or a seeded sample), a
   copy of the "before" device gets the same write with MemStorage's own power-cut injection
   (`cut_after = k`), so a storage subclass cuts where its own bytes really go. A new
   Controller boots over that image (outage 0, or -1 "unknown" for every `unknown_every`-th
   cut) and the checks below judge it. Nothing re-runs the scenario.
3. Corrupt records. Before every write that has a record on the device, a byte of each state
   slot is flipped; the boot must refuse the record and leave every byte of it alone.
4. Continue. For a sample of cuts the rebooted pump is driven on: acknowledgements, a new bag
   where the label allows one, start, minutes of therapy, and the record must follow.

Checks, and the clauses they enforce (IDs of LABEL.md; "DESIGN" is the fail-safe rule above)
- record_old_or_new (DESIGN): the restored record equals the old or the new one, a completed
  write is never lost, a record on the device is never lost (LOAD_OK). A torn first-ever
  write, with no record before it, may boot as blank or as LOAD_CORRUPT (stopped, alarm).
- delivered_not_lost (DESIGN, L2-dose-28, L2-cycle-42): after the reboot course_ng and
  course_ul, and within the same cycle, bag and 24 h window cycle_ng, bag_ng, bag_ul and
  day_ng, are >= what the motor was told to deliver, and equal the restored record's (a lower
  day_ng would let the 28 mcg/day cap of L2-dose-28 admit more drug in the same window).
- interruption_kept (L2-reinit-4h, L2.4-resume-7d, L2.4-new-cycle): int_start_min and
  int_reason are kept; a running record becomes an interruption starting at its own minute
  with reason STOP_POWER and AL_POWER; a pending re-initiation stays pending; the clock moves
  by the known outage only.
- unknown_outage (L2-reinit-4h, L2.6-bag-24-48, L2.6-bag-72-96, L2.6-bag-7d): after an outage
  of unknown length an open interruption needs re-initiation (premedication, supervision) and
  a loaded bag, whose room-temperature time is now unknown, is discarded.
- lockout_kept (L2.4-crs-4, L2.4-seizure, L2.4-neuro-3, L2.4-neuro-4, L2.4-other-3): locked,
  lock_reason and AL_LOCKED are kept; a start is refused with E_LOCKED.
- reaction_kept (L2.4-restart-9, L2.4-neuro-3, L2.4-other-3, L2.4-other-4, EXT-overdose-12h):
  the withheld reaction, its start, the restart window at 9 mcg/day (low_left_min), the cap in
  force, seizures, a pending decision and the overdose time are kept.
- motor_stopped (DESIGN: no restart by itself; EXT-pump): after every reboot the motor is at 0
  and the kernel is not running.
- events_consistent (DESIGN: keep the record): the log reads back, seqs strictly increase, at
  most the one ring record being written fails its CRC, every complete event is still there
  unless a newer one took its ring slot (older than EVENT_SLOTS), the boot event gets a seq
  never used before.
- corrupt_never_trusted (DESIGN: on a corrupt journal stop the motor, raise an alarm, keep the
  record): LOAD_CORRUPT, no patient, fault and AL_FAULT, motor at 0, start refused (E_FAULT),
  and the device bytes unchanged after the boot, ticks and the refused start.
- therapy_continues (L2-reinit-4h, L2.4-restart-9, L2.4-crs-4): minutes after the reboot the
  motor is still at 0; then the label's way back (acknowledgements, a bag within the cap in
  force, start) works, the pump delivers, and the device's record holds the new totals; a
  locked pump refuses (E_LOCKED) instead.

Scope note: the reference is the kernel's minute model (a tick books a minute, the record is
written, then the motor runs it); the physical time between a start command and the first tick
is not modelled here.
"""
from __future__ import annotations

import copy
import random
import struct
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

from blinpump.firmware import journal, kernel, pump, simhal

PATIENT_ID = 4242
WEIGHT_G = 70000                    # >= 45 kg: fixed dose (L2-weight-45), caps 28000 / 9000 ng/day
BAG_VOLUME_UL = 240000
EVENT_FORMAT = "<IihHii"            # firmware/journal.py: seq, time_min, code, pad, a, b
MAX_DETAILS = 50                    # failure details kept; counts are always complete

# check names (keys of Result.failures_by_check)
RECORD = "record_old_or_new"
DELIVERED = "delivered_not_lost"
INTERRUPTION = "interruption_kept"
UNKNOWN_OUTAGE = "unknown_outage"
LOCKOUT = "lockout_kept"
REACTION = "reaction_kept"
MOTOR = "motor_stopped"
EVENTS = "events_consistent"
CORRUPT = "corrupt_never_trusted"
CONTINUES = "therapy_continues"

REACTION_FIELDS = ("rx_crs", "rx_icans", "rx_icans_onset_min", "rx_icans_g3_min", "rx_neuro",
                   "rx_neuro_onset_min", "rx_neuro_g3_min", "rx_seizure", "rx_seizure_onset_min",
                   "rx_seizure_g3_min", "rx_other", "rx_other_onset_min", "seizures",
                   "decision_pending", "low_left_min", "overdose_min", "cap_ng_per_day")

Record = dict[str, int]
Event = tuple[int, int, int, int, int]          # (seq, time_min, code, a, b) as Journal.events()


class Storage(Protocol):
    def size(self) -> int: ...
    def read(self, off: int, n: int) -> bytes: ...
    def write(self, off: int, data: bytes | bytearray) -> bool: ...


ControllerFactory = Callable[[Storage, simhal.SimClock, simhal.SimMotor], pump.Controller]
StorageFactory = Callable[[int], simhal.MemStorage]


# ---------------------------------------------------------------------------- scenario

@dataclass(frozen=True)
class Step:
    kind: str                       # "boot" | "command" | "run" | "line_alarm"
    label: str
    cid: int = 0
    args: tuple[int, ...] = ()
    expect: int = kernel.OK         # command status, or the boot's LOAD_* result
    minutes: int = 0
    outage_min: int = -1


def _cmd(label: str, cid: int, *args: int, expect: int = kernel.OK) -> Step:
    return Step("command", label, cid=cid, args=args, expect=expect)


def _run(minutes: int, label: str) -> Step:
    return Step("run", "%s (%d min)" % (label, minutes), minutes=minutes)


def _bag(bag_id: int, drug_ng: int, hours: int) -> tuple[int, ...]:
    """A 24 h or 48 h bag at the table rate that holds what it infuses (EXT-rates)."""
    rate = kernel.RATE_24H_UL_PER_H if hours == 24 else kernel.RATE_48H_UL_PER_H
    return (PATIENT_ID, bag_id, drug_ng, BAG_VOLUME_UL, rate, hours, 0, 0, 0)


def scenario(run_min: int = 180, occlusions: int = 40) -> tuple[Step, ...]:
    """MRD+ adult, 70 kg. `run_min` sets the running stretches (the interruption stays >= 4 h,
    L2-reinit-4h); `occlusions` line alarms make the log wrap its ring of EVENT_SLOTS."""
    k = kernel
    steps = [
        Step("boot", "first boot of a blank pump (outage unknown)", expect=journal.LOAD_FRESH),
        _cmd("patient set-up, MRD+, 70 kg", pump.CMD_SETUP, PATIENT_ID, k.IND_MRD, WEIGHT_G, 0, 0),
        _cmd("48 h bag at 28 mcg/day (L2-dose-28)", pump.CMD_BAG, *_bag(1, 56000, 48)),
        _cmd("premedication given (L2-premed)", pump.CMD_ACK, k.ACK_PREMED),
        _cmd("supervision in place (L2-hosp)", pump.CMD_ACK, k.ACK_SUPERVISION),
        _cmd("start", pump.CMD_START),
        _run(run_min, "running"),
        Step("boot", "power blip, known 2 min outage: stopped, AL_POWER", expect=journal.LOAD_OK,
             outage_min=2),
        _cmd("silence alarms", pump.CMD_ACK_ALARM, 255),
        _cmd("restart after a short outage", pump.CMD_START),
        _run(max(run_min // 6, 1), "running"),
        _cmd("clinician stops: interruption begins", pump.CMD_STOP, k.STOP_CLINICIAN),
        _run(k.REINIT_MIN + 5, "interruption of 4 h or more (L2-reinit-4h)"),
        _cmd("start refused until re-initiated (L2-reinit-4h)", pump.CMD_START, expect=k.E_REINIT),
        _cmd("premedication given again (L2-premed)", pump.CMD_ACK, k.ACK_PREMED),
        _cmd("supervision again (L2-reinit-4h)", pump.CMD_ACK, k.ACK_SUPERVISION),
        _cmd("re-initiation: start", pump.CMD_START),
        _run(max(run_min // 3, 1), "running"),
        _cmd("stop for a bag change", pump.CMD_STOP, k.STOP_BAG_CHANGE),
        _cmd("remove the bag", pump.CMD_REMOVE_BAG),
        _cmd("24 h bag at 28 mcg/day", pump.CMD_BAG, *_bag(2, 28000, 24)),
        _cmd("start the new bag", pump.CMD_START),
        _run(max(run_min // 3, 1), "running"),
        _cmd("grade 3 CRS: withhold (L2.4-restart-9)", pump.CMD_REACTION, k.RX_CRS, 3, k.SCALE_CTCAE),
        _run(30, "withheld"),
        _cmd("start refused while withheld", pump.CMD_START, expect=k.E_WITHHOLD),
        _cmd("CRS resolved: restart window at 9 mcg/day", pump.CMD_RESOLVED, k.RX_CRS),
        _cmd("28 mcg/day bag refused at restart (L2.4-restart-9)", pump.CMD_START,
             expect=k.E_DOSE_CAP),
        _cmd("remove the 28 mcg/day bag", pump.CMD_REMOVE_BAG),
        _cmd("24 h bag at 9 mcg/day", pump.CMD_BAG, *_bag(3, 9000, 24)),
        _cmd("restart at 9 mcg/day (L2.4-restart-9)", pump.CMD_START),
        _run(max(run_min // 3, 1), "running at 9 mcg/day"),
    ]
    for _ in range(occlusions):
        steps += [
            _run(2, "running"),
            Step("line_alarm", "occlusion alarm: stopped"),
            _cmd("silence alarms", pump.CMD_ACK_ALARM, 255),
            _cmd("restart after the occlusion", pump.CMD_START),
        ]
    steps += [
        _run(5, "running"),
        _cmd("grade 4 CRS: permanent discontinuation (L2.4-crs-4)", pump.CMD_REACTION, k.RX_CRS, 4, k.SCALE_CTCAE),
        _run(10, "locked out"),
        _cmd("start refused (L2.4-crs-4)", pump.CMD_START, expect=k.E_LOCKED),
        _cmd("silence alarms: AL_LOCKED stays", pump.CMD_ACK_ALARM, 255),
        _run(5, "locked out"),
    ]
    return tuple(steps)


def describe(steps: tuple[Step, ...]) -> list[str]:
    """The scenario for a report, with repeated runs of up to 4 steps folded ("36x [...]")."""
    labels = [step.label for step in steps]
    out: list[str] = []
    i = 0
    while i < len(labels):
        for size in (4, 3, 2, 1):
            block = labels[i:i + size]
            reps = 1
            while labels[i + reps * size:i + (reps + 1) * size] == block:
                reps += 1
            if reps > 1:
                out.append("%dx [%s]" % (reps, "; ".join(block)))
                i += reps * size
                break
        else:
            out.append(labels[i])
            i += 1
    return out


class ScenarioError(RuntimeError):
    """The scenario itself did not do what it says (not a power-cut finding)."""


# ---------------------------------------------------------------------------- recording

@dataclass
class Write:
    """One storage write of the scenario and the facts a cut inside it is judged by."""
    index: int
    offset: int
    data: bytes
    before: bytes                       # the device image before the write
    step: str                           # scenario step in progress
    old_record: Record | None           # newest complete state record, None on a blank device
    new_record: Record | None           # the state being written (slot writes only)
    delivered: Record | None            # totals the motor was last told to run
    ring: dict[int, Event]              # complete events on the device, by ring slot
    event: Event | None = None          # the event being written (ring writes only)
    physical_bytes: int = 0             # bytes the storage really wrote for it

    @property
    def is_slot(self) -> bool:
        return self.offset < journal.RING_OFFSET

    @property
    def ring_slot(self) -> int:
        return (self.offset - journal.RING_OFFSET) // journal.EVENT_BYTES


def _totals(s: kernel.State) -> Record:
    """What the motor is about to run, with the scope of each counter (cycle, bag, window)."""
    return {
        "course_ng": s.course_ng, "course_ul": s.course_ul, "cycle": s.cycle,
        "cycle_ng": s.cycle_ng, "bag_seq": s.bag_seq, "bag_loaded": s.bag_loaded,
        "bag_ng": s.bag_ng, "bag_ul": s.bag_ul, "day_start_min": s.now_min - s.day_min,
        "day_ng": s.day_ng,
    }


def _decode_event(data: bytes) -> Event:
    seq, time_min, code, _pad, a, b = struct.unpack_from(EVENT_FORMAT, data, 0)
    return (seq, time_min, code, a, b)


class Recorder:
    """The storage the scenario's controller writes through: passes each write to the device
    and keeps a Write for it."""

    def __init__(self, device: simhal.MemStorage) -> None:
        self.device = device
        self.controller: pump.Controller | None = None
        self.writes: list[Write] = []
        self.record: Record | None = None
        self.delivered: Record | None = None
        self.ring: dict[int, Event] = {}
        self.step = ""

    def size(self) -> int:
        return int(self.device.size())

    def read(self, off: int, n: int) -> bytes:
        return bytes(self.device.read(off, n))

    def write(self, off: int, data: bytes | bytearray) -> bool:
        assert self.controller is not None
        w = Write(len(self.writes), off, bytes(data), bytes(self.device.data), self.step,
                  self.record, None, self.delivered, dict(self.ring))
        if w.is_slot:
            w.new_record = dict(vars(self.controller.s))
        else:
            w.event = _decode_event(w.data)
        written = self.device.bytes_written
        ok = bool(self.device.write(off, data))
        w.physical_bytes = self.device.bytes_written - written
        self.writes.append(w)
        if ok and w.new_record is not None:
            self.record = w.new_record
        elif ok and w.event is not None:
            self.ring[w.ring_slot] = w.event
        return ok

    def motor_runs(self) -> None:
        """The motor is about to run the minute the kernel booked: note its totals."""
        assert self.controller is not None
        self.delivered = _totals(self.controller.s)


class MotorProbe(simhal.SimMotor):
    def __init__(self, recorder: Recorder) -> None:
        super().__init__()
        self.recorder = recorder

    def set_rate(self, ul_per_h: int) -> bool:
        if ul_per_h > 0:
            self.recorder.motor_runs()
        return bool(super().set_rate(ul_per_h))


def record(steps: tuple[Step, ...], make_storage: StorageFactory,
           make_controller: ControllerFactory) -> list[Write]:
    """Run the scenario once; every storage write comes back with its facts."""
    rec = Recorder(make_storage(journal.TOTAL_BYTES))
    clock = simhal.SimClock()
    c: pump.Controller | None = None
    for step in steps:
        rec.step = step.label
        if step.kind == "boot":
            c = make_controller(rec, clock, MotorProbe(rec))
            rec.controller = c
            got = c.boot(step.outage_min)
        elif c is None:
            raise ScenarioError("the scenario must boot first")
        elif step.kind == "command":
            got = c.command(step.cid, list(step.args))
        elif step.kind == "run":
            for _ in range(step.minutes):
                c.tick()
            continue
        elif step.kind == "line_alarm":
            c.sensor_alarm(kernel.AL_LINE)
            continue
        else:
            raise ScenarioError("unknown step kind %r" % step.kind)
        if got != step.expect:
            raise ScenarioError("%s: got %d, expected %d" % (step.label, got, step.expect))
    return rec.writes


# ---------------------------------------------------------------------------- results

@dataclass
class Failure:
    check: str
    write_index: int
    cut_bytes: int                  # -1: a corrupt-record check, not a cut
    outage_min: int
    step: str
    detail: str


@dataclass
class Result:
    power_cuts_tried: int = 0
    power_cuts_lost_data: int = 0   # cuts where any check failed
    writes: int = 0
    slot_writes: int = 0
    event_writes: int = 0
    unknown_outage_boots: int = 0
    continued: int = 0              # cuts after which therapy was driven on
    corrupt_checks_tried: int = 0
    corrupt_checks_failed: int = 0
    failures_by_check: dict[str, int] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)      # the first MAX_DETAILS
    scenario: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.power_cuts_lost_data == 0 and self.corrupt_checks_failed == 0

    def add(self, failure: Failure) -> None:
        self.failures_by_check[failure.check] = self.failures_by_check.get(failure.check, 0) + 1
        if len(self.failures) < MAX_DETAILS:
            self.failures.append(failure)

    def summary(self) -> str:
        lines = ["power cuts tried %d, lost data %d; writes %d (%d state, %d event); "
                 "corrupt-record checks %d, failed %d; continued %d; %.1f s"
                 % (self.power_cuts_tried, self.power_cuts_lost_data, self.writes,
                    self.slot_writes, self.event_writes, self.corrupt_checks_tried,
                    self.corrupt_checks_failed, self.continued, self.seconds)]
        for name in sorted(self.failures_by_check):
            lines.append("  %s: %d" % (name, self.failures_by_check[name]))
        for f in self.failures[:10]:
            lines.append("  write %d (%s) cut %d outage %d: %s: %s"
                         % (f.write_index, f.step, f.cut_bytes, f.outage_min, f.check, f.detail))
        return "\n".join(lines)


# ---------------------------------------------------------------------------- one cut

@dataclass
class Cut:
    """A reboot after power was lost `cut_bytes` into a write."""
    write: Write
    cut_bytes: int
    outage_min: int
    load_result: int
    loaded: Record | None           # what the journal restored, before power_up
    expected: Record | None         # the record the reboot is judged against
    events_lost: int
    controller: pump.Controller

    @property
    def complete(self) -> bool:
        return self.cut_bytes >= self.write.physical_bytes

    @property
    def torn_event(self) -> bool:
        return not self.write.is_slot and 0 < self.cut_bytes < self.write.physical_bytes

    @property
    def post(self) -> Record:
        return vars(self.controller.s)


def _device(proto: simhal.MemStorage, image: bytes) -> simhal.MemStorage:
    """A device of the same kind as `proto` holding `image` (no byte-by-byte fill)."""
    dev = copy.copy(proto)
    dev.data = bytearray(image)
    dev.cut_after = -1
    return dev


def cut_image(proto: simhal.MemStorage, w: Write, cut_bytes: int) -> simhal.MemStorage:
    """The device after power was lost `cut_bytes` bytes into write `w`: the storage's own
    injection, so a subclass cuts where its bytes really go."""
    dev = _device(proto, w.before)
    dev.cut_after = cut_bytes
    try:
        dev.write(w.offset, w.data)
    except simhal.PowerCut:
        pass
    dev.cut_after = -1
    return dev


def _diff(got: Record, want: Record) -> str:
    """The fields where `got` differs from `want` (the first six)."""
    names = [n for n in sorted(want) if got.get(n) != want[n]]
    more = " (+%d more)" % (len(names) - 6) if len(names) > 6 else ""
    return ", ".join("%s %s != %s" % (n, got.get(n), want[n]) for n in names[:6]) + more


def reboot(proto: simhal.MemStorage, w: Write, cut_bytes: int, outage_min: int,
           make_controller: ControllerFactory) -> Cut:
    """Lose power `cut_bytes` into write `w`, then boot a new Controller on what is left."""
    dev = cut_image(proto, w, cut_bytes)
    c = make_controller(dev, simhal.SimClock(), simhal.SimMotor())
    state = kernel.State()
    load_result = type(c.journal)(dev).load(state)       # loading only reads the device
    loaded = dict(vars(state)) if load_result == journal.LOAD_OK else None
    c.boot(outage_min)
    cut = Cut(w, cut_bytes, outage_min, load_result, loaded, None, c.journal.events_lost, c)
    if loaded is not None and loaded in (w.old_record, w.new_record):
        cut.expected = loaded
    elif cut.complete and w.new_record is not None:
        cut.expected = w.new_record     # judge the rest against what should have been restored
    else:
        cut.expected = w.old_record
    return cut


# ---------------------------------------------------------------------------- the checks

def check_record(cut: Cut) -> str | None:
    """DESIGN: old or new after a reboot, never lost, never corrupt."""
    w = cut.write
    candidates = [r for r in (w.old_record, w.new_record) if r is not None]
    if w.old_record is None and not cut.complete:
        if cut.load_result == journal.LOAD_OK and cut.loaded not in candidates:
            return "a torn first record was trusted"
        return None                 # blank, or LOAD_CORRUPT: stopped with an alarm (checked below)
    if cut.load_result != journal.LOAD_OK or cut.loaded is None:
        return "record lost: load result %d" % cut.load_result
    if cut.loaded not in candidates:
        nearest = min(candidates, key=lambda r: len(_diff(cut.loaded or {}, r)))
        return "restored record is neither old nor new: " + _diff(cut.loaded, nearest)
    if cut.complete and w.new_record is not None and cut.loaded != w.new_record:
        return "a completed write was lost: " + _diff(cut.loaded, w.new_record)
    return None


def check_delivered(cut: Cut) -> str | None:
    """DESIGN, L2-dose-28, L2-cycle-42: never lower than delivered, unchanged by the boot."""
    ref = cut.write.delivered
    if ref is None:
        return None                 # the motor has not run yet
    post = cut.post
    low = [n for n in ("course_ng", "course_ul") if post[n] < ref[n]]
    if post["cycle"] == ref["cycle"] and post["cycle_ng"] < ref["cycle_ng"]:
        low.append("cycle_ng")
    if post["bag_loaded"] and post["bag_seq"] == ref["bag_seq"]:
        low += [n for n in ("bag_ng", "bag_ul") if post[n] < ref[n]]
    if post["now_min"] - post["day_min"] == ref["day_start_min"] and post["day_ng"] < ref["day_ng"]:
        low.append("day_ng")
    if low:
        return "lower than delivered: " + ", ".join(
            "%s %d < %d" % (n, post[n], ref[n]) for n in low)
    want = cut.expected
    if want is None:
        return None
    kept = ["course_ng", "course_ul", "cycle_ng", "day_ng"]
    if post["bag_loaded"]:
        kept += ["bag_ng", "bag_ul"]
    changed = [n for n in kept if post[n] != want[n]]
    if changed:
        return "boot changed totals: " + _diff(post, {n: want[n] for n in changed})
    return None


def check_interruption(cut: Cut) -> str | None:
    """L2-reinit-4h, L2.4-resume-7d, L2.4-new-cycle: the interruption keeps its start."""
    want, post = cut.expected, cut.post
    if want is None:
        return None
    if want["mode"] == kernel.MODE_RUNNING:
        if (post["int_start_min"] != want["now_min"] or post["int_reason"] != kernel.STOP_POWER
                or not post["alarm"] & kernel.AL_POWER):
            return "power loss while running not recorded as an interruption at minute %d: %s" % (
                want["now_min"], _diff(post, {"int_start_min": want["now_min"],
                                              "int_reason": kernel.STOP_POWER}))
    elif want["int_start_min"] >= 0:
        if post["int_start_min"] != want["int_start_min"] or post["int_reason"] != want["int_reason"]:
            return "interruption start lost: " + _diff(post, {
                "int_start_min": want["int_start_min"], "int_reason": want["int_reason"]})
    if want["reinit_needed"] and not post["reinit_needed"]:
        return "pending re-initiation forgotten"
    if cut.outage_min >= 0 and post["now_min"] != want["now_min"] + cut.outage_min:
        return "clock moved by %d min, outage %d" % (post["now_min"] - want["now_min"], cut.outage_min)
    return None


def check_unknown_outage(cut: Cut) -> str | None:
    """L2-reinit-4h, L2.6-bag-*: an outage of unknown length counts as 4 h or more."""
    want, post = cut.expected, cut.post
    if want is None or cut.outage_min >= 0:
        return None
    if post["int_start_min"] >= 0 and not (
            post["reinit_needed"] and post["need_premed"] and post["need_supervision"]):
        return "unknown outage did not require re-initiation"
    if want["bag_loaded"] and (post["bag_loaded"] or not post["alarm"] & kernel.AL_BAG_EXPIRED):
        return "bag kept although its room-temperature time is unknown"
    return None


def check_lockout(cut: Cut) -> str | None:
    """L2.4-crs-4 and the other permanent discontinuations survive the reboot."""
    want, post = cut.expected, cut.post
    if want is None:
        return None
    if post["locked"] != want["locked"] or post["lock_reason"] != want["lock_reason"]:
        return "lock-out changed: " + _diff(post, {"locked": want["locked"],
                                                   "lock_reason": want["lock_reason"]})
    if want["locked"] and not post["alarm"] & kernel.AL_LOCKED:
        return "AL_LOCKED dropped"
    # the journal never says more than the state: an EV_LOCK on the device means a locked state
    logged = [ev for ev in cut.controller.journal.events() if ev[2] == journal.EV_LOCK]
    if logged and not post["locked"]:
        return "the journal says locked (EV_LOCK seq %d) and the state does not" % logged[-1][0]
    return None


def check_reaction(cut: Cut) -> str | None:
    """L2.4-restart-9, L2.4-neuro-3, L2.4-other-3/4, EXT-overdose-12h: Table 4 state kept."""
    want, post = cut.expected, cut.post
    if want is None:
        return None
    changed = {n: want[n] for n in REACTION_FIELDS if post[n] != want[n]}
    return "reaction state changed: " + _diff(post, changed) if changed else None


def check_motor(cut: Cut) -> str | None:
    """DESIGN: the motor never restarts by itself."""
    c = cut.controller
    if c.motor.ul_per_h != 0 or c.s.mode == kernel.MODE_RUNNING or c.s.motor_ul_per_h != 0:
        return "motor at %d uL/h after the reboot, mode %d" % (c.motor.ul_per_h, c.s.mode)
    if cut.load_result == journal.LOAD_CORRUPT and not c.s.fault:
        return "corrupt record without a fault"
    return None


def check_events(cut: Cut) -> str | None:
    """The log reads back, in order, with only the record being written allowed to fail."""
    c, w = cut.controller, cut.write
    try:
        evs = c.journal.events()
    except Exception as exc:        # any failure to read the log is a finding, not a crash
        return "log unreadable: %r" % exc
    seqs = [e[0] for e in evs]
    if any(b <= a for a, b in zip(seqs, seqs[1:])):
        return "seqs not strictly increasing"
    allowed = 1 if cut.torn_event else 0
    if cut.events_lost > allowed:
        return "%d records fail their CRC, %d allowed" % (cut.events_lost, allowed)
    newest = seqs[-1] if seqs else -1
    present = set(evs)
    expected = dict(w.ring)
    if cut.torn_event and w.event is not None and w.event in present:
        # cut after the last byte that differed from what the slot held: the record is whole
        # on the device (its CRC checks), so it is logged, and the next seq follows it
        expected[w.ring_slot] = w.event
    elif cut.torn_event:
        del_slot = w.ring_slot
        expected.pop(del_slot, None)      # overwritten by the torn record: older than the ring
    elif w.event is not None and cut.complete:
        expected[w.ring_slot] = w.event
    for ev in expected.values():
        if ev not in present and ev[0] > newest - journal.EVENT_SLOTS:
            return "event %d lost" % ev[0]
    if c.persist:
        # the boot is logged first, then what the power-up caused, each with a new seq
        used = max((ev[0] for ev in expected.values()), default=-1)
        new = [ev for ev in evs if ev[0] > used]
        if not new or new[0][2] != journal.EV_BOOT or new[0][0] != used + 1:
            return "boot event missing, not first, or reusing a seq (after %d: %s)" % (used, new[:3])
    return None


CHECKS: tuple[tuple[str, Callable[[Cut], str | None]], ...] = (
    (RECORD, check_record),
    (DELIVERED, check_delivered),
    (INTERRUPTION, check_interruption),
    (UNKNOWN_OUTAGE, check_unknown_outage),
    (LOCKOUT, check_lockout),
    (REACTION, check_reaction),
    (MOTOR, check_motor),
    (EVENTS, check_events),
)


# ---------------------------------------------------------------------------- going on

def _expect(c: pump.Controller, cid: int, args: list[int], want: int) -> str | None:
    got = c.command(cid, args)
    if got != want:
        return "%s: status %d, expected %d" % (pump.COMMANDS[cid][0], got, want)
    return None


def _way_back(c: pump.Controller) -> list[tuple[int, list[int], int]]:
    """The commands that take a stopped pump back to infusing, as the label allows."""
    s, k = c.s, kernel
    todo: list[tuple[int, list[int], int]] = []
    if s.fault:
        todo.append((pump.CMD_CLEAR_FAULT, [], k.OK))
    if s.mode == k.MODE_NO_PATIENT:
        todo.append((pump.CMD_SETUP, [PATIENT_ID, k.IND_MRD, WEIGHT_G, 0, 0], k.OK))
    if s.rx_crs != 0:
        todo += [(pump.CMD_START, [], k.E_WITHHOLD), (pump.CMD_RESOLVED, [k.RX_CRS], k.OK)]
    if s.cycle_ask == 1:                # an outage of unknown length: the clinician goes on (L2.4-new-cycle)
        todo.append((pump.CMD_CYCLE_DECISION, [0], k.OK))
    todo.append((pump.CMD_ACK_ALARM, [255], k.OK))
    return todo


def continue_therapy(c: pump.Controller, minutes: int = 5) -> str | None:
    """After the reboot: still stopped minutes later; then start the label's way and deliver."""
    k = kernel
    for _ in range(3):
        c.tick()
    if c.motor.ul_per_h or c.s.mode == k.MODE_RUNNING:
        return "motor restarted by itself"
    if c.s.locked:                  # L2.4-crs-4: nothing restarts it
        return _expect(c, pump.CMD_START, [], k.E_LOCKED)
    for cid, args, want in _way_back(c):
        problem = _expect(c, cid, args, want)
        if problem:
            return problem
    s = c.s
    if s.bag_loaded and s.bag_ng_per_day > s.cap_ng_per_day:    # L2.4-restart-9: 9 mcg/day bag
        problem = _expect(c, pump.CMD_REMOVE_BAG, [], k.OK)
        if problem:
            return problem
    if not s.bag_loaded:
        problem = _expect(c, pump.CMD_BAG, list(_bag(s.last_bag_id + 1, s.cap_ng_per_day, 24)), k.OK)
        if problem:
            return problem
    for cid, args, want in ((pump.CMD_ACK, [k.ACK_PREMED], k.OK),
                            (pump.CMD_ACK, [k.ACK_SUPERVISION], k.OK),
                            (pump.CMD_START, [], k.OK)):
        problem = _expect(c, cid, args, want)
        if problem:
            return problem
    course_ng = s.course_ng
    for _ in range(minutes):
        c.tick()
    s = c.s
    if s.mode != k.MODE_RUNNING or c.motor.ul_per_h != s.bag_ul_per_h or s.course_ng <= course_ng:
        return "not infusing after the restart: mode %d, course_ng %d -> %d" % (
            s.mode, course_ng, s.course_ng)
    stored = kernel.State()
    type(c.journal)(c.journal.storage).load(stored)
    if stored.course_ng != s.course_ng:
        return "record not following therapy: %d on the device, %d delivered" % (
            stored.course_ng, s.course_ng)
    return None


# ---------------------------------------------------------------------------- corrupt record

def check_corrupt(proto: simhal.MemStorage, w: Write, rng: random.Random,
                  make_controller: ControllerFactory) -> str | None:
    """DESIGN: a record that fails its CRC is never trusted and never overwritten."""
    image = bytearray(w.before)
    for slot in (0, 1):             # one flipped bit in each state slot: bit rot
        pos = slot * journal.SLOT_BYTES + rng.randrange(journal.RECORD_BYTES)
        image[pos] ^= 1 << rng.randrange(8)
    dev = _device(proto, bytes(image))
    c = make_controller(dev, simhal.SimClock(), simhal.SimMotor())
    got = c.boot(0)
    s = c.s
    if got != journal.LOAD_CORRUPT:
        return "corrupt record loaded (result %d)" % got
    if s.mode != kernel.MODE_NO_PATIENT or not s.fault or not s.alarm & kernel.AL_FAULT:
        return "corrupt record: mode %d fault %d alarm %d" % (s.mode, s.fault, s.alarm)
    for _ in range(3):
        c.tick()
    if c.command(pump.CMD_START, []) != kernel.E_FAULT or c.motor.ul_per_h:
        return "started on a corrupt record"
    if bytes(dev.data) != bytes(image):
        return "corrupt record overwritten"
    return None


# ---------------------------------------------------------------------------- driver

def cut_offsets(n: int, sample_every: int, rng: random.Random) -> list[int]:
    """0..n, or every `sample_every`-th byte from a seeded phase plus both ends."""
    if sample_every <= 1:
        return list(range(n + 1))
    phase = rng.randrange(sample_every)
    return sorted(set(range(phase, n + 1, sample_every)) | {0, n})


def _judge(cut: Cut, result: Result) -> bool:
    failed = False
    for name, check in CHECKS:
        detail = check(cut)
        if detail is not None:
            failed = True
            result.add(Failure(name, cut.write.index, cut.cut_bytes, cut.outage_min,
                               cut.write.step, detail))
    return failed


def run(sample_every: int = 1, seed: int = 0, continue_every: int = 50, unknown_every: int = 4,
        steps: tuple[Step, ...] | None = None,
        make_storage: StorageFactory = simhal.MemStorage,
        make_controller: ControllerFactory = pump.Controller,
        make_reboot_controller: ControllerFactory | None = None,
        stop_after_failures: int = 0) -> Result:
    """Record the scenario once, then cut power inside every write (every byte when
    `sample_every` is 1) and judge every reboot. Deterministic for a given seed.
    `make_controller` runs the scenario; `make_reboot_controller` (default: the same) boots
    after each cut. `stop_after_failures` > 0 stops early (for tests that only need to see
    a check fail)."""
    reboot_with = make_reboot_controller or make_controller
    t0 = time.perf_counter()
    rng = random.Random(seed)
    steps = steps or scenario()
    writes = record(steps, make_storage, make_controller)
    proto = _device(make_storage(0), b"")
    result = Result(writes=len(writes), slot_writes=sum(w.is_slot for w in writes),
                    scenario=describe(steps))
    result.event_writes = result.writes - result.slot_writes
    continue_phase = rng.randrange(continue_every) if continue_every > 0 else -1
    for w in writes:
        if w.old_record is not None:
            result.corrupt_checks_tried += 1
            detail = check_corrupt(proto, w, rng, reboot_with)
            if detail is not None:
                result.corrupt_checks_failed += 1
                result.add(Failure(CORRUPT, w.index, -1, 0, w.step, detail))
        for k in cut_offsets(w.physical_bytes, sample_every, rng):
            n = result.power_cuts_tried
            outage_min = -1 if unknown_every > 0 and (w.index + k) % unknown_every == 0 else 0
            cut = reboot(proto, w, k, outage_min, reboot_with)
            result.power_cuts_tried += 1
            result.unknown_outage_boots += outage_min < 0
            failed = _judge(cut, result)
            if continue_every > 0 and n % continue_every == continue_phase:
                result.continued += 1
                detail = continue_therapy(cut.controller)
                if detail is not None:
                    failed = True
                    result.add(Failure(CONTINUES, w.index, k, outage_min, w.step, detail))
            result.power_cuts_lost_data += failed
        if stop_after_failures and sum(result.failures_by_check.values()) >= stop_after_failures:
            break
    result.seconds = time.perf_counter() - t0
    return result
