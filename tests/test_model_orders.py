"""Bag orders: durations, preservative, weight, dose caps over every day a bag runs, Table 5 storage."""
from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypo import examples

from blinpump.model.errors import ModelError
from blinpump.model.label import DEFAULT_EXT, Indication
from blinpump.model.orders import BagOrder, check_vial_storage, propose_bag, validate_bag
from blinpump.model.patient import Patient

ADULT_RR = Patient("rr", 70.0)
ADULT_MRD = Patient("mrd", 70.0)
CHILD_RR = Patient("rr", 30.0, 1.0)
D = Decimal


def bag(drug_mcg: float, duration_h: int, volume_ml: float | None = None, *, room_h: float = 0.0,
        fridge_h: float = 0.0, preservative: bool | None = None, rate_ml_per_h: float | None = None) -> BagOrder:
    """A bag at the table rate; by default it holds exactly what it infuses (no overfill), so its
    daily dose is drug * 24 / duration."""
    if preservative is None:
        preservative = duration_h >= 72
    try:
        rate = float(DEFAULT_EXT.bag_rate_ml_per_h(duration_h)) if rate_ml_per_h is None else rate_ml_per_h
    except KeyError:
        rate = 1.0 if rate_ml_per_h is None else rate_ml_per_h
    if volume_ml is None:
        volume_ml = float(Decimal(str(rate)) * duration_h) if duration_h > 0 else 240.0
    return BagOrder(drug_mcg, volume_ml, rate, duration_h, preservative, room_h, fridge_h)


def refused(patient: Patient, order: BagOrder, cycle: int, day: int, restart_day: int | None = None) -> tuple[str, str]:
    with pytest.raises(ModelError) as err:
        validate_bag(patient, order, cycle, day, restart_day=restart_day)
    assert "\n" not in str(err.value)
    return err.value.field, err.value.clause


# ---------------------------------------------------------------- durations and preservative


@pytest.mark.parametrize("duration_h", [0, 12, 36, 120, 167, 169, 336, -24])
def test_L2_5_durations_other_durations_refused(duration_h: int) -> None:
    assert refused(ADULT_MRD, bag(1.0, duration_h, preservative=False), 2, 1) == ("duration_h", "L2.5-durations")


def test_L2_5_durations_bool_is_not_a_duration() -> None:
    assert refused(ADULT_MRD, bag(1.0, True, preservative=False), 2, 1) == ("duration_h", "L2.5-durations")


@pytest.mark.parametrize("duration_h, preservative", [(24, True), (48, True), (72, False), (96, False),
                                                      (168, False)])
def test_L2_5_durations_preservative_must_match_duration(duration_h: int, preservative: bool) -> None:
    order = bag(duration_h / 24 * 20, duration_h, preservative=preservative)
    assert refused(ADULT_MRD, order, 2, 1) == ("preservative", "L2.5-durations")


def test_L2_5_min_weight_5_4_kg_exactly_allowed_for_7_day_bag() -> None:
    patient = Patient("mrd", 5.4, 0.3)  # 15 * 0.3 = 4.5 mcg/day
    accepted = validate_bag(patient, bag(31.5, 168), 2, 1)
    assert accepted.drug_mcg_per_day == D("4.5")


@pytest.mark.parametrize("duration_h", [72, 96, 168])
def test_L2_5_min_weight_5_39_kg_refused_preservative_bags(duration_h: int) -> None:
    patient = Patient("mrd", 5.39, 0.3)
    order = bag(1.0, duration_h)
    assert refused(patient, order, 2, 1) == ("duration_h", "L2.5-min-weight")
    assert validate_bag(patient, bag(4.5, 24), 2, 1).drug_mcg_per_day == D("4.5")


# ---------------------------------------------------------------- dose caps


def test_L2_2_step_rr_cycle1_days_1_7_at_9_mcg() -> None:
    assert validate_bag(ADULT_RR, bag(9.0, 24), 1, 1).cap_clause == "L2.2-step"
    assert refused(ADULT_RR, bag(9.01, 24), 1, 1) == ("drug_mcg", "L2.2-step")
    assert refused(ADULT_RR, bag(28.0, 24), 1, 7) == ("drug_mcg", "L2.2-step")


