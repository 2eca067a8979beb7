"""Power-safe record: old-or-new after a cut at any byte, corrupt never trusted, nothing
acknowledged that is not on the device, events after their state, records of other layouts
kept. Runs on CPython and MicroPython."""
import struct
import unittest
from binascii import crc32

from fw import kernel as k
from fw import journal, simhal, pump
from kernel_helpers import new_board


def therapy(c):
    """Patient, bag, start: the record now holds a running infusion."""
    c.boot()
    assert c.command(pump.CMD_SETUP, [4242, k.IND_MRD, 70000, 0, 0]) == k.OK
    assert c.command(pump.CMD_BAG, [4242, 1, 28000, 240000, 10000, 24, 0, 0, 0]) == k.OK
    c.command(pump.CMD_ACK, [k.ACK_PREMED])
    c.command(pump.CMD_ACK, [k.ACK_SUPERVISION])
    assert c.command(pump.CMD_START, []) == k.OK


class TestJournal(unittest.TestCase):
    def test_crc32_check_value(self):
        self.assertEqual(journal.crc32(b"123456789") & 0xFFFFFFFF, 0xCBF43926)

    def test_fresh_device_starts_without_patient(self):
        c, _ = new_board()
        self.assertEqual(c.boot(), journal.LOAD_FRESH)
        self.assertEqual(c.s.mode, k.MODE_NO_PATIENT)
        self.assertEqual(c.s.fault, 0)

    def test_record_survives_reboot(self):
        c, st = new_board()
        therapy(c)
        for _ in range(300):
            c.tick()
        delivered = c.s.course_ng
        c2, _ = new_board(st)
        self.assertEqual(c2.boot(10), journal.LOAD_OK)
        self.assertEqual(c2.s.course_ng, delivered)
        self.assertEqual(c2.s.mode, k.MODE_STOPPED)            # no restart by itself
        self.assertEqual(c2.motor.ul_per_h, 0)
        self.assertEqual(c2.s.int_start_min, 300)              # interruption start kept

    def test_power_cut_at_every_byte_of_a_tick_write_is_old_or_new(self):
        c, st = new_board()
        therapy(c)
        for _ in range(100):
            c.tick()
        old = c.s.course_ng
        image = bytearray(st.data)
        # the next tick books one more minute; cut its slot write at every byte
        c.tick()
        new = c.s.course_ng
        self.assertTrue(new > old)
        for cut in range(0, journal.SLOT_BYTES + 1, 7):
            st2 = simhal.MemStorage(journal.TOTAL_BYTES)
            st2.data[:] = image
            c2, _ = new_board(st2)
            self.assertEqual(c2.journal.load(c2.s), journal.LOAD_OK)
            st2.cut_after = cut
            try:
                c2.tick()
                cut_happened = False
            except simhal.PowerCut:
                cut_happened = True
            c3, _ = new_board(st2)
            self.assertEqual(c3.journal.load(c3.s), journal.LOAD_OK)
            self.assertTrue(c3.s.course_ng in (old, new))
            if not cut_happened:
                self.assertEqual(c3.s.course_ng, new)

    def test_corrupt_record_never_trusted_and_kept(self):
        c, st = new_board()
        therapy(c)
        for _ in range(10):
            c.tick()
        for i in range(2 * journal.SLOT_BYTES):
            st.data[i] ^= 0x5A
        kept = bytes(st.data[:2 * journal.SLOT_BYTES])
        c2, _ = new_board(st)
        self.assertEqual(c2.boot(0), journal.LOAD_CORRUPT)
        self.assertEqual(c2.s.mode, k.MODE_NO_PATIENT)
        self.assertEqual(c2.s.fault, 1)
        self.assertTrue(c2.s.alarm & k.AL_FAULT)
        self.assertEqual(c2.motor.ul_per_h, 0)
        for _ in range(5):
            c2.tick()
        self.assertEqual(bytes(st.data[:2 * journal.SLOT_BYTES]), kept)   # never overwritten
        self.assertEqual(c2.command(pump.CMD_START, []), k.E_FAULT)

    def test_one_corrupt_slot_falls_back_to_the_other(self):
        c, st = new_board()
        therapy(c)
        for _ in range(50):
            c.tick()
        newest_slot = 1 - c.journal.next_slot
        st.data[newest_slot * journal.SLOT_BYTES + 12] ^= 0xFF
        c2, _ = new_board(st)
        self.assertEqual(c2.journal.load(c2.s), journal.LOAD_OK)
        self.assertTrue(c2.s.course_ng > 0)

    def test_event_log_records_interruption_start_end_reason(self):
        c, _ = new_board()
        therapy(c)
        for _ in range(30):
            c.tick()
        c.command(pump.CMD_STOP, [k.STOP_BAG_CHANGE])
        for _ in range(20):
            c.tick()
        c.command(pump.CMD_START, [])
        evs = c.journal.events()
        stops = [e for e in evs if e[2] == journal.EV_STOP]
        resumes = [e for e in evs if e[2] == journal.EV_RESUME]
        self.assertEqual(stops[-1][3], k.STOP_BAG_CHANGE)
        self.assertEqual(stops[-1][4], 30)                     # start minute
        self.assertEqual(resumes[-1][3], 20)                   # length in minutes
        seqs = [e[0] for e in evs]
        self.assertEqual(seqs, sorted(seqs))

    def test_failed_write_stops_the_motor(self):
        st = simhal.MemStorage(journal.TOTAL_BYTES)
        c, _ = new_board(st)
        therapy(c)
        st.fail = True
        c.tick()
        self.assertEqual(c.s.mode, k.MODE_STOPPED)
        self.assertEqual(c.motor.ul_per_h, 0)
        self.assertEqual(c.s.fault, 1)

    def test_bad_command_arguments_change_nothing(self):
        c, st = new_board()
        therapy(c)
        image = bytes(st.data[:2 * journal.SLOT_BYTES])
        mode = c.s.mode
        self.assertEqual(c.command(pump.CMD_BAG, [1, 2]), k.E_ARG)
        self.assertEqual(c.command(99, []), k.E_ARG)
        self.assertEqual(c.command(pump.CMD_STOP, ["x"]), k.E_ARG)
        self.assertEqual(c.s.mode, mode)
        self.assertEqual(bytes(st.data[:2 * journal.SLOT_BYTES]), image)


