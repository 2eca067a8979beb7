"""Kernel: interruptions, cycles, reactions, overdose, power. CPython and MicroPython."""
import unittest

from fw import kernel as k
from kernel_helpers import MIN_PER_DAY, patient, load_bag, ack_all, start_bag, run


class TestInterruptions(unittest.TestCase):
    def test_L2_reinit_4h_short_pause_needs_no_ack(self):
        s = patient()
        self.assertEqual(start_bag(s, 28000, 48), k.OK)
        run(s, 60)
        k.stop(s, k.STOP_CLINICIAN)
        run(s, 239)
        self.assertEqual(s.reinit_needed, 0)
        self.assertEqual(k.start(s), k.OK)

    def test_L2_reinit_4h_flag_at_exactly_4_hours(self):
        s = patient()
        self.assertEqual(start_bag(s, 28000, 48), k.OK)
        run(s, 60)
        k.stop(s, k.STOP_CLINICIAN)
        run(s, 240)
        self.assertEqual(s.reinit_needed, 1)
        self.assertTrue(s.alarm & k.AL_REINIT)
        self.assertEqual(k.start(s), k.E_REINIT)
        k.ack(s, k.ACK_PREMED)
        self.assertEqual(k.start(s), k.E_REINIT)       # supervision too
        k.ack(s, k.ACK_SUPERVISION)
        self.assertEqual(k.start(s), k.OK)
        self.assertEqual(s.reinit_needed, 0)

    def test_L2_reinit_4h_unknown_outage_counts_as_4h(self):
        s = patient()
        self.assertEqual(start_bag(s, 28000, 48), k.OK)
        run(s, 60)
        self.assertEqual(k.power_up(s, -1), k.OK)
        self.assertEqual(s.mode, k.MODE_STOPPED)
        self.assertEqual(s.reinit_needed, 1)
        self.assertEqual(s.bag_loaded, 0)              # room time unknown: bag discarded (L2.6)
        self.assertTrue(s.alarm & k.AL_POWER)

    def test_L2_reinit_4h_known_outage_short(self):
        s = patient()
        self.assertEqual(start_bag(s, 28000, 48), k.OK)
        run(s, 60)
        self.assertEqual(k.power_up(s, 30), k.OK)
        self.assertEqual(s.mode, k.MODE_STOPPED)       # never restarts by itself
        self.assertEqual(s.reinit_needed, 0)
        self.assertEqual(s.bag_room_min, 90)
        self.assertEqual(k.start(s), k.OK)

    def test_L2_4_resume_7d_continues_same_cycle(self):
        s = patient()
        self.assertEqual(start_bag(s, 28000, 168), k.OK)
        run(s, 3 * MIN_PER_DAY)
        k.reaction(s, k.RX_CRS, 3, k.SCALE_CTCAE)
        run(s, 7 * MIN_PER_DAY)                        # exactly 7 days off
        self.assertEqual(s.cycle, 1)
        # 3 days ran, and the minute booked at the last tick before the reaction counts
        # (booked before it runs: never below what ran)
        self.assertEqual(s.cycle_run_min, 3 * MIN_PER_DAY + 1)

    def test_L2_4_new_cycle_after_more_than_7_days(self):
        s = patient()
        self.assertEqual(start_bag(s, 28000, 168), k.OK)
        run(s, 3 * MIN_PER_DAY)
        k.reaction(s, k.RX_CRS, 3, k.SCALE_CTCAE)
        run(s, 7 * MIN_PER_DAY + 1)
        self.assertEqual(s.cycle, 2)
        self.assertEqual(s.cycle_run_min, 0)
        self.assertEqual(s.need_premed, 1)


