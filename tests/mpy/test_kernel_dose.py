"""Kernel: caps, step dose, bag acceptance, constant rate. CPython and MicroPython."""
import unittest

from fw import kernel as k
from kernel_helpers import PID, MIN_PER_DAY, patient, load_bag, ack_all, start_bag, run, rate, infused


class TestCaps(unittest.TestCase):
    def test_L2_dose_28_fixed_cap_at_45_kg_exactly(self):
        s = patient(k.IND_MRD, 45000, 0)
        self.assertEqual(s.cap_full_ng_per_day, 28000)
        self.assertEqual(s.cap_low_ng_per_day, 9000)

    def test_L2_weight_45_below_45_kg_is_bsa_based(self):
        s = patient(k.IND_MRD, 44999, 10000)          # 1.0 m2
        self.assertEqual(s.cap_full_ng_per_day, 15000)  # 15 mcg/m2/day
        self.assertEqual(s.cap_low_ng_per_day, 5000)    # 5 mcg/m2/day

    def test_L2_dose_28_bsa_cap_reached_exactly(self):
        s = patient(k.IND_MRD, 40000, 18667)          # 15 * 1.8667 = 28.0005 -> capped
        self.assertEqual(s.cap_full_ng_per_day, 28000)
        s = patient(k.IND_MRD, 40000, 18666)
        self.assertEqual(s.cap_full_ng_per_day, 27999)

    def test_L2_2_step_bsa_cap_not_above_9(self):
        s = patient(k.IND_RR, 40000, 19000)           # 5 * 1.9 = 9.5 -> 9
        self.assertEqual(s.cap_low_ng_per_day, 9000)
        self.assertEqual(s.cap_ng_per_day, 9000)

    def test_L2_dose_28_bsa_missing_below_45_kg_refused(self):
        s = k.State()
        self.assertEqual(k.setup(s, PID, k.IND_MRD, 30000, 0, 0), k.E_BSA)
        self.assertEqual(s.mode, k.MODE_NO_PATIENT)

    def test_L2_weight_45_absurd_weights_refused_state_unchanged(self):
        for w in (-3000, 0, 499, 300001):
            s = k.State()
            self.assertEqual(k.setup(s, PID, k.IND_MRD, w, 10000, 0), k.E_WEIGHT)
            self.assertEqual(s.mode, k.MODE_NO_PATIENT)
            self.assertEqual(s.cap_full_ng_per_day, 0)

    def test_L1_unknown_indication_refused(self):
        s = k.State()
        self.assertEqual(k.setup(s, PID, 7, 70000, 0, 0), k.E_INDICATION)

    def test_setup_twice_refused(self):
        s = patient()
        self.assertEqual(k.setup(s, PID + 1, k.IND_RR, 50000, 0, 0), k.E_STATE)
        self.assertEqual(s.patient_id, PID)


