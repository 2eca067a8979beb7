"""The label read again (firmware 0.3.0): Table 4 as written, bags as prepared, a patient who
changes and the next patient. Runs on CPython and on MicroPython; every test names its clause."""
import unittest

from fw import kernel as k
from kernel_helpers import (PID, MIN_PER_DAY, patient, load_bag, ack_all, start_bag, run, rate, infused,
                            prepared_ng)

CTCAE = k.SCALE_CTCAE
ASTCT = k.SCALE_ASTCT


def stopped_28(s, hours=48):
    """A running 28 mcg/day bag that ran for 10 h."""
    assert start_bag(s, 28000, hours) == k.OK
    run(s, 600)


class TestSeveralReactions(unittest.TestCase):
    def test_L2_4_neuro_3_icans_after_crs_each_keeps_its_own_onset(self):
        s = patient()
        stopped_28(s)
        self.assertEqual(k.reaction(s, k.RX_CRS, 3, CTCAE), k.OK)
        run(s, 2 * MIN_PER_DAY)
        self.assertEqual(k.reaction(s, k.RX_ICANS, 3, ASTCT), k.OK)   # ICANS can follow CRS (5.2)
        self.assertEqual((s.rx_crs, s.rx_icans, s.rx_icans_onset_min), (3, 3, s.now_min))
        run(s, MIN_PER_DAY)
        self.assertEqual(k.resolved(s, k.RX_CRS), k.OK)                # CRS on its own
        self.assertEqual(k.resolved(s, k.RX_ICANS), k.E_WITHHOLD)      # 1 day of ICANS
        ack_all(s)
        self.assertEqual(k.start(s), k.E_WITHHOLD)                     # one hold is still open
        run(s, 2 * MIN_PER_DAY - 1)
        self.assertEqual(k.resolved(s, k.RX_ICANS), k.E_WITHHOLD)      # 3 days less one minute
        run(s, 1)
        self.assertEqual(k.resolved(s, k.RX_ICANS), k.OK)              # exactly 3 days
        self.assertEqual((s.cap_ng_per_day, s.low_left_min), (9000, 7 * MIN_PER_DAY))  # L2.4-restart-9

    def test_L2_4_neuro_3_the_7_day_limit_runs_from_each_ones_onset(self):
        s = patient()
        stopped_28(s)
        k.reaction(s, k.RX_ICANS, 3, ASTCT)
        run(s, 5 * MIN_PER_DAY)
        k.reaction(s, k.RX_NEURO, 3, CTCAE)           # a second neurologic event, 5 days later
        run(s, 2 * MIN_PER_DAY)                       # ICANS: exactly 7 days
        self.assertEqual(s.locked, 0)
        self.assertEqual(k.resolved(s, k.RX_ICANS), k.OK)
        run(s, 5 * MIN_PER_DAY)                       # the neurologic event: exactly 7 days
        self.assertEqual(s.locked, 0)
        run(s, 1)                                     # one minute more: permanent
        self.assertEqual((s.locked, s.lock_reason), (1, k.RX_NEURO))

    def test_L2_4_neuro_3_an_icans_entered_again_keeps_its_onset_and_its_grade(self):
        s = patient()
        stopped_28(s)
        k.reaction(s, k.RX_ICANS, 2, ASTCT)
        onset = s.now_min
        run(s, MIN_PER_DAY)
        k.reaction(s, k.RX_ICANS, 3, ASTCT)           # it worsens: the same ICANS
        self.assertEqual((s.rx_icans, s.rx_icans_onset_min, s.rx_icans_g3_min), (3, onset, s.now_min))
        k.reaction(s, k.RX_ICANS, 2, ASTCT)           # regraded lower: the grade 3 rules stay
        self.assertEqual((s.rx_icans, s.rx_icans_onset_min), (3, onset))
        run(s, 6 * MIN_PER_DAY)                       # 7 days from its onset
        self.assertEqual(s.locked, 0)
        run(s, 1)
        self.assertEqual((s.locked, s.lock_reason), (1, k.RX_ICANS))

    def test_L2_4_neuro_3_documenting_a_grade_3_again_never_moves_its_clocks(self):
        s = patient()
        stopped_28(s)
        k.reaction(s, k.RX_NEURO, 3, CTCAE)
        first = s.now_min
        run(s, 5 * MIN_PER_DAY)
        k.reaction(s, k.RX_NEURO, 3, CTCAE)           # still grade 3, entered again on day 5
        self.assertEqual((s.rx_neuro_onset_min, s.rx_neuro_g3_min), (first, first))
        run(s, MIN_PER_DAY)
        self.assertEqual(k.resolved(s, k.RX_NEURO), k.OK)   # resolved on day 6: restart (L2.4-restart-9)
        self.assertEqual(s.locked, 0)

    def test_L2_4_other_3_its_14_days_run_from_its_own_onset_while_crs_is_open(self):
        s = patient()
        stopped_28(s)
        k.reaction(s, k.RX_CRS, 3, CTCAE)
        run(s, 3 * MIN_PER_DAY)
        k.reaction(s, k.RX_OTHER, 3, CTCAE)
        run(s, 14 * MIN_PER_DAY)
        self.assertEqual(s.locked, 0)
        run(s, 1)
        self.assertEqual((s.locked, s.lock_reason), (1, k.RX_OTHER))

    def test_L2_4_restart_9_resolving_a_kind_not_open_is_refused(self):
        s = patient()
        stopped_28(s)
        k.reaction(s, k.RX_CRS, 3, CTCAE)
        self.assertEqual(k.resolved(s, k.RX_ICANS), k.E_STATE)
        self.assertEqual(k.resolved(s, 0), k.E_ARG)
        self.assertEqual(k.resolved(s, 6), k.E_ARG)
        self.assertEqual(s.rx_crs, 3)


