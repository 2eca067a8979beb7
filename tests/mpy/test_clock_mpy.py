"""Clock and timing faults on the controller (pump.Controller.poll with simhal.SimClock):
wrap-around, late ticks, jumps either way, repeated faults. Runs on CPython and MicroPython;
the random campaign is tests/test_clock_faults.py, the long one bench/hardening_clock.py."""
import unittest

from fw import kernel as k
from fw import journal, pump

from clock_rig import MS_PER_MIN, WRAP_PERIOD_MS, Rig, start_without_acks

WEEK_MS = 7 * 1440 * MS_PER_MIN


def fault_events(rig):
    return [e for e in rig.c.journal.events() if e[2] == journal.EV_FAULT]


class TestClockFaults(unittest.TestCase):
    def test_L2_reinit_4h_forward_jump_while_running_stops_and_counts_unknown(self):
        r = Rig()
        self.assertEqual(r.therapy(), k.OK)
        r.minutes(30)
        self.assertEqual(r.clock_step(pump.MAX_GAP_MS + 1, pump.MAX_GAP_MS + 1), -1)
        s = r.c.s
        self.assertEqual(s.mode, k.MODE_STOPPED)
        self.assertEqual(r.motor.ul_per_h, 0)
        self.assertEqual(s.fault, 1)
        self.assertEqual(s.int_unknown, 1)
        self.assertEqual(s.reinit_needed, 1)            # 5 min of clock, yet counted as 4 h or more
        self.assertEqual(s.int_start_min, 30)
        self.assertEqual(r.start(), k.E_FAULT)

    def test_L2_6_bag_24_48_clock_fault_discards_the_bag_as_an_unknown_outage_does(self):
        r = Rig()
        self.assertEqual(r.therapy(48), k.OK)
        r.minutes(10)
        r.clock_step(-1000, 0)
        self.assertEqual(r.c.s.bag_loaded, 0)           # room-temperature time unknown
        self.assertTrue(r.c.s.alarm & k.AL_BAG_EXPIRED)
        r2 = Rig()
        self.assertEqual(r2.therapy(48), k.OK)
        r2.minutes(10)
        r2.reboot_unknown(1000)
        self.assertEqual(r2.c.s.bag_loaded, 0)
        self.assertTrue(r2.c.s.alarm & k.AL_BAG_EXPIRED)

    def test_wrap_around_at_2_30_ms_is_not_a_fault_and_keeps_every_minute(self):
        r = Rig(period_ms=WRAP_PERIOD_MS, start_ms=WRAP_PERIOD_MS - 3 * MS_PER_MIN - 17000)
        self.assertEqual(r.therapy(), k.OK)
        for ms in (37000, 37000, 59999, 1, 60000, 45000, 300000, 7000):
            self.assertTrue(r.clock_step(ms, ms) >= 0)  # the rig checks minutes and pending too
        self.assertTrue(r.clock.ms() < 10 * MS_PER_MIN)  # it did wrap
        self.assertEqual(r.c.s.now_min, 9)               # 546000 ms
        self.assertEqual(r.c.pending_ms, 6000)
        self.assertEqual(r.c.s.fault, 0)
        self.assertEqual(r.c.s.mode, k.MODE_RUNNING)

    def test_L2_4_restart_9_late_tick_catch_up_after_28_in_the_same_window_goes_on(self):
        # the 24 h guard bounds a window by the highest cap in force in it (28 mcg/day): a
        # restart at 9 after drug at 28 in the same window is never cut by it, late ticks included
        r = Rig()
        self.assertEqual(r.therapy(), k.OK)              # 28 mcg/day
        r.minutes(461)                                   # 462 minutes booked (START books the first):
                                                         # 8983 ng in this 24 h window
        self.assertEqual(r.command(pump.CMD_REACTION, [k.RX_CRS, 3, 1]), k.OK)
        self.assertEqual(r.command(pump.CMD_RESOLVED, [k.RX_CRS]), k.OK)
        self.assertEqual(r.c.s.cap_ng_per_day, 9000)     # L2.4-restart-9
        self.assertEqual(r.bag(24, 9000), k.OK)
        r.ack()
        self.assertEqual(r.start(), k.OK)
        self.assertEqual(r.c.s.day_ng, 8989)             # START booked its first minute of 6 ng
        self.assertEqual(r.clock_step(pump.MAX_GAP_MS, pump.MAX_GAP_MS), 5)
        s = r.c.s
        self.assertEqual(s.bag_ng, 6 * 9000 // 1440)     # 6 minutes at 9 mcg/day, the 6th in flight
        self.assertEqual(s.day_ng, 8983 + s.bag_ng)      # above 9000, within the window's 28000
        self.assertEqual((s.mode, r.motor.ul_per_h > 0), (k.MODE_RUNNING, True))
        self.assertFalse(s.alarm & k.AL_CAP)

    def test_pending_ms_is_kept_across_a_clock_fault(self):
        r = Rig()
        r.clock_step(59000, 59000)
        r.clock_step(-5000, 0)
        self.assertEqual(r.c.s.fault, 1)
        self.assertEqual(r.c.pending_ms, 59000)          # measured before the fault: real time
        self.assertEqual(r.clock_step(1000, 1000), 1)
        self.assertEqual(r.c.s.now_min, 1)

    def test_backward_jitter_faults_every_time_and_is_recorded_once(self):
        r = Rig()
        self.assertEqual(r.therapy(), k.OK)
        r.minutes(5)
        for _ in range(40):
            self.assertEqual(r.clock_step(-1000, 0), -1)
            ticks = (r.c.pending_ms + 21000) // MS_PER_MIN
            self.assertEqual(r.clock_step(1000 + 20000, 20000), ticks)
        self.assertEqual(len(fault_events(r)), 1)        # the ring keeps the therapy events
        self.assertEqual(fault_events(r)[0][3], pump.FAULT_CLOCK)
        self.assertEqual(r.c.s.reinit_needed, 1)
        self.assertEqual(r.motor.ul_per_h, 0)
        self.assertEqual(r.clear_fault(), k.OK)
        r.clock_step(-1, 0)                              # a new fault after clearing is recorded
        self.assertEqual(len(fault_events(r)), 2)

    def test_late_tick_of_5_min_is_caught_up_and_5_min_1_ms_is_a_fault(self):
        r = Rig()
        self.assertEqual(r.therapy(), k.OK)
        self.assertEqual(r.clock_step(pump.MAX_GAP_MS, pump.MAX_GAP_MS), 5)
        # START booked the first minute, each of the 5 ticks the next: 6 minutes, the 6th running
        self.assertEqual(r.c.s.course_ng, 6 * 28000 // 1440)
        self.assertEqual(r.c.s.mode, k.MODE_RUNNING)
        self.assertEqual(r.clock_step(pump.MAX_GAP_MS + 1, pump.MAX_GAP_MS + 1), -1)
        self.assertEqual(r.c.s.mode, k.MODE_STOPPED)

    def test_L2_reinit_4h_weeks_long_jump_needs_acknowledgements_to_restart(self):
        r = Rig()
        self.assertEqual(r.therapy(168), k.OK)
        r.minutes(60)
        self.assertEqual(r.stop(), k.OK)
        r.minutes(10)                                    # a 10 min interruption, then 3 weeks
        r.clock_step(3 * WEEK_MS, 3 * WEEK_MS)
        self.assertEqual(r.clear_fault(), k.OK)
        self.assertEqual(r.bag(168), k.OK)
        # three weeks no clock measured: more than 7 days or not, the pump cannot know; the
        # clinician decides the cycle (L2.4-new-cycle), then re-initiates (L2-reinit-4h)
        self.assertEqual(start_without_acks(r.c.s), k.E_DECISION)
        self.assertEqual(r.command(pump.CMD_CYCLE_DECISION, [0]), k.OK)
        self.assertEqual(start_without_acks(r.c.s), k.E_REINIT)
        self.assertEqual(r.start(), k.E_REINIT)
        r.ack()
        self.assertEqual(r.start(), k.OK)


if __name__ == "__main__":
    unittest.main()