def test_L2_2_step_bag_spanning_day_7_and_8_is_held_to_the_step_cap() -> None:
    assert refused(ADULT_RR, bag(37.0, 48), 1, 7) == ("drug_mcg", "L2.2-step")
    assert validate_bag(ADULT_RR, bag(18.0, 48), 1, 7).last_day == 8
    assert refused(ADULT_RR, bag(9 * 7 + 0.01, 168), 1, 2) == ("drug_mcg", "L2.2-step")
    assert validate_bag(ADULT_RR, bag(63.0, 168), 1, 1).cap_mcg_per_day == D(9)


def test_L2_dose_28_rr_cycle1_day_8_on_and_other_cycles() -> None:
    assert validate_bag(ADULT_RR, bag(28.0, 24), 1, 8).cap_clause == "L2-dose-28"
    assert refused(ADULT_RR, bag(28.01, 24), 1, 8) == ("drug_mcg", "L2-dose-28")
    assert validate_bag(ADULT_RR, bag(28.0, 24), 2, 1).cap_mcg_per_day == D(28)
    assert validate_bag(ADULT_MRD, bag(28.0, 24), 1, 1).cap_clause == "L2-dose-28"  # MRD has no step dose
    assert refused(ADULT_MRD, bag(56.01, 48), 3, 27) == ("drug_mcg", "L2-dose-28")


def test_L2_dose_28_bsa_caps_15_per_m2() -> None:
    assert validate_bag(CHILD_RR, bag(15.0, 24), 2, 1).drug_mcg_per_day == D(15)
    assert refused(CHILD_RR, bag(15.01, 24), 2, 1) == ("drug_mcg", "L2-dose-28")
    assert validate_bag(CHILD_RR, bag(30.0, 48), 2, 1).cap_mcg_per_day == D(15)
    assert refused(CHILD_RR, bag(30.01, 48), 2, 1) == ("drug_mcg", "L2-dose-28")
    assert refused(CHILD_RR, bag(5.01, 24), 1, 3) == ("drug_mcg", "L2.2-step")


def test_L2_dose_28_bsa_1_8667_reaches_28_exactly() -> None:
    patient = Patient("rr", 40.0, 1.8667)
    assert validate_bag(patient, bag(28.0, 24), 2, 1).cap_mcg_per_day == D(28)
    assert refused(patient, bag(28.001, 24), 2, 1) == ("drug_mcg", "L2-dose-28")


def test_L2_4_restart_9_low_dose_for_7_days_after_a_restart() -> None:
    assert refused(ADULT_MRD, bag(28.0, 24), 2, 10, restart_day=10) == ("drug_mcg", "L2.4-restart-9")
    assert refused(ADULT_MRD, bag(28.0, 24), 2, 16, restart_day=10) == ("drug_mcg", "L2.4-restart-9")
    assert validate_bag(ADULT_MRD, bag(28.0, 24), 2, 17, restart_day=10).cap_clause == "L2-dose-28"
    assert validate_bag(ADULT_MRD, bag(9.0, 24), 2, 10, restart_day=10).cap_clause == "L2.4-restart-9"
    assert refused(ADULT_MRD, bag(56.0, 48), 2, 9, restart_day=10) == ("drug_mcg", "L2.4-restart-9")


@pytest.mark.parametrize("drug_mcg", [0.0, -1.0, math.nan, math.inf])
def test_L2_5_errors_non_positive_drug_refused(drug_mcg: float) -> None:
    assert refused(ADULT_MRD, bag(drug_mcg, 24), 2, 1) == ("drug_mcg", "L2.5-errors")


@pytest.mark.parametrize("volume_ml", [0.0, -240.0, math.nan])
def test_L2_5_errors_non_positive_volume_refused(volume_ml: float) -> None:
    assert refused(ADULT_MRD, bag(28.0, 24, volume_ml), 2, 1) == ("volume_ml", "L2.5-errors")


