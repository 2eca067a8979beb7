"""Patient validation and the course planner against Tables 1-3, L2-hosp and L2-premed."""
from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypo import examples

from blinpump.model.errors import ModelError
from blinpump.model.label import ExtConfig, Indication
from blinpump.model.patient import Patient, bsa_m2_from_height, parse_indication
from blinpump.model.planner import Course, plan_course

INDICATIONS: tuple[Indication, ...] = ("mrd", "rr", "consolidation")
D = Decimal


def doses(course: Course, cycle: int) -> list[tuple[int, int, Decimal]]:
    return [(d.first_day, d.last_day, d.mcg_per_day) for d in course.cycles[cycle - 1].doses]


# ---------------------------------------------------------------- patient validation


@pytest.mark.parametrize("weight_kg", [0.0, -1.0, 0.49, 300.01, 1000.0, math.nan, math.inf])
def test_L2_weight_45_absurd_weight_is_refused(weight_kg: float) -> None:
    with pytest.raises(ModelError) as err:
        Patient("rr", weight_kg, 1.0)
    assert (err.value.field, err.value.clause) == ("weight_kg", "L2-weight-45")
    assert "weight_kg" in str(err.value) and "L2-weight-45" in str(err.value) and "\n" not in str(err.value)


def test_L2_weight_45_plausible_extremes_accepted() -> None:
    assert Patient("rr", 0.5, 0.05).dosing == "bsa"
    assert Patient("rr", 300.0).dosing == "fixed"


def test_L2_weight_45_exactly_45_kg_is_fixed_dose() -> None:
    assert Patient("mrd", 45.0).dosing == "fixed"
    assert Patient("mrd", 45).fixed_dose


def test_L2_weight_45_44_999_kg_is_bsa_dose_and_needs_bsa() -> None:
    assert Patient("mrd", 44.999, 1.5).dosing == "bsa"
    with pytest.raises(ModelError) as err:
        Patient("mrd", 44.999)
    assert (err.value.field, err.value.clause) == ("bsa_m2", "L2-dose-28")


@pytest.mark.parametrize("bsa_m2", [0.0, -0.5, 3.51, math.nan])
def test_L2_dose_28_bsa_out_of_range_is_refused(bsa_m2: float) -> None:
    with pytest.raises(ModelError) as err:
        Patient("rr", 30.0, bsa_m2)
    assert (err.value.field, err.value.clause) == ("bsa_m2", "L2-dose-28")


def test_L2_dose_28_bsa_3_5_accepted_and_checked_even_when_fixed() -> None:
    assert Patient("rr", 30.0, 3.5).bsa_m2 == 3.5
    with pytest.raises(ModelError):
        Patient("rr", 90.0, 4.0)


@pytest.mark.parametrize("indication", ["MRD", "all", "", "r/r"])
def test_L1_unknown_indication_is_refused(indication: str) -> None:
    with pytest.raises(ModelError) as err:
        parse_indication(indication)
    assert (err.value.field, err.value.clause) == ("indication", "L1")
    with pytest.raises(ModelError):
        Patient(indication, 70.0)  # type: ignore[arg-type]


def test_L1_age_one_month_and_older() -> None:
    assert Patient("rr", 4.0, 0.25, age_years=1 / 12).population == "pediatric"
    with pytest.raises(ModelError) as err:
        Patient("rr", 4.0, 0.25, age_years=0.05)
    # the indication's own clause now (L1.2 for R/R), not the collective "L1"
    assert (err.value.field, err.value.clause) == ("age_years", "L1.2")


def test_L2_dose_28_bsa_mosteller_and_dubois() -> None:
    assert bsa_m2_from_height(180, 80) == 2.0  # sqrt(180 * 80 / 3600)
    assert bsa_m2_from_height(170, 70, "dubois") == pytest.approx(1.81, abs=0.005)  # textbook value
    assert bsa_m2_from_height(170, 70, "mosteller") == pytest.approx(1.82, abs=0.005)
    patient = Patient.from_height("consolidation", 40.0, 150.0)
    assert patient.bsa_m2 == 1.291 and patient.dosing == "bsa"


@pytest.mark.parametrize("height_cm", [0.0, -10.0, 20.0, 251.0, math.nan])
def test_L2_dose_28_absurd_height_is_refused(height_cm: float) -> None:
    with pytest.raises(ModelError) as err:
        bsa_m2_from_height(height_cm, 30.0)
    assert (err.value.field, err.value.clause) == ("height_cm", "L2-dose-28")


def test_L2_dose_28_unknown_bsa_formula_is_refused() -> None:
    with pytest.raises(ModelError) as err:
        bsa_m2_from_height(150.0, 30.0, "haycock")  # type: ignore[arg-type]
    assert err.value.field == "bsa_formula"


# ---------------------------------------------------------------- course structure


def test_L2_1_course_mrd_plan() -> None:
    course = plan_course(Patient("mrd", 70.0))
    assert course.clause == "L2.1-course"
    assert [c.phase for c in course.cycles] == ["induction"] + ["consolidation"] * 3
    assert [c.treatment_free_days for c in course.cycles] == [14] * 4
    assert [c.hospitalization_days for c in course.cycles] == [3, 2, 0, 0]
    assert [c.supervised_start for c in course.cycles] == [False, False, True, True]
    assert all(doses(course, n) == [(1, 28, D("28.00"))] for n in range(1, 5))