class TestCycles(unittest.TestCase):
    def test_L2_cycle_42_28_days_then_14_free(self):
        s = patient(k.IND_MRD)
        for _ in range(4):
            self.assertEqual(start_bag(s, 28000, 168), k.OK)
            run(s, 7 * MIN_PER_DAY)
        self.assertEqual(s.phase, k.PHASE_FREE)
        self.assertEqual(s.cycle_ng, 28 * 28000)
        self.assertEqual(load_bag(s, 28000, 24), k.E_FREE_INTERVAL)   # L2-cycle-42: no bag in the break
        ack_all(s)
        self.assertEqual(k.start(s), k.E_FREE_INTERVAL)
        run(s, 14 * MIN_PER_DAY - 1)
        self.assertEqual(s.phase, k.PHASE_FREE)
        run(s, 1)
        self.assertEqual(s.phase, k.PHASE_INFUSION)
        self.assertEqual(s.cycle, 2)
        self.assertEqual(start_bag(s, 28000, 24), k.OK)

    def test_L2_cycle_42_no_bag_past_day_28(self):
        s = patient(k.IND_MRD)
        for _ in range(3):
            self.assertEqual(start_bag(s, 28000, 168), k.OK)
            run(s, 7 * MIN_PER_DAY)
        self.assertEqual(start_bag(s, 28000, 168), k.OK)
        run(s, MIN_PER_DAY)
        k.stop(s, k.STOP_BAG_CHANGE)
        self.assertEqual(load_bag(s, 28000, 168), k.E_CYCLE_END)
        self.assertEqual(load_bag(s, 28000, 144 - 48), k.OK)

    def test_L2_2_cycle_84_continued_cycles_have_56_free_days(self):
        s = patient(k.IND_RR)
        k._begin_cycle(s, 6)
        self.assertEqual(s.free_len_min, 56 * MIN_PER_DAY)
        k._begin_cycle(s, 5)
        self.assertEqual(s.free_len_min, 14 * MIN_PER_DAY)

    def test_L2_1_course_mrd_ends_after_4_cycles(self):
        s = patient(k.IND_MRD)
        k._begin_cycle(s, 5)
        self.assertEqual(s.phase, k.PHASE_DONE)
        self.assertEqual(load_bag(s, 28000), k.E_COURSE_DONE)     # L2.1-course: no bag after the course
        ack_all(s)
        self.assertEqual(k.start(s), k.E_COURSE_DONE)