class TestGrading(unittest.TestCase):
    def test_L2_4_grading_icans_may_be_astct_others_are_ctcae(self):
        s = patient()
        stopped_28(s)
        self.assertEqual(k.reaction(s, k.RX_CRS, 3, ASTCT), k.E_SCALE)
        self.assertEqual(k.reaction(s, k.RX_OTHER, 3, ASTCT), k.E_SCALE)
        self.assertEqual(k.reaction(s, k.RX_ICANS, 2, 0), k.E_SCALE)
        self.assertEqual(k.reaction(s, k.RX_ICANS, 2, 3), k.E_SCALE)
        self.assertEqual((s.mode, s.rx_crs, s.rx_other, s.rx_icans), (k.MODE_RUNNING, 0, 0, 0))   # nothing changed
        self.assertEqual(k.reaction(s, k.RX_ICANS, 2, ASTCT), k.OK)
        self.assertEqual((s.mode, s.rx_icans), (k.MODE_STOPPED, 2))

    def test_L2_4_icans_2_interrupts_until_resolved_then_the_reduced_dose(self):
        s = patient()
        stopped_28(s)
        k.reaction(s, k.RX_ICANS, 2, CTCAE)
        run(s, 10 * MIN_PER_DAY)                      # no time limit for grade 2: still withheld
        self.assertEqual((s.locked, s.rx_icans), (0, 2))
        ack_all(s)
        self.assertEqual(k.start(s), k.E_WITHHOLD)
        self.assertEqual(k.resolved(s, k.RX_ICANS), k.OK)    # no 3-day floor for grade 2
        self.assertEqual(s.cap_ng_per_day, 9000)