def test_L2_2_course_rr_plan_fixed_dose() -> None:
    course = plan_course(Patient("rr", 70.0))
    assert len(course.cycles) == 9
    assert [c.phase for c in course.cycles] == ["induction"] * 2 + ["consolidation"] * 3 + ["continued"] * 4
    assert [c.treatment_free_days for c in course.cycles] == [14] * 5 + [56] * 4
    assert [c.infusion_days for c in course.cycles] == [28] * 9
    assert [c.hospitalization_days for c in course.cycles] == [9, 2] + [0] * 7
    assert all(doses(course, n) == [(1, 28, D("28"))] for n in range(2, 10))


def test_L2_2_step_rr_cycle1_days_1_7_at_9_mcg_then_28() -> None:
    course = plan_course(Patient("rr", 70.0))
    assert doses(course, 1) == [(1, 7, D("9")), (8, 28, D("28"))]
    assert [d.clause for d in course.cycles[0].doses] == ["L2.2-step", "L2-dose-28"]
    assert course.cycles[0].doses[0].ng_per_day == 9000


def test_L2_2_step_rr_cycle1_bsa_5_then_15_per_m2() -> None:
    course = plan_course(Patient("rr", 30.0, 1.0))
    assert doses(course, 1) == [(1, 7, D("5")), (8, 28, D("15"))]
    assert doses(course, 6) == [(1, 28, D("15"))]


def test_L2_3_course_consolidation_plan_default_4_cycles() -> None:
    course = plan_course(Patient("consolidation", 60.0))
    assert course.clause == "L2.3-course"
    assert [c.phase for c in course.cycles] == ["consolidation"] * 4
    assert [c.treatment_free_days for c in course.cycles] == [14] * 4
    assert [c.hospitalization_days for c in course.cycles] == [3, 2, 0, 0]
    assert len(plan_course(Patient("consolidation", 60.0), ext=ExtConfig(consolidation_max_cycles=6)).cycles) == 6


def test_L2_dose_28_bsa_1_8667_reaches_the_cap_exactly() -> None:
    course = plan_course(Patient("rr", 40.0, 1.8667))
    assert doses(course, 1) == [(1, 7, D("9")), (8, 28, D("28"))]  # 15 * 1.8667 = 28.0005 -> 28
    below = plan_course(Patient("rr", 40.0, 1.8666))
    assert doses(below, 1) == [(1, 7, D("9")), (8, 28, D("27.99"))]  # 27.999 rounds down, never up


def test_L2_2_step_bsa_1_8_reaches_the_step_cap_exactly() -> None:
    assert doses(plan_course(Patient("rr", 40.0, 1.8)), 1) == [(1, 7, D("9.00")), (8, 28, D("27.00"))]
    assert doses(plan_course(Patient("rr", 40.0, 1.79)), 1) == [(1, 7, D("8.95")), (8, 28, D("26.85"))]


def test_L2_dose_28_doses_round_down_to_0_01_and_use_the_typed_bsa() -> None:
    assert doses(plan_course(Patient("rr", 20.0, 0.777)), 1) == [(1, 7, D("3.88")), (8, 28, D("11.65"))]
    assert doses(plan_course(Patient("mrd", 20.0, 0.7)), 1) == [(1, 28, D("10.50"))]  # not 10.49


def test_L2_weight_45_fixed_patient_ignores_a_given_bsa_for_the_dose() -> None:
    assert doses(plan_course(Patient("mrd", 45.0, 1.0)), 1) == [(1, 28, D("28"))]
    assert doses(plan_course(Patient("mrd", 44.999, 1.0)), 1) == [(1, 28, D("15"))]


@pytest.mark.parametrize("indication, maximum, clause", [
    ("mrd", 4, "L2.1-course"), ("rr", 9, "L2.2-course"), ("consolidation", 4, "L2.3-course")])
def test_L2_x_course_cycles_limit(indication: Indication, maximum: int, clause: str) -> None:
    patient = Patient(indication, 70.0)
    assert len(plan_course(patient, cycles=1).cycles) == 1
    assert len(plan_course(patient, cycles=maximum).cycles) == maximum
    for bad in (0, -1, maximum + 1):
        with pytest.raises(ModelError) as err:
            plan_course(patient, cycles=bad)
        assert (err.value.field, err.value.clause) == ("cycles", clause)


def test_L2_2_course_cycles_must_be_an_int() -> None:
    with pytest.raises(ModelError):
        plan_course(Patient("rr", 70.0), cycles=True)
    with pytest.raises(ModelError):
        plan_course(Patient("rr", 70.0), cycles=2.0)  # type: ignore[arg-type]


# ---------------------------------------------------------------- premedication