class TestReactions(unittest.TestCase):
    def test_L2_4_crs_4_permanent(self):
        s = patient()
        self.assertEqual(start_bag(s, 28000), k.OK)
        k.reaction(s, k.RX_CRS, 4, k.SCALE_CTCAE)
        self.assertEqual(s.locked, 1)
        self.assertEqual(s.mode, k.MODE_STOPPED)
        self.assertEqual(load_bag(s, 9000), k.E_LOCKED)
        self.assertEqual(k.start(s), k.E_LOCKED)

    def test_L2_4_restart_9_after_crs_3_then_escalate_after_7_days(self):
        s = patient()
        self.assertEqual(start_bag(s, 28000, 48), k.OK)
        run(s, 600)
        k.reaction(s, k.RX_CRS, 3, k.SCALE_CTCAE)
        self.assertEqual(k.start(s), k.E_WITHHOLD)
        run(s, 2 * MIN_PER_DAY)
        self.assertEqual(k.resolved(s, k.RX_CRS), k.OK)
        self.assertEqual(s.cap_ng_per_day, 9000)
        self.assertEqual(load_bag(s, 28000), k.E_DOSE_CAP)
        for _ in range(7):
            self.assertEqual(start_bag(s, 9000), k.OK)
            run(s, MIN_PER_DAY)
        self.assertEqual(s.cap_ng_per_day, 28000)
        self.assertEqual(start_bag(s, 28000), k.OK)

    def test_L2_4_seizure_second_is_permanent(self):
        s = patient()
        self.assertEqual(start_bag(s, 28000), k.OK)
        k.reaction(s, k.RX_SEIZURE, 3, k.SCALE_CTCAE)
        self.assertEqual(s.locked, 0)
        run(s, 3 * MIN_PER_DAY)                        # grade 3: withheld at least 3 days (L2.4-neuro-3)
        self.assertEqual(k.resolved(s, k.RX_SEIZURE), k.OK)
        k.reaction(s, k.RX_SEIZURE, 2, k.SCALE_CTCAE)
        self.assertEqual(s.locked, 1)

    def test_L2_4_seizure_first_of_grade_2_is_counted_and_therapy_goes_on(self):
        s = patient()
        self.assertEqual(start_bag(s, 28000), k.OK)
        self.assertEqual(k.reaction(s, k.RX_SEIZURE, 2, k.SCALE_CTCAE), k.OK)
        self.assertEqual((s.seizures, s.mode, s.rx_seizure, s.locked), (1, k.MODE_RUNNING, 0, 0))
        self.assertEqual(k.reaction(s, k.RX_SEIZURE, 1, k.SCALE_CTCAE), k.OK)     # more than one: permanent
        self.assertEqual((s.locked, s.lock_reason), (1, k.RX_SEIZURE))

    def test_L2_4_seizure_of_grade_3_is_withheld_like_a_grade_3_neurologic_event(self):
        s = patient()
        self.assertEqual(start_bag(s, 28000), k.OK)
        k.reaction(s, k.RX_SEIZURE, 3, k.SCALE_CTCAE)
        self.assertEqual((s.mode, s.rx_seizure), (k.MODE_STOPPED, 3))
        run(s, 3 * MIN_PER_DAY - 1)
        self.assertEqual(k.resolved(s, k.RX_SEIZURE), k.E_WITHHOLD)  # at least 3 days (L2.4-neuro-3)
        run(s, 1)
        self.assertEqual(k.resolved(s, k.RX_SEIZURE), k.OK)
        self.assertEqual(s.low_left_min, 7 * MIN_PER_DAY)   # restart at 9 mcg/day (L2.4-restart-9)

    def test_L2_4_seizure_of_grade_3_unresolved_past_7_days_is_permanent(self):
        s = patient()
        self.assertEqual(start_bag(s, 28000), k.OK)
        k.reaction(s, k.RX_SEIZURE, 3, k.SCALE_CTCAE)
        run(s, 7 * MIN_PER_DAY)
        self.assertEqual(s.locked, 0)
        run(s, 1)
        self.assertEqual((s.locked, s.lock_reason), (1, k.RX_SEIZURE))

    def test_L2_4_seizure_of_grade_3_at_9_mcg_and_of_grade_4_are_permanent(self):
        s = patient(k.IND_RR)
        self.assertEqual(start_bag(s, 9000), k.OK)
        k.reaction(s, k.RX_SEIZURE, 3, k.SCALE_CTCAE)                 # began at 9 mcg/day (L2.4-neuro-3)
        self.assertEqual(s.locked, 1)
        s = patient()
        self.assertEqual(start_bag(s, 28000), k.OK)
        k.reaction(s, k.RX_SEIZURE, 4, k.SCALE_CTCAE)                 # L2.4-neuro-4
        self.assertEqual((s.locked, s.lock_reason), (1, k.RX_SEIZURE))

    def test_L2_4_neuro_3_withhold_at_least_3_days(self):
        s = patient()
        self.assertEqual(start_bag(s, 28000), k.OK)
        k.reaction(s, k.RX_NEURO, 3, k.SCALE_CTCAE)
        run(s, 3 * MIN_PER_DAY - 1)
        self.assertEqual(k.resolved(s, k.RX_NEURO), k.E_WITHHOLD)
        run(s, 1)
        self.assertEqual(k.resolved(s, k.RX_NEURO), k.OK)

    def test_L2_4_neuro_3_at_9_mcg_is_permanent(self):
        s = patient(k.IND_RR)
        self.assertEqual(start_bag(s, 9000), k.OK)
        k.reaction(s, k.RX_NEURO, 3, k.SCALE_CTCAE)
        self.assertEqual(s.locked, 1)

    def test_L2_4_neuro_3_occurred_at_9_mcg_means_the_bag_running_not_the_cap_in_force(self):
        # a bag at 9 mcg/day while the cap in force is 28 (no step or restart window): a grade 3
        # event began at 9 mcg/day: permanent
        s = patient()
        self.assertEqual(start_bag(s, 9000, 24), k.OK)
        run(s, 600)
        self.assertEqual((s.cap_ng_per_day, s.bag_ng_per_day), (28000, 9000))
        k.reaction(s, k.RX_NEURO, 3, k.SCALE_CTCAE)
        self.assertEqual(s.locked, 1)

    def test_L2_2_step_a_low_dose_bag_ends_the_day_the_dose_steps_up(self):
        # R/R: a 7-day bag at 9 mcg/day hung on day 2 would run into day 8: it ends when the
        # 7 days at the step dose are done (never an under-dose on day 8, L2.5-errors)
        s = patient(k.IND_RR)
        self.assertEqual(start_bag(s, 9000, 24), k.OK)
        run(s, MIN_PER_DAY)                            # day 1; the 24 h bag ended
        self.assertEqual(start_bag(s, 9000, 168), k.OK)
        run(s, 6 * MIN_PER_DAY - 1)
        self.assertEqual((s.mode, s.bag_loaded), (k.MODE_RUNNING, 1))   # day 7's last minute runs
        run(s, 1)
        self.assertEqual((s.mode, s.bag_loaded, s.step_run_min), (k.MODE_STOPPED, 0, 7 * MIN_PER_DAY))
        self.assertTrue(s.alarm & k.AL_BAG_END)
        self.assertEqual(s.course_ng, 7 * 9000)        # 7 days at 9 mcg/day, no more
        self.assertEqual(load_bag(s, 28000, 24), k.OK)
        ack_all(s)
        self.assertEqual(k.start(s), k.OK)             # the step dose (premedication acknowledged)

    def test_L2_4_restart_9_a_low_dose_bag_ends_when_the_7_days_end_and_premed_comes_again(self):
        s = patient(k.IND_RR)
        for _ in range(8):                             # past the step up: 28 mcg/day
            if s.bag_loaded == 0:
                self.assertEqual(start_bag(s, 9000 if s.step_run_min < 7 * MIN_PER_DAY else 28000), k.OK)
            run(s, MIN_PER_DAY)
        k.stop(s, k.STOP_CLINICIAN)
        k.reaction(s, k.RX_CRS, 3, k.SCALE_CTCAE)
        self.assertEqual(k.resolved(s, k.RX_CRS), k.OK)           # restart at 9 for 7 days (L2.4-restart-9)
        k.remove_bag(s)
        self.assertEqual(start_bag(s, 9000, 24), k.OK)
        run(s, 5 * MIN_PER_DAY)                         # the day bag ran, then 4 days stopped
        self.assertEqual(s.low_left_min, 6 * MIN_PER_DAY)   # the window counts infusion days
        self.assertEqual(start_bag(s, 9000, 168), k.OK)     # 7 days at 9: only 6 are left
        run(s, 6 * MIN_PER_DAY)
        self.assertEqual((s.low_left_min, s.bag_loaded), (0, 0))    # ended with the window
        self.assertTrue(s.alarm & k.AL_BAG_END)
        self.assertEqual(load_bag(s, 28000, 24), k.OK)
        k.ack(s, k.ACK_SUPERVISION)
        self.assertEqual(k.start(s), k.E_STEP_PREMED)   # L2-premed: the escalation is a step dose
        k.ack(s, k.ACK_PREMED)
        self.assertEqual(k.start(s), k.OK)

    def test_L2_4_neuro_3_after_a_stop_at_28_mcg_is_not_at_9_though_the_cap_is(self):
        # CRS grade 3 at 28 mcg/day, resolved: the restart window makes 9 mcg/day the cap in
        # force, but nothing ran at 9 yet; a grade 3 ICANS now began after a 28 mcg/day bag
        s = patient()
        self.assertEqual(start_bag(s, 28000, 48), k.OK)
        run(s, 600)
        k.reaction(s, k.RX_CRS, 3, k.SCALE_CTCAE)
        run(s, 60)
        self.assertEqual(k.resolved(s, k.RX_CRS), k.OK)
        self.assertEqual(s.cap_ng_per_day, 9000)
        self.assertEqual(k.reaction(s, k.RX_ICANS, 3, k.SCALE_CTCAE), k.OK)
        self.assertEqual((s.locked, s.rx_icans), (0, 3))    # withheld, not discontinued
        # and once a 9 mcg/day bag has run, a grade 3 event is at the low dose
        run(s, 3 * MIN_PER_DAY)
        self.assertEqual(k.resolved(s, k.RX_ICANS), k.OK)
        k.remove_bag(s)
        self.assertEqual(start_bag(s, 9000, 24), k.OK)
        k.reaction(s, k.RX_NEURO, 3, k.SCALE_CTCAE)
        self.assertEqual(s.locked, 1)

    def test_L2_4_neuro_3_more_than_7_days_is_permanent(self):
        s = patient()
        self.assertEqual(start_bag(s, 28000), k.OK)
        k.reaction(s, k.RX_NEURO, 3, k.SCALE_CTCAE)
        run(s, 7 * MIN_PER_DAY + 1)
        self.assertEqual(s.locked, 1)

    def test_L2_4_neuro_4_permanent(self):
        s = patient()
        k.reaction(s, k.RX_NEURO, 4, k.SCALE_CTCAE)
        self.assertEqual(s.locked, 1)

    def test_L2_4_other_3_more_than_14_days_is_permanent(self):
        s = patient()
        self.assertEqual(start_bag(s, 28000), k.OK)
        k.reaction(s, k.RX_OTHER, 3, k.SCALE_CTCAE)
        run(s, 14 * MIN_PER_DAY)
        self.assertEqual(s.locked, 0)
        run(s, 1)
        self.assertEqual(s.locked, 1)

    def test_L2_4_other_4_asks_the_clinician(self):
        s = patient()
        self.assertEqual(start_bag(s, 28000), k.OK)
        k.reaction(s, k.RX_OTHER, 4, k.SCALE_CTCAE)
        self.assertEqual(s.decision_pending, 1)
        self.assertEqual(s.locked, 0)
        self.assertEqual(k.resolved(s, k.RX_OTHER), k.E_DECISION)   # decided first
        self.assertEqual(k.decide(s, 0), k.OK)
        self.assertEqual(k.resolved(s, k.RX_OTHER), k.OK)
        self.assertEqual(s.cap_ng_per_day, 9000)
        s2 = patient()
        k.reaction(s2, k.RX_OTHER, 4, k.SCALE_CTCAE)
        self.assertEqual(k.decide(s2, 1), k.OK)
        self.assertEqual(s2.locked, 1)

    def test_L2_4_restart_9_icans_grade_2_interrupts(self):
        s = patient()
        self.assertEqual(start_bag(s, 28000), k.OK)
        k.reaction(s, k.RX_ICANS, 2, k.SCALE_CTCAE)
        self.assertEqual(s.mode, k.MODE_STOPPED)
        self.assertEqual(k.resolved(s, k.RX_ICANS), k.OK)
        self.assertEqual(s.low_left_min, 7 * MIN_PER_DAY)

    def test_EXT_overdose_12h_no_restart_before_12_hours(self):
        s = patient()
        self.assertEqual(start_bag(s, 28000, 48), k.OK)
        k.overdose(s)
        self.assertEqual(s.mode, k.MODE_STOPPED)
        run(s, 719)
        ack_all(s)
        self.assertEqual(k.start(s), k.E_OVERDOSE_12H)
        run(s, 1)
        ack_all(s)
        self.assertEqual(k.start(s), k.OK)