class TestStep(unittest.TestCase):
    def test_L2_2_step_rr_days_1_7_refuse_28(self):
        s = patient(k.IND_RR)
        self.assertEqual(load_bag(s, 28000), k.E_DOSE_CAP)
        self.assertEqual(s.bag_loaded, 0)
        self.assertEqual(start_bag(s, 9000), k.OK)

    def test_L2_2_step_rr_step_up_on_day_8_needs_premed(self):
        s = patient(k.IND_RR)
        for _ in range(7):
            if s.bag_loaded == 0:
                self.assertEqual(start_bag(s, 9000), k.OK)
            run(s, MIN_PER_DAY)
        self.assertEqual(s.step_run_min, 7 * MIN_PER_DAY)
        self.assertEqual(s.cap_ng_per_day, 28000)
        self.assertEqual(load_bag(s, 28000), k.OK)
        self.assertEqual(k.start(s), k.E_STEP_PREMED)             # L2-premed before the step dose
        self.assertEqual(k.ack(s, k.ACK_PREMED), k.OK)
        self.assertEqual(k.start(s), k.OK)
        self.assertEqual(s.step_premed_done, 1)
        run(s, MIN_PER_DAY)
        self.assertEqual(s.course_ng, 7 * 9000 + 28000)

    def test_L2_premed_counts_only_within_the_hour_before_the_start(self):
        s = patient()
        self.assertEqual(load_bag(s, 28000), k.OK)
        k.ack(s, k.ACK_SUPERVISION)
        k.ack(s, k.ACK_PREMED)
        run(s, 61)                                     # 61 min: no longer "within 1 hour prior"
        before = dict(s.__dict__)
        self.assertEqual(k.start(s), k.E_REINIT)
        self.assertEqual(dict(s.__dict__), before)
        k.ack(s, k.ACK_PREMED)
        run(s, 60)                                     # exactly 1 hour: still counts
        self.assertEqual(k.start(s), k.OK)
        self.assertEqual(s.premed_acked, 0)            # used up by the start it authorised

    def test_L2_premed_before_the_step_dose_counts_only_within_the_hour(self):
        s = patient(k.IND_RR)
        for _ in range(7):
            if s.bag_loaded == 0:
                self.assertEqual(start_bag(s, 9000), k.OK)
            run(s, MIN_PER_DAY)
        self.assertEqual(load_bag(s, 28000), k.OK)
        k.ack(s, k.ACK_PREMED)
        run(s, 90)
        self.assertEqual(k.start(s), k.E_STEP_PREMED)  # given 90 min ago: again, please
        k.ack(s, k.ACK_PREMED)
        self.assertEqual(k.start(s), k.OK)

    def test_L2_2_step_mrd_has_no_step(self):
        s = patient(k.IND_MRD)
        self.assertEqual(start_bag(s, 28000), k.OK)