def test_L2_x_course_cycle_and_L2_cycle_42_day_ranges() -> None:
    assert refused(ADULT_MRD, bag(28.0, 24), 5, 1) == ("cycle", "L2.1-course")
    assert refused(ADULT_RR, bag(28.0, 24), 10, 1) == ("cycle", "L2.2-course")
    assert refused(ADULT_MRD, bag(28.0, 24), 0, 1) == ("cycle", "L2.1-course")
    assert refused(ADULT_MRD, bag(28.0, 24), 2, 0) == ("cycle_day", "L2-cycle-42")
    assert refused(ADULT_MRD, bag(28.0, 24), 2, 29) == ("cycle_day", "L2-cycle-42")


def test_L2_cycle_42_bag_must_not_run_past_infusion_day_28() -> None:
    assert validate_bag(ADULT_MRD, bag(196.0, 168), 2, 22).last_day == 28
    assert refused(ADULT_MRD, bag(196.0, 168), 2, 23) == ("duration_h", "L2-cycle-42")
    assert refused(ADULT_MRD, bag(56.0, 48), 2, 28) == ("duration_h", "L2-cycle-42")
    assert validate_bag(ADULT_MRD, bag(28.0, 24), 2, 28).first_day == 28


# ---------------------------------------------------------------- storage (Table 5)


def test_L2_6_bag_24_48_room_time_includes_infusion_time() -> None:
    assert validate_bag(ADULT_MRD, bag(28.0, 24, room_h=24.0), 2, 1).room_temp_h_left == 0
    assert refused(ADULT_MRD, bag(28.0, 24, room_h=24.01), 2, 1) == ("room_temp_h_so_far", "L2.6-bag-24-48")
    assert validate_bag(ADULT_MRD, bag(56.0, 48), 2, 1).room_temp_h_left == 0
    assert refused(ADULT_MRD, bag(56.0, 48, room_h=0.1), 2, 1) == ("room_temp_h_so_far", "L2.6-bag-24-48")


def test_L2_6_bag_24_48_refrigerated_8_days() -> None:
    assert validate_bag(ADULT_MRD, bag(28.0, 24, fridge_h=192.0), 2, 1).storage.fridge_h == 192
    assert refused(ADULT_MRD, bag(28.0, 24, fridge_h=192.1), 2, 1) == ("refrigerated_h_so_far", "L2.6-bag-24-48")


def test_L2_6_bag_72_96_four_days_room_14_days_fridge() -> None:
    assert validate_bag(ADULT_MRD, bag(84.0, 72, room_h=24.0), 2, 1).room_temp_h_left == 0
    assert refused(ADULT_MRD, bag(84.0, 72, room_h=24.5), 2, 1) == ("room_temp_h_so_far", "L2.6-bag-72-96")
    assert refused(ADULT_MRD, bag(112.0, 96, room_h=1.0), 2, 1) == ("room_temp_h_so_far", "L2.6-bag-72-96")
    assert validate_bag(ADULT_MRD, bag(112.0, 96, fridge_h=336.0), 2, 1).storage.clause == "L2.6-bag-72-96"
    assert refused(ADULT_MRD, bag(112.0, 96, fridge_h=336.5), 2, 1) == (
        "refrigerated_h_so_far", "L2.6-bag-72-96")


def test_L2_6_bag_7d_seven_days_room_14_days_fridge() -> None:
    assert validate_bag(ADULT_MRD, bag(196.0, 168, fridge_h=336.0), 2, 1).room_temp_h_left == 0
    assert refused(ADULT_MRD, bag(196.0, 168, room_h=0.5), 2, 1) == ("room_temp_h_so_far", "L2.6-bag-7d")
    assert refused(ADULT_MRD, bag(196.0, 168, fridge_h=337.0), 2, 1) == ("refrigerated_h_so_far",
                                                                              "L2.6-bag-7d")


def test_L2_6_negative_storage_time_refused() -> None:
    assert refused(ADULT_MRD, bag(28.0, 24, room_h=-1.0), 2, 1) == ("room_temp_h_so_far", "L2.6-bag-24-48")
    assert refused(ADULT_MRD, bag(28.0, 24, fridge_h=math.nan), 2, 1) == ("refrigerated_h_so_far",
                                                                          "L2.6-bag-24-48")


