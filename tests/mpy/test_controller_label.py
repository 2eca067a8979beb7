"""What the controller records of the label read again (firmware 0.3.0): every answer a
clinician gives is logged, an ended therapy stays readable, a 0.2.0 record is migrated without
forgetting a reaction. Runs on CPython and MicroPython."""
import struct
import unittest
from binascii import crc32

from fw import kernel as k
from fw import journal, simhal, pump
from kernel_helpers import new_board

PID = 4242


def running(c):
    c.boot()
    assert c.command(pump.CMD_SETUP, [PID, k.IND_MRD, 70000, 0, 0]) == k.OK
    assert c.command(pump.CMD_BAG, [PID, 1, 31500, 270000, 10000, 24, 0, 0, 0]) == k.OK
    c.command(pump.CMD_ACK, [k.ACK_PREMED])
    c.command(pump.CMD_ACK, [k.ACK_SUPERVISION])
    assert c.command(pump.CMD_START, []) == k.OK


def codes(c, since=0):
    return [(e[2], e[3], e[4]) for e in c.journal.events(since)]


class TestAnswersAreLogged(unittest.TestCase):
    def test_L2_4_grading_a_reaction_is_logged_with_its_kind_grade_and_scale(self):
        c, _ = new_board()
        running(c)
        mark = c.journal.event_seq
        self.assertEqual(c.command(pump.CMD_REACTION, [k.RX_ICANS, 2, k.SCALE_ASTCT]), k.OK)
        self.assertTrue((journal.EV_REACTION, k.RX_ICANS * 10 + 2, k.SCALE_ASTCT) in codes(c, mark))
        self.assertEqual(c.command(pump.CMD_RESOLVED, [k.RX_ICANS]), k.OK)
        self.assertTrue((journal.EV_RESOLVED, k.RX_ICANS, k.OK) in codes(c, mark))

    def test_L2_4_new_cycle_the_clinicians_answer_is_logged(self):
        c, _ = new_board()
        running(c)
        c.command(pump.CMD_STOP, [k.STOP_CLINICIAN])
        for _ in range(7 * 1440 + 1):
            k.tick(c.s)
        c.tick()
        self.assertEqual(c.s.cycle_ask, 1)
        mark = c.journal.event_seq
        self.assertEqual(c.command(pump.CMD_CYCLE_DECISION, [1]), k.OK)
        got = codes(c, mark)
        self.assertTrue((journal.EV_DECISION, pump.DECISION_CYCLE, 1) in got)
        self.assertTrue((journal.EV_CYCLE, 2, k.PHASE_INFUSION) in got)

    def test_L2_dose_28_a_weight_change_is_logged_with_old_and_new_values(self):
        c, _ = new_board()
        running(c)
        c.command(pump.CMD_STOP, [k.STOP_CLINICIAN])
        mark = c.journal.event_seq
        self.assertEqual(c.command(pump.CMD_UPDATE_PATIENT, [40000, 13000]), k.OK)
        got = codes(c, mark)
        self.assertTrue((journal.EV_PATIENT, 70000, 40000) in got)
        self.assertTrue((journal.EV_PATIENT_BSA, 0, 13000) in got)
        self.assertTrue((journal.EV_BAG_REFUSED, 1, 0) in got)       # 28 mcg/day is above 19.5
        self.assertEqual((c.s.cap_full_ng_per_day, c.s.bag_loaded), (19500, 0))


class TestStatusAndEvents(unittest.TestCase):
    def test_every_bag_end_is_an_event_whatever_the_alarm_bits(self):
        c, _ = new_board()
        running(c)
        ends = 0
        for bag_id in (2, 3):
            for _ in range(1441):
                c.tick()
            ends += 1
            self.assertTrue(c.s.alarm & k.AL_BAG_END)       # not acknowledged: the bit stays set
            self.assertEqual([e[2] for e in c.journal.events()].count(journal.EV_BAG_END), ends)
            self.assertEqual(c.command(pump.CMD_BAG, [PID, bag_id, 31500, 270000, 10000, 24, 0, 0, 0]), k.OK)
            c.command(pump.CMD_ACK, [k.ACK_PREMED])
            c.command(pump.CMD_ACK, [k.ACK_SUPERVISION])
            self.assertEqual(c.command(pump.CMD_START, []), k.OK)


class TestMotorFault(unittest.TestCase):
    def test_EXT_pump_a_motor_that_stops_answering_is_a_logged_fault(self):
        c, _ = new_board()
        running(c)
        c.motor.fail = True
        mark = c.journal.event_seq
        c.tick()
        self.assertEqual((c.s.mode, c.s.fault), (k.MODE_STOPPED, 1))
        got = codes(c, mark)
        self.assertTrue((journal.EV_FAULT, pump.FAULT_MOTOR, 0) in got)
        self.assertEqual(c.journal.events()[-1][2], journal.EV_FAULT)   # logged after its state