def test_L2_premed_rr_adult_every_cycle_step_dose_and_restart() -> None:
    course = plan_course(Patient("rr", 70.0, age_years=40))
    first = course.cycles[0]
    assert [(e.day, e.drug, e.dose_mg) for e in first.premedication] == [
        (1, "dexamethasone", D(20)), (8, "dexamethasone", D(20))]
    assert all(e.clause == "L2-premed" for e in first.premedication)
    for cycle in course.cycles[1:]:
        assert [(e.day, e.dose_mg) for e in cycle.premedication] == [(1, D(20))]
        assert len(cycle.premedication_on_restart) == 1


def test_L2_premed_mrd_adult_prednisone_100_each_cycle_no_restart() -> None:
    # age_years=40: the population used to be inferred from the 70 kg weight; it is decided by age only now
    course = plan_course(Patient("mrd", 70.0, age_years=40))
    assert course.patient.population == "adult" and course.patient.population_known
    for cycle in course.cycles:
        assert cycle.premedication is not None
        assert [(e.day, e.dose_mg) for e in cycle.premedication] == [(1, D(100))]
        assert "prednisone" in cycle.premedication[0].drug and "16 mg" in cycle.premedication[0].drug
        assert cycle.premedication_on_restart == ()


def test_L2_premed_consolidation_adult_dex_20_each_cycle() -> None:
    course = plan_course(Patient("consolidation", 70.0, age_years=40))  # by age (was inferred from weight)
    assert all([(e.day, e.drug, e.dose_mg) for e in c.premedication] == [(1, "dexamethasone", D(20))]
               for c in course.cycles)
    assert all(c.premedication_on_restart == () for c in course.cycles)


def test_L2_premed_pediatric_5_per_m2_first_cycle_and_step_only() -> None:
    course = plan_course(Patient("rr", 30.0, 1.0, age_years=10))  # by age (was inferred from weight)
    assert course.patient.population == "pediatric"
    assert [(e.day, e.dose_mg) for e in course.cycles[0].premedication] == [(1, D("5.0")), (8, D("5.0"))]
    assert [e.dose_mg for e in course.cycles[0].premedication_on_restart] == [D("5.0")]
    assert all(c.premedication == () and c.premedication_on_restart == () for c in course.cycles[1:])


def test_L2_premed_pediatric_dose_capped_at_20_mg_and_unknown_without_bsa() -> None:
    big_child = plan_course(Patient("mrd", 90.0, 3.5, age_years=16))
    assert big_child.cycles[0].premedication[0].dose_mg == D("17.5")  # 5 * 3.5, under the 20 mg cap
    no_bsa = plan_course(Patient("mrd", 60.0, age_years=15))
    assert no_bsa.cycles[0].premedication[0].dose_mg is None
    assert "5 mg/m2" in no_bsa.cycles[0].premedication[0].dose


def test_L2_premed_age_overrides_weight_inference() -> None:
    adult_light = plan_course(Patient("rr", 40.0, 1.4, age_years=30))
    assert adult_light.cycles[0].premedication[0].dose_mg == D(20)
    assert adult_light.cycles[0].premedication[0].population == "adult"


# ---------------------------------------------------------------- properties

weights = st.floats(min_value=0.5, max_value=300.0, allow_nan=False)
bsas = st.floats(min_value=0.05, max_value=3.5, allow_nan=False)  # the pump refuses less (L2-dose-28)


@settings(max_examples=examples(150))
@given(indication=st.sampled_from(INDICATIONS), weight_kg=weights, bsa_m2=bsas)
def test_L2_dose_28_and_L2_2_step_no_planned_dose_above_its_cap(indication: Indication, weight_kg: float,
                                                                bsa_m2: float) -> None:
    patient = Patient(indication, weight_kg, bsa_m2)
    fixed = weight_kg >= 45  # L2-weight-45 on the weight as given (it was rounded to grams, which crossed 45 kg)
    full_cap = 28.0 if fixed else min(28.0, 15 * bsa_m2)
    step_cap = 9.0 if fixed else min(9.0, 5 * bsa_m2)
    for cycle in plan_course(patient).cycles:
        for dose in cycle.doses:
            step = indication == "rr" and cycle.number == 1 and dose.last_day <= 7
            cap = step_cap if step else full_cap
            assert float(dose.mcg_per_day) <= cap + 1e-9
            assert float(dose.mcg_per_day) > cap - 0.01 - 1e-9  # rounded down by less than 0.01
        covered = [day for d in cycle.doses for day in range(d.first_day, d.last_day + 1)]
        assert covered == list(range(1, 29))


@settings(max_examples=examples(60))
@given(indication=st.sampled_from(INDICATIONS), weight_kg=weights, bsa_m2=bsas)
def test_L2_x_course_length_matches_indication(indication: Indication, weight_kg: float, bsa_m2: float) -> None:
    course = plan_course(Patient(indication, weight_kg, bsa_m2))
    assert len(course.cycles) == {"mrd": 4, "rr": 9, "consolidation": 4}[indication]
    assert [c.number for c in course.cycles] == list(range(1, len(course.cycles) + 1))
    total_days = sum(c.infusion_days + c.treatment_free_days for c in course.cycles)
    assert total_days == {"mrd": 4 * 42, "rr": 5 * 42 + 4 * 84, "consolidation": 4 * 42}[indication]