def test_L2_6_vial_4_h_room_24_h_fridge() -> None:
    check_vial_storage(4.0, 24.0)
    with pytest.raises(ModelError) as err:
        check_vial_storage(4.01, 0.0)
    assert (err.value.field, err.value.clause) == ("room_temp_h", "L2.6-vial")
    with pytest.raises(ModelError) as err:
        check_vial_storage(0.0, 24.5)
    assert (err.value.field, err.value.clause) == ("refrigerated_h", "L2.6-vial")


# ---------------------------------------------------------------- accepted bag details and proposals


def test_EXT_rates_flow_is_the_labelled_rate_and_L5_12_benzyl_load() -> None:
    assert validate_bag(ADULT_MRD, bag(28.0, 24), 2, 1).flow_ml_per_h == 10
    assert validate_bag(ADULT_MRD, bag(56.0, 48), 2, 1).flow_ml_per_h == 5
    seven_day = validate_bag(ADULT_MRD, bag(213.88, 168, 110.0), 2, 1)     # 196 mcg in the 100.8 mL infused
    assert seven_day.flow_ml_per_h == D("0.6")
    assert seven_day.infused_ml == D("100.8")
    assert seven_day.benzyl_alcohol_mg_per_day == D("0.6") * 24 * D("7.4")     # what is infused, not the bag
    assert validate_bag(ADULT_MRD, bag(84.0, 72), 2, 1).benzyl_alcohol_mg_per_day == D("1.8") * 24 * D("2.5")
    assert validate_bag(ADULT_MRD, bag(28.0, 24), 2, 1).benzyl_alcohol_mg_per_day == 0


def test_EXT_rates_a_270_ml_bag_prepared_for_240_ml_delivers_concentration_times_volume_infused() -> None:
    # 31.5 mcg in 270 mL at 10 mL/h: 240 mL a day carry 28 mcg (not 31.5: the overfill stays behind)
    accepted = validate_bag(ADULT_MRD, bag(31.5, 24, 270.0), 2, 1)
    assert accepted.drug_mcg_per_day == D(28) and accepted.infused_ml == 240
    # the same bag read as volume / duration would run 11.25 mL/h: 31.5 mcg/day, over the cap
    assert refused(ADULT_MRD, bag(31.6, 24, 270.0), 2, 1) == ("drug_mcg", "L2-dose-28")


@pytest.mark.parametrize("duration_h, wrong", [(24, 11.25), (48, 10.0), (72, 1.7), (96, 2.0), (168, 0.5)])
def test_EXT_rates_a_rate_other_than_the_table_is_refused(duration_h: int, wrong: float) -> None:
    assert refused(ADULT_MRD, bag(1.0, duration_h, 400.0, rate_ml_per_h=wrong), 2, 1) == ("rate_ml_per_h",
                                                                                           "EXT-rates")


def test_EXT_rates_a_bag_smaller_than_rate_times_duration_is_refused() -> None:
    assert refused(ADULT_MRD, bag(28.0, 24, 239.9), 2, 1) == ("volume_ml", "EXT-rates")
    assert validate_bag(ADULT_MRD, bag(28.0, 24, 240.0), 2, 1).drug_mcg_per_day == 28


def test_L2_vial_minimum_vial_count() -> None:
    assert validate_bag(ADULT_MRD, bag(28.0, 24), 2, 1).vials_min == 1
    assert validate_bag(ADULT_MRD, bag(35.0, 48), 2, 1).vials_min == 1
    assert validate_bag(ADULT_MRD, bag(56.0, 48), 2, 1).vials_min == 2
    assert validate_bag(ADULT_MRD, bag(196.0, 168), 2, 1).vials_min == 6


def test_EXT_rates_standard_bags_hold_the_infused_volume_plus_the_overfill() -> None:
    assert propose_bag(ADULT_MRD, 2, 1, 24) == BagOrder(31.5, 270.0, 10.0, 24, False)
    assert propose_bag(ADULT_MRD, 2, 1, 48) == BagOrder(63.0, 270.0, 5.0, 48, False)
    assert propose_bag(ADULT_MRD, 2, 1, 168) == BagOrder(220.5, 113.4, 0.6, 168, True)