class TestEndOfTherapy(unittest.TestCase):
    def test_end_of_therapy_keeps_the_old_record_readable(self):
        c, st = new_board()
        running(c)
        for _ in range(60):
            c.tick()
        c.command(pump.CMD_STOP, [k.STOP_CLINICIAN])
        given = c.s.course_ng
        self.assertEqual(c.command(pump.CMD_END_THERAPY, []), k.OK)
        self.assertEqual((c.s.mode, c.s.course_ng), (k.MODE_NO_PATIENT, 0))
        self.assertTrue((journal.EV_THERAPY_END, PID, given) in codes(c))
        old = k.State()
        self.assertTrue(c.journal.archived(0, old))
        self.assertEqual((old.patient_id, old.course_ng, old.mode), (PID, given, k.MODE_STOPPED))
        self.assertFalse(c.journal.archived(1, old))               # only one therapy ended so far
        # the next patient; the archive survives a reboot and the next set-up
        c2, _ = new_board(st)
        self.assertEqual(c2.boot(), journal.LOAD_OK)
        self.assertEqual(c2.command(pump.CMD_SETUP, [PID + 1, k.IND_RR, 60000, 0, 0]), k.OK)
        self.assertTrue(c2.journal.archived(0, old))
        self.assertEqual(old.patient_id, PID)

    def test_end_of_therapy_refused_while_running_archives_nothing(self):
        c, _ = new_board()
        running(c)
        self.assertEqual(c.command(pump.CMD_END_THERAPY, []), k.E_STATE)
        self.assertEqual(c.journal.archive_count(), 0)
        self.assertEqual(c.s.mode, k.MODE_RUNNING)

    def test_end_of_therapy_archives_the_last_four(self):
        c, _ = new_board()
        c.boot()
        for n in range(1, 6):
            self.assertEqual(c.command(pump.CMD_SETUP, [n, k.IND_MRD, 70000, 0, 0]), k.OK)
            self.assertEqual(c.command(pump.CMD_END_THERAPY, []), k.OK)
        self.assertEqual(c.journal.archive_count(), 5)
        old = k.State()
        got = []
        for back in range(journal.ARCHIVE_SLOTS):
            self.assertTrue(c.journal.archived(back, old))
            got.append(old.patient_id)
        self.assertEqual(got, [5, 4, 3, 2])
        self.assertFalse(c.journal.archived(journal.ARCHIVE_SLOTS, old))


class TestTheSamePatientAgain(unittest.TestCase):
    def ended(self, c, then):
        """Set up patient PID, run, stop, `then(c)`, end the therapy."""
        running(c)
        c.command(pump.CMD_STOP, [k.STOP_CLINICIAN])
        then(c)
        self.assertEqual(c.command(pump.CMD_END_THERAPY, []), k.OK)

    def test_L2_4_crs_4_a_locked_patient_ended_cannot_be_set_up_again(self):
        c, _ = new_board()
        self.ended(c, lambda c: c.command(pump.CMD_REACTION, [k.RX_CRS, 4, k.SCALE_CTCAE]))
        mark = c.journal.event_seq
        self.assertEqual(c.command(pump.CMD_SETUP, [PID, k.IND_MRD, 70000, 0, 0]), k.E_LOCKED)
        self.assertEqual(c.s.mode, k.MODE_NO_PATIENT)
        self.assertTrue((journal.EV_COMMAND, pump.CMD_SETUP, k.E_LOCKED) in codes(c, mark))
        self.assertEqual(c.command(pump.CMD_SETUP, [PID + 1, k.IND_MRD, 70000, 0, 0]), k.OK)   # another patient

    def test_L2_4_neuro_3_an_open_hold_is_not_forgotten_by_ending_and_starting_again(self):
        c, _ = new_board()
        self.ended(c, lambda c: c.command(pump.CMD_REACTION, [k.RX_NEURO, 3, k.SCALE_CTCAE]))
        self.assertEqual(c.command(pump.CMD_SETUP, [PID, k.IND_MRD, 70000, 0, 0]), k.E_WITHHOLD)

    def test_EXT_overdose_12h_runs_on_across_an_end_of_therapy(self):
        c, _ = new_board()
        self.ended(c, lambda c: c.command(pump.CMD_OVERDOSE, []))
        self.assertEqual(c.command(pump.CMD_SETUP, [PID, k.IND_MRD, 70000, 0, 0]), k.E_OVERDOSE_12H)
        for _ in range(720):
            k.tick(c.s)
        c.tick()
        self.assertEqual(c.command(pump.CMD_SETUP, [PID, k.IND_MRD, 70000, 0, 0]), k.OK)

    def test_end_of_therapy_retried_after_a_failed_write_is_one_archive(self):
        c, st = new_board()
        running(c)
        c.command(pump.CMD_STOP, [k.STOP_CLINICIAN])
        saved = c.journal.save
        c.journal.save = lambda state: False        # the record cannot be written
        self.assertEqual(c.command(pump.CMD_END_THERAPY, []), k.E_FAULT)
        c.journal.save = saved
        self.assertEqual(c.s.patient_id, PID)       # not applied
        self.assertEqual(c.command(pump.CMD_CLEAR_FAULT, []), k.OK)
        self.assertEqual(c.command(pump.CMD_END_THERAPY, []), k.OK)
        self.assertEqual(c.journal.archive_count(), 1)

    def test_an_archive_slot_of_another_layout_is_not_read_as_a_therapy(self):
        c, st = new_board()
        c.boot()
        body = bytearray(journal.HEADER_BYTES + 4 * 10)
        body[0:2] = journal.MAGIC
        body[2] = journal.VERSION
        body[3] = 10
        struct.pack_into("<I", body, 4, 1)
        struct.pack_into("<I", body, 8, 12345)      # a layout word no firmware wrote
        slot = bytes(body) + struct.pack("<I", crc32(bytes(body)) & 0xFFFFFFFF)
        st.write(journal.ARCHIVE_OFFSET, slot)
        self.assertFalse(c.journal.archived(0, k.State()))


