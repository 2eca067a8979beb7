"""Power cuts inside record writes (hil/powercut.py): the DESIGN fail-safe rule "the delivered-dose
record survives power loss at any instant", and the label state that rides on the record
(L2-reinit-4h, L2.4-restart-9, L2.4-crs-4, L2-dose-28).

A deterministic sample of cut offsets runs here; bench/hardening_power.py runs every byte.
The broken variants below prove that each check of the harness fails when its rule is broken.
"""
from __future__ import annotations

import struct
from functools import lru_cache

import pytest

from blinpump.firmware import journal, kernel as k, pump, simhal
from blinpump.hil import powercut as pc

SAMPLE_EVERY = 24           # about 10 cuts per state write, both ends always included
SEED = 20240611
SHORT = pc.scenario(run_min=12, occlusions=0)   # for the broken variants: enough to fail fast


@lru_cache(maxsize=None)
def default_writes() -> tuple[pc.Write, ...]:
    return tuple(pc.record(pc.scenario(), simhal.MemStorage, pump.Controller))


def writes_in(step_prefix: str) -> list[pc.Write]:
    return [w for w in default_writes() if w.step.startswith(step_prefix)]


def proto() -> simhal.MemStorage:
    return simhal.MemStorage(0)


# ------------------------------------------------------------------ the firmware as it is

def test_design_record_survives_a_power_cut_at_sampled_bytes_of_every_write() -> None:
    r = pc.run(sample_every=SAMPLE_EVERY, seed=SEED, continue_every=40)
    assert r.ok, r.summary()
    assert r.power_cuts_lost_data == 0 and r.failures_by_check == {}
    assert r.writes == len(default_writes())
    assert r.power_cuts_tried > 10 * r.slot_writes        # every write, several bytes each
    assert r.unknown_outage_boots > 0 and r.continued > 0
    assert r.corrupt_checks_tried == r.writes - 1         # every write but the very first


def test_design_record_survives_power_cuts_on_a_zero_filled_device() -> None:
    """A new record file reads 0x00 (firmware/hal.FileStorage), not erased flash's 0xFF."""
    r = pc.run(sample_every=4 * SAMPLE_EVERY, seed=SEED,
               make_storage=lambda n: simhal.MemStorage(n, fill=0))
    assert r.ok, r.summary()


def test_scenario_covers_the_clauses_it_claims() -> None:
    steps = " | ".join(w.step for w in default_writes())
    for clause in ("L2-reinit-4h", "L2.4-restart-9", "L2.4-crs-4", "L2-dose-28"):
        assert clause in steps
    records = [w.new_record for w in default_writes() if w.new_record is not None]
    assert any(r["reinit_needed"] for r in records)
    assert any(r["low_left_min"] > 0 and r["mode"] == k.MODE_RUNNING for r in records)
    assert records[-1]["locked"] == 1 and records[-1]["lock_reason"] == k.RX_CRS
    seqs = [w.event[0] for w in default_writes() if w.event is not None]
    assert seqs == sorted(seqs) and seqs[-1] >= journal.EVENT_SLOTS   # the ring wraps


def test_cut_image_is_the_written_prefix() -> None:
    """The replayed cut (MemStorage's own cut_after) leaves exactly the first k bytes."""
    w = writes_in("running")[5]
    for cut in (0, 1, 100, w.physical_bytes - 1, w.physical_bytes):
        dev = pc.cut_image(proto(), w, cut)
        want = bytearray(w.before)
        want[w.offset:w.offset + cut] = w.data[:cut]
        assert bytes(dev.data) == bytes(want)


def test_l2_4_crs_4_lockout_write_cut_at_every_byte_stays_locked() -> None:
    w = next(w for w in default_writes() if w.new_record and w.new_record["locked"])
    assert w.old_record is not None and not w.old_record["locked"]
    for cut in range(w.physical_bytes + 1):
        for outage_min in (0, -1):
            c = pc.reboot(proto(), w, cut, outage_min, pump.Controller).controller
            assert c.s.locked == (1 if cut == w.physical_bytes else 0)
            assert c.motor.ul_per_h == 0 and c.s.mode == k.MODE_STOPPED
    # once written, nothing restarts it (L2.4-crs-4)
    later = writes_in("locked out")[-1]
    c = pc.reboot(proto(), later, 3, -1, pump.Controller).controller
    assert c.s.locked == 1 and c.command(pump.CMD_START, []) == k.E_LOCKED


def test_l2_reinit_4h_unknown_outage_during_an_interruption_keeps_its_start() -> None:
    stop = [w for w in writes_in("clinician stops") if w.new_record is not None][-1]
    assert stop.new_record is not None
    stop_min = stop.new_record["int_start_min"]
    w = writes_in("interruption of 4 h")[30]
    for cut in range(0, w.physical_bytes + 1, 3):
        c = pc.reboot(proto(), w, cut, -1, pump.Controller).controller
        assert c.s.int_start_min == stop_min
        assert c.s.reinit_needed == 1 and c.s.alarm & k.AL_REINIT
        assert c.s.bag_loaded == 0                               # L2.6-bag-*: time unknown
        assert c.command(pump.CMD_START, []) == k.E_NO_BAG