class TestLongInterruption(unittest.TestCase):
    def test_L2_4_new_cycle_7_days_off_not_for_a_reaction_goes_on_without_asking(self):
        s = patient()
        stopped_28(s)
        k.stop(s, k.STOP_CLINICIAN)
        run(s, 7 * MIN_PER_DAY)                       # exactly 7 days
        self.assertEqual((s.cycle, s.cycle_ask), (1, 0))
        self.assertEqual(load_bag(s, 28000, 24), k.OK)     # the 48 h bag expired meanwhile (L2.6-bag-24-48)
        ack_all(s)
        self.assertEqual(k.start(s), k.OK)
        self.assertEqual(s.cycle, 1)

    def test_L2_4_new_cycle_over_7_days_not_for_a_reaction_asks_and_goes_on(self):
        s = patient()
        stopped_28(s)
        run_min = s.cycle_run_min
        k.stop(s, k.STOP_CLINICIAN)
        run(s, 7 * MIN_PER_DAY + 1)
        self.assertEqual((s.cycle, s.cycle_ask), (1, 1))        # the pump does not decide
        self.assertEqual(load_bag(s, 28000, 24), k.OK)
        ack_all(s)
        self.assertEqual(k.start(s), k.E_DECISION)
        self.assertEqual(k.cycle_decision(s, 2), k.E_ARG)
        self.assertEqual(k.cycle_decision(s, 0), k.OK)          # go on with this cycle
        self.assertEqual((s.cycle, s.cycle_ask, s.int_decided), (1, 0, 1))
        run(s, MIN_PER_DAY)
        self.assertEqual(s.cycle_ask, 0)                        # asked once per interruption
        ack_all(s)
        self.assertEqual(k.start(s), k.OK)
        self.assertEqual((s.cycle, s.cycle_run_min), (1, run_min + 1))
        self.assertEqual(k.cycle_decision(s, 1), k.E_STATE)     # nothing asked now

    def test_L2_4_new_cycle_over_7_days_not_for_a_reaction_asks_and_starts_a_new_cycle(self):
        s = patient()
        stopped_28(s)
        k.stop(s, k.STOP_CLINICIAN)
        run(s, 7 * MIN_PER_DAY + 1)
        self.assertEqual(k.cycle_decision(s, 1), k.OK)
        self.assertEqual((s.cycle, s.cycle_run_min, s.cycle_ask, s.need_premed), (2, 0, 0, 1))

    def test_L2_4_new_cycle_over_7_days_for_a_reaction_is_a_new_cycle_without_asking(self):
        s = patient()
        stopped_28(s)
        k.reaction(s, k.RX_CRS, 3, CTCAE)
        run(s, 7 * MIN_PER_DAY + 1)
        self.assertEqual((s.cycle, s.cycle_run_min, s.cycle_ask), (2, 0, 0))

    def test_L2_4_new_cycle_a_hold_opened_during_a_long_stop_makes_it_a_reaction_interruption(self):
        s = patient()
        stopped_28(s)
        k.stop(s, k.STOP_CLINICIAN)
        run(s, 7 * MIN_PER_DAY + 1)
        self.assertEqual(s.cycle_ask, 1)
        k.reaction(s, k.RX_OTHER, 3, CTCAE)           # the cause is now an adverse reaction
        self.assertEqual((s.cycle, s.cycle_ask), (2, 0))


    def test_L2_4_new_cycle_a_stop_for_a_reaction_over_7_days_is_a_new_cycle(self):
        s = patient()
        stopped_28(s)
        k.stop(s, k.STOP_REACTION)                    # stopped for a reaction not graded at the pump
        run(s, 7 * MIN_PER_DAY + 1)
        self.assertEqual((s.cycle, s.cycle_ask), (2, 0))

    def test_L2_4_new_cycle_an_interruption_of_unknown_length_asks_the_clinician(self):
        s = patient()
        stopped_28(s)
        self.assertEqual(k.power_up(s, -1), k.OK)     # no clock measured the outage: it may be weeks
        self.assertEqual((s.int_unknown, s.cycle_ask), (1, 1))
        self.assertEqual(load_bag(s, 28000, 24), k.OK)
        ack_all(s)
        self.assertEqual(k.start(s), k.E_DECISION)
        self.assertEqual(k.cycle_decision(s, 0), k.OK)
        ack_all(s)
        self.assertEqual(k.start(s), k.OK)
        self.assertEqual(s.cycle, 1)


class TestBagsAsPrepared(unittest.TestCase):
    def test_EXT_rates_a_270_ml_bag_runs_at_10_ml_h_and_gives_28_mcg_a_day(self):
        s = patient()
        # 31.5 mcg in 270 mL (240 mL infused + 30 mL overfill), labelled 10 mL/h
        self.assertEqual(k.bag(s, PID, 1, 31500, 270000, 10000, 24, 0, 0, 0), k.OK)
        self.assertEqual((s.bag_ul_per_h, s.bag_ng_per_day), (10000, 28000))   # not 11.25 mL/h, 31.5 mcg
        ack_all(s)
        self.assertEqual(k.start(s), k.OK)
        run(s, MIN_PER_DAY)
        self.assertEqual((s.course_ng, s.course_ul, s.bag_loaded), (28000, 240000, 0))  # 30 mL left behind
        self.assertTrue(s.alarm & k.AL_BAG_END)

    def test_EXT_rates_a_rate_that_is_not_the_tables_is_refused(self):
        s = patient()
        self.assertEqual(k.bag(s, PID, 1, 31500, 270000, 11250, 24, 0, 0, 0), k.E_RATE)   # volume / duration
        self.assertEqual(k.bag(s, PID, 1, 63000, 270000, 10000, 48, 0, 0, 0), k.E_RATE)   # a 24 h rate
        self.assertEqual(k.bag(s, PID, 1, 200000, 110000, 700, 168, 1, 0, 0), k.E_RATE)
        self.assertEqual(s.bag_loaded, 0)

    def test_EXT_rates_a_bag_that_holds_less_than_rate_times_duration_is_refused(self):
        s = patient()
        self.assertEqual(k.bag(s, PID, 1, 28000, 239999, 10000, 24, 0, 0, 0), k.E_RATE)
        self.assertEqual(k.bag(s, PID, 1, 28000, 240000, 10000, 24, 0, 0, 0), k.OK)       # no overfill: fits

    def test_EXT_rates_a_7_day_bag_infuses_its_full_labelled_volume(self):
        s = patient()
        volume = 110000                               # 100.8 mL infused at 0.6 mL/h, 9.2 mL overfill
        self.assertEqual(k.bag(s, PID, 1, prepared_ng(28000, 168, volume), volume, 600, 168, 1, 0, 0), k.OK)
        ack_all(s)
        self.assertEqual(k.start(s), k.OK)
        run(s, 7 * MIN_PER_DAY)
        self.assertEqual(s.course_ul, 100800)         # 600 uL/h x 168 h, to the microlitre
        self.assertEqual(s.course_ng, 7 * 28000)
        self.assertEqual(s.bag_loaded, 0)

    def test_EXT_rates_the_daily_dose_is_concentration_times_volume_checked_against_the_cap(self):
        s = patient(k.IND_RR)                         # days 1-7: 9 mcg/day
        # 10.125 mcg in 270 mL at 10 mL/h: 9 mcg a day, exactly the step cap
        self.assertEqual(k.bag(s, PID, 1, 10125, 270000, 10000, 24, 0, 0, 0), k.OK)
        self.assertEqual(k.bag(s, PID, 2, 10126, 270000, 10000, 24, 0, 0, 0), k.E_DOSE_CAP)