class FlakyStorage(simhal.MemStorage):
    """simhal's storage (writes fail while `fail` is set), logging where the writes landed."""

    def __init__(self, size):
        simhal.MemStorage.__init__(self, size)
        self.landed = []

    def write(self, off, data):
        ok = simhal.MemStorage.write(self, off, data)
        if ok:
            self.landed.append(off)
        return ok


def v1_record(fields, values, seq=7):
    """A record slot as firmware 0.1.0 wrote it (format version 1: no layout word)."""
    body = bytearray(b"BJ")
    body.append(1)
    body.append(len(fields))
    body.extend(struct.pack("<I", seq))
    for name in fields:
        body.extend(struct.pack("<i", values.get(name, 0)))
    body.extend(struct.pack("<I", crc32(bytes(body)) & 0xFFFFFFFF))
    return bytes(body)


def v2_record(fields, values, seq=7):
    """A record slot in this firmware's format (version 2) for a given field layout; fields not
    in `values` take their start-up value (State())."""
    start = k.State()
    body = bytearray(b"BJ")
    body.append(2)
    body.append(len(fields))
    body.extend(struct.pack("<II", seq, journal.layout_of(fields)))
    for name in fields:
        body.extend(struct.pack("<i", values.get(name, getattr(start, name, 0))))
    body.extend(struct.pack("<I", crc32(bytes(body)) & 0xFFFFFFFF))
    return bytes(body)