def test_l2_4_restart_9_cut_while_running_at_9_mcg_keeps_the_restart_window() -> None:
    w = writes_in("running at 9 mcg/day")[10]
    assert w.old_record is not None
    c = pc.reboot(proto(), w, w.physical_bytes // 2, 0, pump.Controller).controller
    assert c.s.low_left_min == w.old_record["low_left_min"] > 0
    assert c.s.cap_ng_per_day == k.CAP_STEP_NG_PER_DAY
    assert c.command(pump.CMD_ACK_ALARM, [255]) == k.OK
    assert c.command(pump.CMD_START, []) == k.OK
    assert c.s.bag_ng_per_day <= k.CAP_STEP_NG_PER_DAY


def test_l2_dose_28_day_total_after_a_cut_is_never_below_delivered() -> None:
    for w in writes_in("running (180 min)")[::20]:
        assert w.delivered is not None
        for cut in (0, w.physical_bytes // 2, w.physical_bytes):
            c = pc.reboot(proto(), w, cut, 0, pump.Controller).controller
            assert c.s.day_ng >= w.delivered["day_ng"]
            assert c.s.course_ng >= w.delivered["course_ng"]


# ------------------------------------------------------------------ the checks have teeth

class InPlaceJournal(journal.Journal):
    """Writes every state record over the newest one, in place."""

    def save(self, state):  # type: ignore[no-untyped-def]
        self.next_slot = 0
        return journal.Journal.save(self, state)


class CrcBlindJournal(journal.Journal):
    """Trusts a slot whose magic looks right, without its CRC."""

    def _slot_info(self, buf):  # type: ignore[no-untyped-def]
        if buf[0:2] != journal.MAGIC:
            return None
        return struct.unpack_from("<I", buf, 4)[0], len(journal.LAYOUTS) - 1     # this firmware's layout


class ForgetfulJournal(journal.Journal):
    """Starts the event log again at seq 0 after every boot."""

    def _scan_events(self):  # type: ignore[no-untyped-def]
        journal.Journal._scan_events(self)
        self.event_seq = 0


class LockLosingJournal(journal.Journal):
    """An old record layout without the lock-out fields."""

    def load(self, state):  # type: ignore[no-untyped-def]
        result = journal.Journal.load(self, state)
        state.locked = 0
        state.lock_reason = 0
        state.alarm &= 255 - k.AL_LOCKED
        return result


class ReactionLosingJournal(journal.Journal):
    """An old record layout without the Table 4 fields."""

    def load(self, state):  # type: ignore[no-untyped-def]
        result = journal.Journal.load(self, state)
        state.low_left_min = 0
        state.rx_crs = 0
        state.rx_icans = 0
        state.rx_neuro = 0
        state.rx_seizure = 0
        state.rx_other = 0
        return result


class SharedEraseBlock(simhal.MemStorage):
    """Flash whose erase block holds both state slots: a write erases the block, then
    programs it again with the old slot and the new one."""

    BLOCK = 2 * journal.SLOT_BYTES

    def write(self, off, data):  # type: ignore[no-untyped-def]
        if off >= self.BLOCK:
            return simhal.MemStorage.write(self, off, data)
        block = bytearray(self.data[:self.BLOCK])
        block[off:off + len(data)] = data
        simhal.MemStorage.write(self, 0, b"\xff" * self.BLOCK)
        return simhal.MemStorage.write(self, 0, block)


class MotorFirst(pump.Controller):
    """Drives the motor, then writes the record (not write-ahead)."""

    def _apply(self, saved: bool = False) -> None:
        self.motor.set_rate(self.s.motor_ul_per_h)
        if self.persist and not saved:
            self.journal.save(self.s)
        self._flush_events()


class EventsFirst(pump.Controller):
    """Logs a step's events before its state is written (the controller as it was)."""

    def _event(self, code: int, a: int, b: int) -> None:
        pump.Controller._event(self, code, a, b)
        self._flush_events()            # logged at once, before the step's state is written


class RetimedInterruption(pump.Controller):
    """Restarts the interruption clock at every boot."""

    def boot(self, outage_min: int = -1) -> int:
        result: int = pump.Controller.boot(self, outage_min)
        if self.s.int_start_min >= 0:
            self.s.int_start_min = self.s.now_min
        return result


class OutageAsZero(pump.Controller):
    """Treats an outage of unknown length as none."""

    def boot(self, outage_min: int = -1) -> int:
        result: int = pump.Controller.boot(self, max(outage_min, 0))
        return result


class AutoResume(pump.Controller):
    """Resumes the infusion by itself after a power cut."""

    def boot(self, outage_min: int = -1) -> int:
        result: int = pump.Controller.boot(self, outage_min)
        for cid, args in ((pump.CMD_ACK_ALARM, [255]), (pump.CMD_ACK, [k.ACK_PREMED]),
                          (pump.CMD_ACK, [k.ACK_SUPERVISION]), (pump.CMD_START, [])):
            self.command(cid, args)
        return result


class StopsRecording(pump.Controller):
    """Keeps infusing after a reboot but no longer writes the record."""

    def boot(self, outage_min: int = -1) -> int:
        result: int = pump.Controller.boot(self, outage_min)
        self.persist = False
        return result


def with_journal(cls: type[journal.Journal]) -> pc.ControllerFactory:
    def make(storage: pc.Storage, clock: simhal.SimClock, motor: simhal.SimMotor) -> pump.Controller:
        c = pump.Controller(storage, clock, motor)
        c.journal = cls(storage)
        return c
    return make


def failures(steps: tuple[pc.Step, ...] = SHORT, **kw: object) -> dict[str, int]:
    r = pc.run(sample_every=journal.RECORD_BYTES // 2, seed=SEED, stop_after_failures=20,
               steps=steps, **kw)  # type: ignore[arg-type]
    assert r.power_cuts_lost_data + r.corrupt_checks_failed > 0
    return r.failures_by_check


def test_design_old_or_new_catches_a_record_written_in_place() -> None:
    assert failures(make_controller=with_journal(InPlaceJournal)).get(pc.RECORD)


def test_design_old_or_new_catches_slots_sharing_an_erase_block() -> None:
    assert failures(make_storage=SharedEraseBlock).get(pc.RECORD)


def test_design_never_lower_than_delivered_catches_motor_before_record() -> None:
    assert failures(make_controller=MotorFirst).get(pc.DELIVERED)


def test_design_corrupt_never_trusted_catches_a_crc_blind_journal() -> None:
    assert failures(make_controller=with_journal(CrcBlindJournal)).get(pc.CORRUPT)


def test_l2_reinit_4h_catches_a_boot_that_retimes_the_interruption() -> None:
    assert failures(make_reboot_controller=RetimedInterruption).get(pc.INTERRUPTION)


def test_l2_reinit_4h_catches_an_unknown_outage_counted_as_none() -> None:
    assert failures(make_reboot_controller=OutageAsZero).get(pc.UNKNOWN_OUTAGE)


def test_l2_4_crs_4_catches_a_journal_that_says_locked_before_the_state_does() -> None:
    r = pc.run(sample_every=journal.RECORD_BYTES // 2, seed=SEED, stop_after_failures=100000, steps=SHORT,
               make_controller=EventsFirst)
    assert r.failures_by_check.get(pc.LOCKOUT), r.failures_by_check


def test_l2_4_crs_4_catches_a_record_that_drops_the_lock() -> None:
    assert failures(make_controller=with_journal(LockLosingJournal)).get(pc.LOCKOUT)


def test_l2_4_restart_9_catches_a_record_that_drops_the_reaction() -> None:
    assert failures(make_controller=with_journal(ReactionLosingJournal)).get(pc.REACTION)


def test_design_no_restart_by_itself_catches_an_auto_resume() -> None:
    assert failures(make_reboot_controller=AutoResume).get(pc.MOTOR)


def test_design_event_log_catches_reused_seqs() -> None:
    assert failures(make_controller=with_journal(ForgetfulJournal)).get(pc.EVENTS)


def test_design_therapy_continues_catches_a_pump_that_stops_recording() -> None:
    assert failures(make_reboot_controller=StopsRecording, continue_every=1).get(pc.CONTINUES)


@pytest.mark.parametrize("cut", [0, 1, 23])
def test_events_check_allows_only_the_torn_ring_record(cut: int) -> None:
    """A torn event may fail its CRC; a second bad record is a finding."""
    w = next(w for w in default_writes() if w.event is not None and w.ring)
    result = pc.reboot(proto(), w, cut, 0, pump.Controller)
    assert pc.check_events(result) is None
    result.events_lost += 1
    assert pc.check_events(result) is not None


def test_events_check_a_cut_after_the_last_changed_byte_leaves_a_whole_record() -> None:
    """Found by the full benchmark (bench/hardening_power.py, 292,969 cuts): an event record cut
    after 23 of its 24 bytes, whose last CRC byte already held the new value, is whole on the
    device; the journal rightly logs it and BOOT takes the next seq. The check once counted it
    as torn and reported the BOOT that follows it as out of place."""
    writes = default_writes()
    found = 0
    for w in writes:
        if w.is_slot or w.event is None:
            continue
        before = w.before[w.offset + w.physical_bytes - 1]
        if before != w.data[w.physical_bytes - 1]:
            continue                # the last byte differs: a cut before it leaves a bad CRC
        found += 1
        cut = pc.reboot(proto(), w, w.physical_bytes - 1, -1, pump.Controller)
        assert cut.events_lost == 0 and w.event in cut.controller.journal.events()
        assert pc.check_events(cut) is None
    assert found >= 1