def record_0_2(values):
    """A slot written by firmware 0.2.0 (format 2, its layout), with these field values."""
    fields = journal.LAYOUT_0_2
    body = bytearray(journal.HEADER_BYTES + 4 * len(fields))
    body[0:2] = journal.MAGIC
    body[2] = journal.VERSION
    body[3] = len(fields)
    struct.pack_into("<I", body, 4, 7)
    struct.pack_into("<I", body, 8, journal.layout_of(fields))
    for i in range(len(fields)):
        struct.pack_into("<i", body, journal.HEADER_BYTES + 4 * i, values.get(fields[i], 0))
    return bytes(body) + struct.pack("<I", crc32(bytes(body)) & 0xFFFFFFFF)


class TestMigration(unittest.TestCase):
    def state_0_2(self):
        """A 0.2.0 pump stopped for a grade 3 ICANS that began at minute 100, a bag loaded."""
        s = k.State()
        k.setup(s, PID, k.IND_MRD, 70000, 0, 0)
        k.bag(s, PID, 1, 28000, 240000, 10000, 24, 0, 0, 0)
        values = {}
        for name in journal.LAYOUT_0_2:
            if hasattr(s, name):
                values[name] = getattr(s, name)
        values.update(now_min=200, int_start_min=100, int_reason=k.STOP_REACTION, rx_kind=k.RX_ICANS,
                      rx_grade=3, rx_start_min=100, booked_min=-1, bag_ul_per_h=11250)
        return values

    def test_L2_4_neuro_3_a_0_2_0_record_keeps_its_open_reaction_and_its_onset(self):
        st = simhal.MemStorage(journal.TOTAL_BYTES)
        st.write(0, record_0_2(self.state_0_2()))
        c, _ = new_board(st)
        self.assertEqual(c.boot(0), journal.LOAD_OK)
        s = c.s
        self.assertEqual((s.rx_icans, s.rx_icans_onset_min, s.rx_icans_g3_min, s.int_rx), (3, 100, 100, 1))
        self.assertEqual(k.resolved(s, k.RX_ICANS), k.E_WITHHOLD)    # its 3 days still run from minute 100

    def test_L2_4_other_4_a_0_2_0_decision_pending_stays_pending(self):
        values = self.state_0_2()
        values.update(rx_kind=k.RX_OTHER, rx_grade=3, decision_pending=1)   # 0.2.0 replaced the grade 4
        st = simhal.MemStorage(journal.TOTAL_BYTES)
        st.write(0, record_0_2(values))
        c, _ = new_board(st)
        self.assertEqual(c.boot(0), journal.LOAD_OK)
        self.assertEqual((c.s.rx_other, c.s.decision_pending), (4, 1))

    def test_EXT_rates_a_0_2_0_bag_is_taken_off_it_ran_at_volume_over_duration(self):
        st = simhal.MemStorage(journal.TOTAL_BYTES)
        st.write(0, record_0_2(self.state_0_2()))
        c, _ = new_board(st)
        c.boot(0)
        self.assertEqual(c.s.bag_loaded, 0)
        self.assertTrue(c.s.alarm & k.AL_BAG_EXPIRED)
        self.assertTrue(k.invariant(c.s))
        self.assertEqual(c.s.last_bag_id, 1)             # that bag cannot be hung again


if __name__ == "__main__":
    unittest.main()