class TestNothingLost(unittest.TestCase):
    def test_L2_4_crs_4_lockout_while_the_record_cannot_be_written_is_not_acknowledged(self):
        st = FlakyStorage(journal.TOTAL_BYTES)
        c, _ = new_board(st)
        therapy(c)
        st.fail = True
        # not on the device: never answered OK and not applied; the motor stops and the fault
        # is latched instead
        self.assertEqual(c.command(pump.CMD_REACTION, [k.RX_CRS, 4, 1]), k.E_FAULT)
        self.assertEqual(c.motor.ul_per_h, 0)
        self.assertEqual((c.s.locked, c.s.fault, c.s.mode), (0, 1, k.MODE_STOPPED))
        self.assertTrue(c.unsaved)
        # storage works again: the next poll writes the faulted state, then its events
        st.fail = False
        c.clock.advance(1000)
        c.poll()
        self.assertFalse(c.unsaved)
        c2, _ = new_board(st)
        self.assertEqual(c2.boot(0), journal.LOAD_OK)
        self.assertEqual((c2.s.fault, c2.s.locked), (1, 0))
        codes = [e[2] for e in c2.journal.events()]
        self.assertTrue(journal.EV_FAULT in codes and journal.EV_LOCK not in codes, codes)
        # the clinician clears the fault and enters the reaction again: now it is recorded
        self.assertEqual(c2.command(pump.CMD_CLEAR_FAULT, []), k.OK)
        self.assertEqual(c2.command(pump.CMD_REACTION, [k.RX_CRS, 4, 1]), k.OK)
        c3, _ = new_board(st)
        self.assertEqual(c3.boot(0), journal.LOAD_OK)
        self.assertEqual(c3.s.locked, 1)                      # L2.4-crs-4: kept across a reboot
        self.assertEqual(c3.command(pump.CMD_START, []), k.E_LOCKED)

    def test_L2_5_errors_a_command_not_written_logs_its_stop_as_every_stop_is(self):
        # the running pump stops for the latched fault: STOP (reason FAULT), ALARM and REINIT,
        # then FAULT (the record), after the refused command, as a motor fault logs them
        st = FlakyStorage(journal.TOTAL_BYTES)
        c, _ = new_board(st)
        therapy(c)
        mark = len(c.journal.events())
        st.fail = True
        self.assertEqual(c.command(pump.CMD_REACTION, [k.RX_CRS, 2, 1]), k.E_FAULT)
        st.fail = False
        c.clock.advance(1000)
        c.poll()
        codes = [(e[2], e[3]) for e in c.journal.events()[mark:]]
        self.assertEqual(codes[0], (journal.EV_COMMAND, pump.CMD_REACTION))
        self.assertEqual(codes[1], (journal.EV_STOP, k.STOP_FAULT))
        self.assertEqual([code for code, _ in codes[2:4]], [journal.EV_ALARM, journal.EV_REINIT])
        self.assertEqual(codes[4], (journal.EV_FAULT, pump.FAULT_RECORD))

    def test_L2_5_errors_an_end_of_therapy_not_archived_logs_its_alarm(self):
        class ArchiveFails(FlakyStorage):
            def write(self, off, data):
                if self.archive_fails and off >= journal.ARCHIVE_OFFSET:
                    return False
                return FlakyStorage.write(self, off, data)

        st = ArchiveFails(journal.TOTAL_BYTES)
        st.archive_fails = False
        c, _ = new_board(st)
        therapy(c)
        self.assertEqual(c.command(pump.CMD_STOP, [k.STOP_CLINICIAN]), k.OK)
        mark = len(c.journal.events())
        st.archive_fails = True
        self.assertEqual(c.command(pump.CMD_END_THERAPY, []), k.E_FAULT)
        codes = [(e[2], e[3]) for e in c.journal.events()[mark:]]
        self.assertEqual(codes[0], (journal.EV_COMMAND, pump.CMD_END_THERAPY))
        self.assertEqual(codes[1][0], journal.EV_ALARM)     # the fault's alarm (stopped already)
        self.assertEqual(codes[-1], (journal.EV_FAULT, pump.FAULT_RECORD))
        self.assertEqual(c.s.fault, 1)

    def test_L2_4_seizure_entered_while_the_record_fails_and_again_counts_once(self):
        st = FlakyStorage(journal.TOTAL_BYTES)
        c, _ = new_board(st)
        therapy(c)
        st.fail = True
        self.assertEqual(c.command(pump.CMD_REACTION, [k.RX_SEIZURE, 2, 1]), k.E_FAULT)
        self.assertEqual(c.s.seizures, 0)                     # not acknowledged: not counted
        st.fail = False
        self.assertEqual(c.command(pump.CMD_CLEAR_FAULT, []), k.OK)
        self.assertEqual(c.command(pump.CMD_REACTION, [k.RX_SEIZURE, 2, 1]), k.OK)
        self.assertEqual((c.s.seizures, c.s.locked), (1, 0))  # one seizure: not locked

    def test_a_write_that_fails_once_is_not_acknowledged(self):
        class FailsOnce(FlakyStorage):
            def write(self, off, data):
                if self.fail and off < journal.RING_OFFSET:
                    self.fail = False
                    return False
                return FlakyStorage.write(self, off, data)

        st = FailsOnce(journal.TOTAL_BYTES)
        c, _ = new_board(st)
        c.boot()
        c.command(pump.CMD_SETUP, [4242, k.IND_MRD, 70000, 0, 0])
        c.command(pump.CMD_BAG, [4242, 1, 28000, 240000, 10000, 24, 0, 0, 0])
        c.command(pump.CMD_ACK, [k.ACK_PREMED])
        c.command(pump.CMD_ACK, [k.ACK_SUPERVISION])
        st.fail = True
        self.assertEqual(c.command(pump.CMD_START, []), k.E_FAULT)
        self.assertEqual((c.s.mode, c.motor.ul_per_h), (k.MODE_STOPPED, 0))
        self.assertFalse(c.unsaved)                           # the faulted state is on the device

    def test_a_command_answered_ok_is_on_the_device(self):
        st = FlakyStorage(journal.TOTAL_BYTES)
        c, _ = new_board(st)
        therapy(c)
        st.fail = True
        self.assertEqual(c.command(pump.CMD_STOP, [k.STOP_CLINICIAN]), k.E_FAULT)
        self.assertEqual(c.command(pump.CMD_ACK_ALARM, [255]), k.E_FAULT)
        st.fail = False
        self.assertEqual(c.command(pump.CMD_ACK_ALARM, [1]), k.OK)
        c2, _ = new_board(st)
        self.assertEqual(c2.boot(0), journal.LOAD_OK)
        self.assertEqual(c2.s.fault, 1)                       # the fault was written with the rest

    def test_an_event_is_written_after_the_state_it_describes(self):
        st = FlakyStorage(journal.TOTAL_BYTES)
        c, _ = new_board(st)
        therapy(c)
        del st.landed[:]
        self.assertEqual(c.command(pump.CMD_REACTION, [k.RX_CRS, 4, 1]), k.OK)
        slots = [i for i, off in enumerate(st.landed) if off < journal.RING_OFFSET]
        events = [i for i, off in enumerate(st.landed) if off >= journal.RING_OFFSET]
        self.assertEqual(len(slots), 1)
        self.assertTrue(events and min(events) > slots[0], st.landed)
        codes = [e[2] for e in c.journal.events()][-len(events):]
        self.assertTrue(journal.EV_LOCK in codes, codes)

    def test_boot_is_logged_before_what_the_power_up_caused(self):
        c, st = new_board()
        therapy(c)
        c.tick()
        c2, _ = new_board(st)
        c2.boot(-1)
        after = [e[2] for e in c2.journal.events()]
        after = after[after.index(journal.EV_BOOT):]
        self.assertEqual(after[0], journal.EV_BOOT)
        self.assertTrue(journal.EV_STOP in after and journal.EV_ALARM in after, after)