class TestBag(unittest.TestCase):
    def test_L2_5_durations_only_the_five(self):
        s = patient()
        for h in (12, 25, 36, 120, 0, -24):
            self.assertEqual(k.bag(s, PID, s.last_bag_id + 1, 9000, infused(h), rate(h), h, 0, 0, 0), k.E_DURATION)
        for h in (24, 48, 72, 96, 168):
            self.assertEqual(load_bag(s, 9000, h), k.OK)

    def test_L2_5_durations_preservative_must_match(self):
        s = patient()
        self.assertEqual(k.bag(s, PID, s.last_bag_id + 1, 9000, infused(24), rate(24), 24, 1, 0, 0), k.E_PRESERVATIVE)
        self.assertEqual(k.bag(s, PID, s.last_bag_id + 1, 27000, infused(72), rate(72), 72, 0, 0, 0), k.E_PRESERVATIVE)

    def test_L2_5_min_weight_5_4_kg(self):
        s = patient(k.IND_MRD, 5399, 3000)
        self.assertEqual(load_bag(s, 1500, 168), k.E_MIN_WEIGHT)
        self.assertEqual(load_bag(s, 1500, 24), k.OK)
        s = patient(k.IND_MRD, 5400, 3000)
        self.assertEqual(load_bag(s, 1500, 168), k.OK)

    def test_L2_dose_28_bag_over_cap_refused_state_unchanged(self):
        s = patient()
        self.assertEqual(load_bag(s, 9000), k.OK)
        seq = s.bag_seq
        self.assertEqual(load_bag(s, 28001), k.E_DOSE_CAP)
        self.assertEqual(s.bag_seq, seq)
        self.assertEqual(s.bag_ng_per_day, 9000)

    def test_L2_dose_28_bag_rate_rounds_up_against_the_cap(self):
        s = patient(k.IND_MRD, 40000, 12345)             # cap 18517.5 ng/day -> 18517
        self.assertEqual(s.cap_full_ng_per_day, 18517)
        self.assertEqual(k.bag(s, PID, s.last_bag_id + 1, 3 * 18517, infused(72), rate(72), 72, 1, 0, 0), k.OK)
        self.assertEqual(k.bag(s, PID, s.last_bag_id + 1, 3 * 18517 + 1, infused(72), rate(72), 72, 1, 0, 0), k.E_DOSE_CAP)
        self.assertEqual(k.bag(s, PID, s.last_bag_id + 1, 7 * 18517 + 1, infused(168), rate(168), 168, 1, 0, 0), k.E_DOSE_CAP)

    def test_L2_5_errors_bag_for_another_patient(self):
        s = patient()
        self.assertEqual(k.bag(s, PID + 1, s.last_bag_id + 1, 9000, infused(24), rate(24), 24, 0, 0, 0), k.E_PATIENT)

    def test_L2_6_bag_24_48_storage_includes_infusion_time(self):
        s = patient()
        self.assertEqual(load_bag(s, 9000, 48, room_min=0), k.OK)
        self.assertEqual(load_bag(s, 9000, 48, room_min=1), k.E_STORAGE)      # 48 h room limit
        self.assertEqual(load_bag(s, 9000, 24, room_min=24 * 60), k.OK)
        self.assertEqual(load_bag(s, 9000, 24, fridge_min=8 * MIN_PER_DAY + 1), k.E_STORAGE)

    def test_L2_6_bag_72_96_and_7d_limits(self):
        s = patient()
        self.assertEqual(load_bag(s, 9000, 72, room_min=24 * 60), k.OK)
        self.assertEqual(load_bag(s, 9000, 72, room_min=24 * 60 + 1), k.E_STORAGE)
        self.assertEqual(load_bag(s, 9000, 168, fridge_min=14 * MIN_PER_DAY), k.OK)
        self.assertEqual(load_bag(s, 9000, 168, fridge_min=14 * MIN_PER_DAY + 1), k.E_STORAGE)
        self.assertEqual(load_bag(s, 9000, 24, room_min=-1), k.E_STORAGE)

    def test_L2_constant_rate_fixed_for_bag_life(self):
        s = patient()
        self.assertEqual(start_bag(s, 28000), k.OK)
        rate = s.motor_ul_per_h
        self.assertEqual(rate, 10000)                  # 240 mL over 24 h (EXT-rates)
        for _ in range(600):
            k.tick(s)
            self.assertEqual(s.motor_ul_per_h, rate)
        self.assertEqual(load_bag(s, 9000), k.E_STATE)  # no bag swap while running

    def test_L2_5_durations_bag_ends_at_its_duration(self):
        s = patient()
        self.assertEqual(start_bag(s, 28000), k.OK)
        run(s, MIN_PER_DAY - 1)
        self.assertEqual(s.mode, k.MODE_RUNNING)
        run(s, 1)
        self.assertEqual(s.mode, k.MODE_STOPPED)
        self.assertEqual(s.bag_loaded, 0)
        self.assertTrue(s.alarm & k.AL_BAG_END)
        self.assertEqual(s.course_ng, 28000)
        self.assertEqual(s.course_ul, 240000)

    def test_L2_6_bag_24_48_expires_at_room_limit_while_paused(self):
        s = patient()
        self.assertEqual(load_bag(s, 9000, 24, room_min=24 * 60), k.OK)
        ack_all(s)
        self.assertEqual(k.start(s), k.OK)
        run(s, 600)
        self.assertEqual(k.stop(s, k.STOP_CLINICIAN), k.OK)
        run(s, 840)                                    # 24 h + 1440 min at room temperature
        self.assertEqual(s.bag_loaded, 0)
        self.assertTrue(s.alarm & k.AL_BAG_EXPIRED)

    def test_EXT_no_flush_refused(self):
        s = patient()
        self.assertEqual(start_bag(s, 9000), k.OK)
        before = s.course_ng
        self.assertEqual(k.flush(s), k.E_NO_FLUSH)
        self.assertEqual(s.course_ng, before)

    def test_EXT_no_flush_no_catch_up_after_pause(self):
        s = patient()
        self.assertEqual(start_bag(s, 28000, 48), k.OK)
        run(s, 600)
        k.stop(s, k.STOP_CLINICIAN)
        run(s, 120)
        self.assertEqual(k.start(s), k.OK)
        run(s, 1440)
        # the 24 h after resuming deliver exactly one day at the bag's rate, no more
        self.assertTrue(s.day_ng <= 28000)
        self.assertEqual(s.motor_ul_per_h, 240000 // 48)


class TestBooking(unittest.TestCase):
    """Each minute is booked before the motor runs it, and the motor runs every booked minute."""

    def test_L2_dose_28_start_books_the_first_minute_before_the_motor_runs(self):
        s = patient()
        self.assertEqual(load_bag(s, 28000), k.OK)
        ack_all(s)
        self.assertEqual(k.start(s), k.OK)
        self.assertEqual((s.mode, s.bag_run_min, s.cycle_run_min), (k.MODE_RUNNING, 1, 1))
        self.assertEqual(s.course_ng, 28000 // MIN_PER_DAY)      # the minute now running is on record
        self.assertEqual(s.day_ng, s.course_ng)

    def test_L2_dose_28_start_refused_when_its_first_minute_would_pass_the_24h_guard(self):
        # the guard is a last line (at most one minute is booked per kernel minute, so a bag
        # within the cap never reaches it): shown on a window filled by hand
        s = patient()
        self.assertEqual(start_bag(s, 28000, 48), k.OK)
        run(s, 600)
        self.assertEqual(k.stop(s, k.STOP_CLINICIAN), k.OK)
        run(s, 1)                                      # a new kernel minute: START would book one
        s.day_ng = s.day_cap_ng
        before = dict(s.__dict__)
        self.assertEqual(k.start(s), k.E_DOSE_CAP)     # known at START: no OK followed by a guard stop
        self.assertEqual(dict(s.__dict__), before)

    def test_L2_dose_28_a_pause_within_a_minute_resumes_it_and_the_bag_gives_its_dose_exactly(self):
        s = patient()
        self.assertEqual(start_bag(s, 28000, 24), k.OK)
        run(s, 600)
        booked = s.course_ng
        self.assertEqual(k.stop(s, k.STOP_CLINICIAN), k.OK)
        self.assertEqual(k.start(s), k.OK)             # the same kernel minute: the booked minute goes on
        self.assertEqual(s.course_ng, booked)
        run(s, MIN_PER_DAY - 600)
        self.assertEqual((s.bag_loaded, s.course_ng), (0, 28000))    # the bag, exactly; no guard stop
        self.assertFalse(s.alarm & k.AL_CAP)

    def test_L2_4_restart_9_in_the_same_24h_window_as_28_is_never_stopped_by_the_guard(self):
        # the guard bounds the window by the highest cap in force in it (28 mcg/day): drug given
        # at 28 earlier in the window never stops a restart at 9 (L2.5-errors: no cut-off)
        s = patient()
        self.assertEqual(start_bag(s, 28000, 24), k.OK)
        run(s, 600)
        k.reaction(s, k.RX_CRS, 3, k.SCALE_CTCAE)
        self.assertEqual(k.resolved(s, k.RX_CRS), k.OK)
        k.remove_bag(s)
        self.assertEqual(s.cap_ng_per_day, 9000)
        self.assertTrue(s.day_ng > 9000)
        self.assertEqual(start_bag(s, 9000, 24), k.OK)
        run(s, MIN_PER_DAY)
        self.assertEqual(s.mode, k.MODE_STOPPED)        # the day bag ran to its end...
        self.assertTrue(s.alarm & k.AL_BAG_END)
        self.assertFalse(s.alarm & k.AL_CAP)            # ...never cut by the guard

    def test_L2_dose_28_a_known_outage_is_time_of_the_24h_window(self):
        s = patient()
        self.assertEqual(start_bag(s, 28000, 48), k.OK)
        run(s, 1199)                                   # 20 h booked
        self.assertEqual(k.power_up(s, 30), k.OK)      # 30 min without power: the window goes on
        self.assertEqual(s.day_min, 1199 + 30)
        self.assertEqual(k.start(s), k.OK)
        run(s, 1440 - 1199 - 30)                       # to the end of the window: never the guard
        self.assertEqual(s.mode, k.MODE_RUNNING)
        self.assertFalse(s.alarm & k.AL_CAP)

    def test_L2_5_durations_a_bag_stopped_in_its_last_minute_ends_at_the_next_tick(self):
        s = patient()
        self.assertEqual(start_bag(s, 28000), k.OK)
        run(s, MIN_PER_DAY - 1)                        # the 1440th minute is booked and running
        self.assertEqual(s.bag_run_min, MIN_PER_DAY)
        self.assertEqual(k.stop(s, k.STOP_CLINICIAN), k.OK)
        ack_all(s)
        self.assertEqual(k.start(s), k.E_NO_BAG)       # no minute left in the bag
        run(s, 1)
        self.assertEqual(s.bag_loaded, 0)
        self.assertTrue(s.alarm & k.AL_BAG_END)
        self.assertEqual(s.course_ng, 28000)           # the bag, exactly, never more


class TestBagIdentity(unittest.TestCase):
    """A bag carries its identity from the pharmacy label: once hung, its clocks never restart."""

    def test_L2_6_bag_24_48_the_loaded_bags_order_sent_again_keeps_its_clocks(self):
        s = patient()
        self.assertEqual(k.bag(s, PID, 7, 28000, infused(24), rate(24), 24, 0, 600, 0), k.OK)
        ack_all(s)
        self.assertEqual(k.start(s), k.OK)
        run(s, 20 * 60)
        self.assertEqual(k.stop(s, k.STOP_BAG_CHANGE), k.OK)
        before = dict(s.__dict__)
        # a retry whose reply was lost: the same order again changes nothing
        self.assertEqual(k.bag(s, PID, 7, 28000, infused(24), rate(24), 24, 0, 600, 0), k.OK)
        self.assertEqual(dict(s.__dict__), before)
        self.assertEqual(s.bag_room_min, 600 + 20 * 60)       # room time goes on (L2.6-bag-24-48)

    def test_L2_6_bag_24_48_a_bag_hung_before_never_starts_its_clocks_again(self):
        s = patient()
        self.assertEqual(k.bag(s, PID, 5, 56000, infused(48), rate(48), 48, 0, 0, 0), k.OK)
        ack_all(s)
        self.assertEqual(k.start(s), k.OK)
        run(s, 60)
        k.stop(s, k.STOP_BAG_CHANGE)
        self.assertEqual(k.remove_bag(s), k.OK)
        before = dict(s.__dict__)
        self.assertEqual(k.bag(s, PID, 5, 56000, infused(48), rate(48), 48, 0, 0, 0), k.E_BAG_ID)   # removed, hung again
        self.assertEqual(k.bag(s, PID, 4, 56000, infused(48), rate(48), 48, 0, 0, 0), k.E_BAG_ID)   # older than one hung
        self.assertEqual(dict(s.__dict__), before)
        self.assertEqual(k.bag(s, PID, 6, 56000, infused(48), rate(48), 48, 0, 0, 0), k.OK)         # a new bag

    def test_L2_5_errors_the_loaded_bags_identity_with_other_contents_is_refused(self):
        s = patient()
        self.assertEqual(k.bag(s, PID, 3, 28000, infused(24), rate(24), 24, 0, 0, 0), k.OK)
        before = dict(s.__dict__)
        self.assertEqual(k.bag(s, PID, 3, 27000, infused(24), rate(24), 24, 0, 0, 0), k.E_BAG_ID)
        self.assertEqual(k.bag(s, PID, 3, 28000, 250000, rate(24), 24, 0, 0, 0), k.E_BAG_ID)
        self.assertEqual(k.bag(s, PID, 0, 28000, infused(24), rate(24), 24, 0, 0, 0), k.E_ARG)
        self.assertEqual(dict(s.__dict__), before)


if __name__ == "__main__":
    unittest.main()