class TestPatientChanges(unittest.TestCase):
    def test_L2_dose_28_a_weight_below_45_kg_makes_the_caps_bsa_based(self):
        s = patient()
        self.assertEqual(load_bag(s, 28000, 24), k.OK)
        self.assertEqual(k.update_patient(s, 44999, 12000), k.OK)      # 1.2 m2: 18 and 6 mcg/day
        self.assertEqual((s.weight_g, s.bsa_cm2, s.cap_full_ng_per_day, s.cap_low_ng_per_day),
                         (44999, 12000, 18000, 6000))
        self.assertEqual(s.bag_loaded, 0)             # the 28 mcg/day bag is above the new cap: taken off
        self.assertEqual(load_bag(s, 18000, 24), k.OK)
        self.assertEqual(k.update_patient(s, 45000, 0), k.OK)          # back to 45 kg: fixed dose
        self.assertEqual((s.cap_full_ng_per_day, s.bsa_cm2, s.bag_loaded), (28000, 0, 1))

    def test_L2_dose_28_an_update_is_refused_while_running_or_out_of_range(self):
        s = patient()
        self.assertEqual(start_bag(s, 28000, 24), k.OK)
        self.assertEqual(k.update_patient(s, 40000, 12000), k.E_STATE)
        k.stop(s, k.STOP_CLINICIAN)
        self.assertEqual(k.update_patient(s, 40000, 0), k.E_BSA)
        self.assertEqual(k.update_patient(s, 499, 0), k.E_WEIGHT)
        self.assertEqual((s.weight_g, s.cap_full_ng_per_day), (70000, 28000))

    def test_L2_5_min_weight_a_patient_now_under_5_4_kg_loses_the_preservative_bag(self):
        s = patient(k.IND_MRD, 6000, 3000)            # 0.3 m2: 4.5 mcg/day
        self.assertEqual(load_bag(s, 4500, 72), k.OK)
        self.assertEqual(k.update_patient(s, 5399, 3000), k.OK)
        self.assertEqual(s.bag_loaded, 0)

    def test_L2_3_course_is_the_sites_count_given_at_set_up(self):
        s = k.State()
        self.assertEqual(k.setup(s, PID, k.IND_CONS, 70000, 0, 0), k.E_ARG)     # never defaulted
        self.assertEqual(k.setup(s, PID, k.IND_CONS, 70000, 0, 10), k.E_ARG)
        self.assertEqual(k.setup(s, PID, k.IND_MRD, 70000, 0, 3), k.E_ARG)     # the label's count
        self.assertEqual(k.setup(s, PID, k.IND_CONS, 70000, 0, 2), k.OK)
        self.assertEqual(s.max_cycles, 2)
        k._begin_cycle(s, 3)
        self.assertEqual(s.phase, k.PHASE_DONE)

    def test_end_of_therapy_then_the_next_patient(self):
        s = patient()
        self.assertEqual(start_bag(s, 28000, 24), k.OK)
        self.assertEqual(k.end_therapy(s), k.E_STATE)                  # running: stop first
        k.stop(s, k.STOP_CLINICIAN)
        k.reaction(s, k.RX_CRS, 4, CTCAE)                              # locked for good
        now = s.now_min
        self.assertEqual(k.end_therapy(s), k.OK)
        self.assertEqual((s.mode, s.locked, s.course_ng, s.last_bag_id, s.now_min), (k.MODE_NO_PATIENT, 0, 0, 0, now))
        self.assertTrue(k.invariant(s))
        self.assertEqual(k.setup(s, PID + 1, k.IND_RR, 60000, 0, 0), k.OK)
        self.assertEqual(k.bag(s, PID + 1, 1, 9000, infused(24), rate(24), 24, 0, 0, 0), k.OK)   # its bags from 1


if __name__ == "__main__":
    unittest.main()