class TestRecordFormat(unittest.TestCase):
    def test_a_record_of_format_version_1_is_kept_and_not_run(self):
        st = simhal.MemStorage(journal.TOTAL_BYTES)
        fields = journal.FIELDS[:57]
        rec = v1_record(fields, {"mode": k.MODE_STOPPED, "locked": 1, "patient_id": 4242})
        st.data[0:len(rec)] = rec
        kept = bytes(st.data[:2 * journal.SLOT_BYTES])
        c, _ = new_board(st)
        self.assertEqual(c.boot(-1), journal.LOAD_INCOMPATIBLE)
        self.assertEqual((c.s.fault, c.s.mode), (1, k.MODE_NO_PATIENT))
        # never erased by a new set-up: the fault cannot be cleared on another firmware's record
        self.assertEqual(c.command(pump.CMD_CLEAR_FAULT, []), k.E_FAULT)
        self.assertEqual(c.command(pump.CMD_SETUP, [1, k.IND_MRD, 70000, 0, 0]), k.E_FAULT)
        for _ in range(3):
            c.tick()
        self.assertEqual(bytes(st.data[:2 * journal.SLOT_BYTES]), kept)

    def test_a_record_of_format_version_1_with_only_its_slot_b_intact_is_kept_too(self):
        st = simhal.MemStorage(journal.TOTAL_BYTES)
        rec = v1_record(journal.FIELDS[:57], {"mode": k.MODE_STOPPED, "locked": 1})
        st.data[len(rec):2 * len(rec)] = rec                  # slot B of the old layout
        st.data[0:len(rec)] = bytes(b"BJ\x01\x39" + bytes(len(rec) - 4))   # slot A torn
        c, _ = new_board(st)
        self.assertEqual(c.boot(-1), journal.LOAD_INCOMPATIBLE)

    def test_a_migration_that_breaks_the_kernels_invariant_is_not_run(self):
        old_fields = tuple(f for f in journal.FIELDS if f != "bag_id")
        saved = journal.LAYOUTS
        journal.LAYOUTS = (old_fields,) + saved
        try:
            st = simhal.MemStorage(journal.TOTAL_BYTES)
            # a loaded bag, but this firmware's bag_id starts at 0: not a state the kernel runs
            rec = v2_record(old_fields, {"mode": k.MODE_STOPPED, "bag_loaded": 1, "patient_id": 4242,
                                         "cycle": 1, "max_cycles": 4, "bag_duration_min": 1440,
                                         "bag_room_limit_min": 2880, "bag_volume_ul": 240000, "last_bag_id": 3})
            st.data[0:len(rec)] = rec
            c, _ = new_board(st)
            self.assertEqual(c.boot(0), journal.LOAD_INCOMPATIBLE)
        finally:
            journal.LAYOUTS = saved

    def test_a_record_of_an_unknown_layout_is_kept_and_not_run(self):
        st = simhal.MemStorage(journal.TOTAL_BYTES)
        fields = tuple(sorted(journal.FIELDS + ("some_future_field",)))
        rec = v2_record(fields, {"mode": k.MODE_STOPPED, "locked": 1})
        st.data[0:len(rec)] = rec
        kept = bytes(st.data[:2 * journal.SLOT_BYTES])
        c, _ = new_board(st)
        self.assertEqual(c.boot(0), journal.LOAD_INCOMPATIBLE)
        self.assertEqual(c.command(pump.CMD_CLEAR_FAULT, []), k.E_FAULT)
        c.tick()
        self.assertEqual(bytes(st.data[:2 * journal.SLOT_BYTES]), kept)

    def test_a_record_of_a_known_older_layout_is_migrated_by_field_name(self):
        old_fields = tuple(f for f in journal.FIELDS if f != "acc_ul") + ("zz_retired",)
        saved = journal.LAYOUTS
        journal.LAYOUTS = (old_fields,) + saved
        try:
            st = simhal.MemStorage(journal.TOTAL_BYTES)
            values = {"mode": k.MODE_STOPPED, "locked": 1, "patient_id": 4242, "course_ng": 56000,
                      "zz_retired": 99, "cycle": 1, "max_cycles": 4}
            rec = v2_record(old_fields, values)
            st.data[0:len(rec)] = rec
            c, _ = new_board(st)
            self.assertEqual(c.boot(0), journal.LOAD_OK)
        finally:
            journal.LAYOUTS = saved
        self.assertEqual((c.s.locked, c.s.patient_id, c.s.course_ng), (1, 4242, 56000))
        self.assertEqual(c.s.acc_ul, 0)                       # new in this layout: its start-up value
        self.assertFalse(hasattr(c.s, "zz_retired"))
        c.tick()                                              # written back in this firmware's layout
        c2, _ = new_board(st)
        self.assertEqual(c2.boot(0), journal.LOAD_OK)
        self.assertEqual(c2.s.course_ng, 56000)