class TestFaults(unittest.TestCase):
    def test_L2_reinit_4h_clock_fault_stops_and_counts_unknown(self):
        s = patient()
        self.assertEqual(start_bag(s, 28000, 48), k.OK)
        k.fault(s)
        self.assertEqual(s.mode, k.MODE_STOPPED)
        self.assertEqual(s.reinit_needed, 1)
        self.assertEqual(k.start(s), k.E_FAULT)
        self.assertEqual(k.clear_fault(s), k.OK)
        ack_all(s)
        self.assertEqual((s.cycle_ask, k.start(s)), (1, k.E_DECISION))   # L2.4-new-cycle: length unknown
        self.assertEqual(k.cycle_decision(s, 0), k.OK)
        self.assertEqual(k.start(s), k.OK)

    def test_bad_arguments_leave_state_unchanged(self):
        s = patient()
        self.assertEqual(start_bag(s, 9000), k.OK)
        snap = sorted(s.__dict__.items())
        self.assertEqual(k.stop(s, 99), k.E_ARG)
        self.assertEqual(k.ack(s, 9), k.E_ARG)
        self.assertEqual(k.reaction(s, 9, 3, k.SCALE_CTCAE), k.E_ARG)
        self.assertEqual(k.reaction(s, k.RX_CRS, 5, k.SCALE_CTCAE), k.E_ARG)
        self.assertEqual(sorted(s.__dict__.items()), snap)

    def test_L2_reinit_4h_backwards_outage_is_unknown(self):
        # a power-up is never ignored: the motor lost power whatever the clock says
        s = patient()
        self.assertEqual(start_bag(s, 28000, 48), k.OK)
        run(s, 60)
        self.assertEqual(k.power_up(s, -7), k.E_ARG)
        self.assertEqual(s.mode, k.MODE_STOPPED)
        self.assertEqual(s.reinit_needed, 1)
        self.assertEqual(s.bag_loaded, 0)


if __name__ == "__main__":
    unittest.main()
