"""Power-safe record: old-or-new after a cut at any byte, corrupt never trusted.
Runs on CPython and MicroPython."""
import unittest

from fw import kernel as k
from fw import journal, simhal, pump


def new_board(storage=None):
    storage = storage or simhal.MemStorage(journal.TOTAL_BYTES)
    c = pump.Controller(storage, simhal.SimClock(), simhal.SimMotor())
    return c, storage


def therapy(c):
    """Patient, bag, start: the record now holds a running infusion."""
    c.boot()
    assert c.command(pump.CMD_SETUP, [4242, k.IND_MRD, 70000, 0]) == k.OK
    assert c.command(pump.CMD_BAG, [4242, 28000, 240000, 24, 0, 0, 0]) == k.OK
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
        class FailingStorage(simhal.MemStorage):
            fail = False

            def write(self, off, data):
                if self.fail:
                    return False
                return simhal.MemStorage.write(self, off, data)

        st = FailingStorage(journal.TOTAL_BYTES)
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


if __name__ == "__main__":
    unittest.main()
