"""The kernel's integer limits: fixed conventions, and agreement with the planner."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypo import examples

from blinpump.model import limits as K
from blinpump.model.label import ExtConfig, Indication
from blinpump.model.patient import Patient
from blinpump.model.planner import plan_course

INDICATIONS: tuple[Indication, ...] = ("mrd", "rr", "consolidation")


def test_L1_indication_codes() -> None:
    assert K.INDICATION_CODE == {"mrd": 1, "rr": 2, "consolidation": 3}
    assert [K.kernel_limits(Patient(i, 70.0)).indication_code for i in INDICATIONS] == [1, 2, 3]


def test_L2_weight_45_weight_in_grams_and_bsa_in_cm2() -> None:
    limits = K.kernel_limits(Patient("rr", 44.9994, 1.23456))
    assert (limits.weight_g, limits.bsa_cm2) == (44999, 12346)
    assert K.kernel_limits(Patient("rr", 70.0)).bsa_cm2 == 0


def test_L2_dose_28_fixed_caps() -> None:
    limits = K.kernel_limits(Patient("rr", 45.0))
    assert (limits.cap_full_ng_per_day, limits.cap_low_ng_per_day) == (28000, 9000)


def test_L2_dose_28_bsa_caps_are_1_5_and_0_5_ng_per_cm2() -> None:
    limits = K.kernel_limits(Patient("rr", 30.0, 1.0))
    assert (limits.cap_full_ng_per_day, limits.cap_low_ng_per_day) == (15000, 5000)
    odd = K.kernel_limits(Patient("rr", 30.0, 0.7777))
    assert (odd.cap_full_ng_per_day, odd.cap_low_ng_per_day) == (7777 * 3 // 2, 7777 // 2) == (11665, 3888)


def test_L2_dose_28_bsa_1_8667_reaches_28000_and_L2_2_step_9000() -> None:
    limits = K.kernel_limits(Patient("rr", 44.0, 1.8667))
    assert (limits.cap_full_ng_per_day, limits.cap_low_ng_per_day) == (28000, 9000)
    assert K.cap_full_ng_per_day(44999, 18666) == 27999
    assert K.cap_low_ng_per_day(44999, 18000) == 9000 and K.cap_low_ng_per_day(44999, 17998) == 8999


def test_L2_x_course_max_cycles_and_treatment_free_days() -> None:
    assert [K.kernel_limits(Patient(i, 70.0)).max_cycles for i in INDICATIONS] == [4, 9, 4]
    assert K.kernel_limits(Patient("consolidation", 70.0), ExtConfig(consolidation_max_cycles=3)).max_cycles == 3
    assert K.kernel_limits(Patient("rr", 70.0)).treatment_free_days == (14,) * 5 + (56,) * 4
    assert K.treatment_free_days_for(2, 6) == 56 and K.treatment_free_days_for(1, 4) == 14
    with pytest.raises(ValueError):
        K.max_cycles(4)


def test_L2_5_min_weight_preservative_allowed_from_5400_g() -> None:
    assert K.MIN_WEIGHT_PRESERVATIVE_G == 5400
    assert K.kernel_limits(Patient("rr", 5.4, 0.3)).preservative_allowed == 1
    assert K.kernel_limits(Patient("rr", 5.39, 0.3)).preservative_allowed == 0


def test_EXT_rates_bag_rate_conventions() -> None:
    assert K.DURATIONS_H == (24, 48, 72, 96, 168)
    assert [K.bag_rate_ul_per_h(h) for h in K.DURATIONS_H] == [10000, 5000, 1800, 1800, 600]
    assert K.bag_drug_ng_per_day(31500, 270000, 24) == 28000      # 270 mL prepared for 240 mL
    assert K.bag_drug_ng_per_day(56000, 240000, 48) == 28000
    assert K.bag_drug_ng_per_day(63001, 100800, 168) == 9001      # rounded up, as the kernel does


def test_EXT_rates_the_kernels_rate_table_is_the_sites_setting() -> None:
    """One table, written twice (the kernel must stay in the verifiable subset): they agree."""
    from blinpump.firmware import kernel
    assert [kernel._rate_ul_per_h(h) for h in K.DURATIONS_H] == [K.bag_rate_ul_per_h(h) for h in K.DURATIONS_H]
    for h in K.DURATIONS_H:
        for drug, volume in ((31500, 270000), (196000, 100800), (9000, 1000000)):
            if K.bag_rate_ul_per_h(h) * h <= volume:
                assert kernel._order_ng_per_day(drug, volume, h) == K.bag_drug_ng_per_day(drug, volume, h)


def test_L2_6_storage_limits_in_minutes() -> None:
    assert (K.VIAL_ROOM_MIN, K.VIAL_FRIDGE_MIN) == (240, 1440)
    assert K.BAG_ROOM_MIN == {24: 2880, 48: 2880, 72: 5760, 96: 5760, 168: 10080}
    assert K.BAG_FRIDGE_MIN == {24: 11520, 48: 11520, 72: 20160, 96: 20160, 168: 20160}


def test_L2_reinit_4h_L2_4_new_cycle_L2_2_step_and_EXT_overdose_12h_thresholds() -> None:
    assert K.STEP_WINDOW_MIN == 10080
    assert K.REINIT_THRESHOLD_MIN == 240
    assert K.NEW_CYCLE_THRESHOLD_MIN == 10080
    assert K.OVERDOSE_LOCKOUT_MIN == 720 == K.kernel_limits(Patient("rr", 70.0)).overdose_lockout_min
    assert K.overdose_lockout_min(ExtConfig(overdose_lockout_h=24)) == 1440


def test_kernel_limits_are_all_ints() -> None:
    limits = K.kernel_limits(Patient("rr", 30.0, 1.0))
    for name, value in vars(limits).items():
        values = value if isinstance(value, tuple) else (value,)
        assert all(type(v) is int for v in values), name


@settings(max_examples=examples(200))
@given(indication=st.sampled_from(INDICATIONS), weight_kg=st.floats(min_value=0.5, max_value=300.0),
       bsa_m2=st.floats(min_value=0.05, max_value=3.5))  # the pump refuses less (L2-dose-28)
def test_L2_dose_28_kernel_caps_equal_planner_doses_within_rounding(indication: Indication, weight_kg: float,
                                                                     bsa_m2: float) -> None:
    patient = Patient(indication, weight_kg, bsa_m2)
    limits = K.kernel_limits(patient)
    course = plan_course(patient)
    full_ng = course.cycles[-1].doses[-1].ng_per_day
    # planner: exact BSA, rounded down to 10 ng; kernel: BSA to 1 cm2 (<= 0.75 ng), floored to 1 ng
    assert abs(limits.cap_full_ng_per_day - full_ng) < 12
    assert limits.cap_full_ng_per_day <= 28000 and limits.cap_low_ng_per_day <= 9000
    if indication == "rr":
        step_ng = course.cycles[0].doses[0].ng_per_day
        assert abs(limits.cap_low_ng_per_day - step_ng) < 12
    # the 45 kg decision is the same on both sides (L2-weight-45)
    assert (limits.weight_g >= 45000) == (patient.dosing == "fixed")
    if patient.dosing == "fixed":
        assert (limits.cap_full_ng_per_day, limits.cap_low_ng_per_day, full_ng) == (28000, 9000, 28000)