class TestStartStatus(unittest.TestCase):
    """STATUS says what the next START needs (start_status): it is what START answers."""

    def test_L2_premed_status_says_the_step_dose_needs_premedication_before_start_is_refused(self):
        c, _ = new_board()
        c.boot()
        self.assertEqual(c.status()["start_status"], k.E_STATE)          # no patient yet
        c.command(pump.CMD_SETUP, [4242, k.IND_RR, 70000, 0, 0])
        self.assertEqual(c.status()["start_status"], k.E_NO_BAG)
        c.command(pump.CMD_BAG, [4242, 1, 63000, 100800, 600, 168, 1, 0, 0])  # 7 days at 9 mcg/day
        self.assertEqual(c.status()["start_status"], k.E_REINIT)         # cycle start: premed + supervision
        c.command(pump.CMD_ACK, [k.ACK_PREMED])
        c.command(pump.CMD_ACK, [k.ACK_SUPERVISION])
        self.assertEqual(c.status()["start_status"], k.OK)
        self.assertEqual(c.command(pump.CMD_START, []), k.OK)
        for _ in range(7 * 1440):
            c.tick()                                                     # days 1-7 at the step dose
        self.assertEqual(c.s.bag_loaded, 0)
        c.command(pump.CMD_BAG, [4242, 2, 196000, 100800, 600, 168, 1, 0, 0])  # day 8: 28 mcg/day
        st = c.status()
        # STATUS says what START needs: the step dose's premedication (the kernel's own need_premed
        # flag is for cycle starts and re-initiations)
        self.assertEqual((c.s.need_premed, st["need_premed"], st["start_status"]), (0, 1, k.E_STEP_PREMED))
        before = dict(c.s.__dict__)
        self.assertEqual(c.command(pump.CMD_START, []), st["start_status"])   # START agrees
        c.command(pump.CMD_ACK, [k.ACK_PREMED])
        self.assertEqual(c.status()["start_status"], k.OK)
        self.assertEqual(c.command(pump.CMD_START, []), k.OK)
        self.assertEqual(before["mode"], k.MODE_STOPPED)

    def test_start_status_changes_nothing(self):
        c, st = new_board()
        therapy(c)
        c.command(pump.CMD_STOP, [k.STOP_CLINICIAN])
        before = dict(c.s.__dict__)
        image = bytes(st.data)
        for _ in range(3):
            c.status()
        self.assertEqual(dict(c.s.__dict__), before)
        self.assertEqual(bytes(st.data), image)


if __name__ == "__main__":
    unittest.main()