def test_EXT_rates_a_given_bag_volume_scales_the_drug() -> None:
    order = propose_bag(ADULT_MRD, 2, 1, 168, 110.0)
    assert order.volume_ml == 110.0 and order.rate_ml_per_h == 0.6
    assert validate_bag(ADULT_MRD, order, 2, 1).drug_mcg_per_day <= 28


def test_L2_2_step_proposal_spanning_day_8_uses_the_step_dose() -> None:
    assert propose_bag(ADULT_RR, 1, 7, 48, 240.0).drug_mcg == 18.0      # no overfill: the dose itself
    assert propose_bag(ADULT_RR, 1, 8, 48, 240.0).drug_mcg == 56.0
    assert propose_bag(ADULT_RR, 1, 7, 48).drug_mcg == 20.25             # 270 mL for 240 mL infused
    assert propose_bag(Patient("rr", 40.0, 1.79), 1, 1, 96, 172.8).drug_mcg == 35.8  # 8.95 * 4, no overfill


def test_L2_5_min_weight_proposal_refused_for_light_patients() -> None:
    with pytest.raises(ModelError) as err:
        propose_bag(Patient("mrd", 5.0, 0.28), 2, 1, 72)
    assert err.value.clause == "L2.5-min-weight"


# ---------------------------------------------------------------- properties

INDICATIONS: tuple[Indication, ...] = ("mrd", "rr", "consolidation")


@st.composite
def cases(draw: st.DrawFn) -> tuple[Patient, int, int, int, float]:
    indication = draw(st.sampled_from(INDICATIONS))
    patient = Patient(indication, draw(st.floats(min_value=5.4, max_value=300.0)),
                      draw(st.floats(min_value=0.1, max_value=3.5)))
    cycle = draw(st.integers(min_value=1, max_value=2))
    duration_h = draw(st.sampled_from((24, 48, 72, 96, 168)))
    day = draw(st.integers(min_value=1, max_value=29 - duration_h // 24))
    drug_mcg = draw(st.floats(min_value=0.01, max_value=250.0))
    return patient, cycle, day, duration_h, drug_mcg


def label_cap(patient: Patient, cycle: int, day: int) -> float:
    """Independent of the model: Tables 1-3 read directly."""
    fixed = patient.weight_g >= 45000
    assert patient.bsa_m2 is not None
    if patient.indication == "rr" and cycle == 1 and day <= 7:
        return 9.0 if fixed else min(9.0, 5 * patient.bsa_m2)
    return 28.0 if fixed else min(28.0, 15 * patient.bsa_m2)


@settings(max_examples=examples(300))
@given(cases())
def test_L2_dose_28_L2_2_step_validate_bag_never_accepts_above_any_days_cap(
        case: tuple[Patient, int, int, int, float]) -> None:
    patient, cycle, day, duration_h, drug_mcg = case
    order = bag(drug_mcg, duration_h, 400.0)
    lowest_cap = min(label_cap(patient, cycle, d) for d in range(day, day + duration_h // 24))
    rate = drug_mcg * order.rate_ml_per_h * 24 / 400.0       # concentration x volume a day (EXT-rates)
    try:
        accepted = validate_bag(patient, order, cycle, day)
    except ModelError as err:
        assert err.field == "drug_mcg" and rate > lowest_cap - 1e-9
        return
    assert rate <= lowest_cap + 1e-9
    assert float(accepted.cap_mcg_per_day) == pytest.approx(lowest_cap)


@settings(max_examples=examples(150))
@given(cases())
def test_propose_bag_is_accepted_and_within_0_01_mcg_per_day_of_the_cap(
        case: tuple[Patient, int, int, int, float]) -> None:
    patient, cycle, day, duration_h, _ = case
    order = propose_bag(patient, cycle, day, duration_h, 400.0)
    days = duration_h // 24
    lowest_cap = min(label_cap(patient, cycle, d) for d in range(day, day + days))
    daily = order.drug_mcg * order.rate_ml_per_h * 24 / order.volume_ml
    assert lowest_cap - 0.02 - 1e-9 < daily <= lowest_cap + 1e-9
    validate_bag(patient, order, cycle, day)
