"""Who is who (LABEL.md "Units and who is who"): the dose by WEIGHT (L2-weight-45), premedication by AGE
(L2-premed), the age range of the indications (L1.1-L1.3), and no rounding across a line."""
from __future__ import annotations

import math
import subprocess
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypo import examples

from blinpump.firmware import kernel
from blinpump.model import limits as K
from blinpump.model.errors import ModelError
from blinpump.model.label import ADULT_MIN_AGE_YEARS, Indication
from blinpump.model.orders import BagOrder, validate_bag
from blinpump.model.patient import MAX_BSA_CM2, MIN_BSA_CM2, Patient
from blinpump.model.planner import plan_course
from plan_cli import plan_json, run_model

INDICATIONS: tuple[Indication, ...] = ("mrd", "rr", "consolidation")
CLAUSE = {"mrd": "L1.1", "rr": "L1.2", "consolidation": "L1.3"}
D = Decimal

def run(*args: str) -> subprocess.CompletedProcess[str]:
    return run_model("plan", *args)


# ---------------------------------------------------------------- age decides premedication, weight the dose


def test_L2_premed_40_kg_adult_gets_bsa_dose_and_adult_premedication() -> None:
    course = plan_course(Patient("rr", 40.0, 1.3, age_years=30))
    assert course.dosing == "bsa" and course.population == "adult"
    first = course.cycles[0]
    assert first.premedication is not None
    assert [(e.day, e.drug, e.dose_mg, e.population) for e in first.premedication] == [
        (1, "dexamethasone", D(20), "adult"), (8, "dexamethasone", D(20), "adult")]
    assert [d.mcg_per_day for d in first.doses] == [D("6.50"), D("19.50")]  # 5 and 15 mcg/m2/day x 1.3
    # adults: every cycle, and a restart after >= 4 h in every cycle (R/R)
    assert all(c.premedication and c.premedication_on_restart for c in course.cycles)


def test_L2_premed_50_kg_child_gets_fixed_dose_and_pediatric_premedication() -> None:
    course = plan_course(Patient("rr", 50.0, 1.5, age_years=12))
    assert course.dosing == "fixed" and course.population == "pediatric"
    first = course.cycles[0]
    assert [d.mcg_per_day for d in first.doses] == [D(9), D(28)]
    assert first.premedication is not None
    assert [(e.day, e.dose_mg, e.population) for e in first.premedication] == [
        (1, D("7.5"), "pediatric"), (8, D("7.5"), "pediatric")]  # 5 mg/m2 x 1.5 m2
    # children: first cycle only
    assert all(c.premedication == () and c.premedication_on_restart == () for c in course.cycles[1:])


def test_L2_premed_50_kg_child_without_bsa_gets_no_invented_premedication_dose() -> None:
    first = plan_course(Patient("mrd", 50.0, age_years=12)).cycles[0]
    assert first.premedication is not None and first.premedication[0].dose_mg is None
    assert "BSA not given" in first.premedication[0].dose


@pytest.mark.parametrize("age_years, population", [
    (18.0, "adult"), (18, "adult"), (17.999, "pediatric"), (120.0, "adult"), (1 / 12, "pediatric")])
def test_L2_premed_18_years_is_the_adult_line(age_years: float, population: str) -> None:
    assert ADULT_MIN_AGE_YEARS == 18
    assert Patient("consolidation", 70.0, age_years=age_years).population == population


@pytest.mark.parametrize("indication", INDICATIONS)
@pytest.mark.parametrize("weight_kg, bsa_m2", [(70.0, None), (30.0, 1.0), (45.0, 1.4), (6.0, 0.33)])
def test_L2_premed_no_age_population_unknown_both_listed_side_by_side(indication: Indication, weight_kg: float,
                                                                      bsa_m2: float | None) -> None:
    patient = Patient(indication, weight_kg, bsa_m2)
    assert patient.population == "unknown" and not patient.population_known  # never guessed from weight
    course = plan_course(patient)
    for cycle in course.cycles:
        assert cycle.premedication is None and cycle.premedication_on_restart is None
        assert [p.population for p in cycle.premedication_by_population] == ["adult", "pediatric"]
        for premed in cycle.premedication_by_population:
            assert all(e.population == premed.population for e in premed.before_dose + premed.on_restart)
    first = course.cycles[0]
    adult, child = first.premedication_by_population
    assert adult.before_dose and child.before_dose  # both populations premedicate before cycle 1
    # the adult rule is the every-cycle one; the pediatric one is first-cycle only
    assert all(c.premedication_by_population[0].before_dose for c in course.cycles)
    assert all(not c.premedication_by_population[1].before_dose for c in course.cycles[1:])


def test_L2_premed_known_age_lists_only_that_population() -> None:
    for age, population in ((40.0, "adult"), (8.0, "pediatric")):
        cycle = plan_course(Patient("rr", 30.0, 1.0, age_years=age)).cycles[0]
        assert [p.population for p in cycle.premedication_by_population] == [population]


# ---------------------------------------------------------------- the age range of the indications (L1.x)


@pytest.mark.parametrize("indication", INDICATIONS)
def test_L1_x_age_exactly_1_month_accepted_0_9_month_refused(indication: Indication) -> None:
    assert Patient(indication, 4.0, 0.25, age_years=1 / 12).age_years == 1 / 12
    with pytest.raises(ModelError) as err:
        Patient(indication, 4.0, 0.25, age_years=0.9 / 12)
    assert (err.value.field, err.value.clause) == ("age_years", CLAUSE[indication])
    assert "1 month" in err.value.message


@pytest.mark.parametrize("age_years", [-1.0, -0.0001, math.nan, math.inf, -math.inf, 120.0001, 1000.0, 0.0])
def test_L1_x_absurd_or_too_young_age_refused(age_years: float) -> None:
    with pytest.raises(ModelError) as err:
        Patient("rr", 70.0, age_years=age_years)
    assert (err.value.field, err.value.clause) == ("age_years", "L1.2")
    assert "\n" not in str(err.value)


def test_L1_x_age_120_accepted_and_a_bool_is_not_an_age() -> None:
    assert Patient("mrd", 70.0, age_years=120).population == "adult"
    with pytest.raises(ModelError):
        Patient("mrd", 70.0, age_years=True)


# ---------------------------------------------------------------- no rounding across the 45 kg line


@pytest.mark.parametrize("weight_kg", [44.999, 44.9995, 44.99999999, 44.0])
def test_L2_weight_45_just_below_45_kg_is_bsa_based_not_rounded_up(weight_kg: float) -> None:
    patient = Patient("rr", weight_kg, 1.3)
    assert patient.dosing == "bsa" and not patient.fixed_dose
    assert patient.weight_g < 45000  # the kernel sees the same side of the line
    limits = K.kernel_limits(patient)
    assert limits.cap_full_ng_per_day == 19500 and limits.cap_low_ng_per_day == 6500
    with pytest.raises(ModelError) as err:
        Patient("rr", weight_kg)  # below 45 kg there is no dose without a BSA
    assert (err.value.field, err.value.clause) == ("bsa_m2", "L2-dose-28")


def test_L2_weight_45_exactly_45_kg_is_fixed_in_model_and_kernel() -> None:
    patient = Patient("rr", 45.0)
    assert patient.fixed_dose and patient.weight_g == 45000
    assert K.kernel_limits(patient).cap_full_ng_per_day == 28000


def test_L2_weight_45_44_9995_kg_is_44999_g_for_the_kernel() -> None:
    assert Patient("rr", 44.9995, 1.3).weight_g == 44999  # round() gave 45000: a fixed dose on the pump
    assert Patient("rr", 70.0).weight_g == 70000 and Patient("rr", 0.5, 0.05).weight_g == 500


@settings(max_examples=examples(200))
@given(weight_kg=st.one_of(st.floats(min_value=44.99, max_value=45.01), st.floats(min_value=5.39, max_value=5.41),
                           st.floats(min_value=0.5, max_value=300.0)))
def test_L2_weight_45_and_L2_5_min_weight_model_and_kernel_on_the_same_side(weight_kg: float) -> None:
    patient = Patient("rr", weight_kg, 1.0)
    assert patient.fixed_dose == (weight_kg >= 45) == (patient.weight_g >= 45000)
    assert (weight_kg >= 5.4) == (patient.weight_g >= 5400) == (K.kernel_limits(patient).preservative_allowed == 1)


def test_L2_5_min_weight_5_3999_kg_is_not_rounded_up_to_5_4() -> None:
    light = Patient("rr", 5.3999, 0.3)
    assert light.weight_g == 5399 and K.kernel_limits(light).preservative_allowed == 0
    order = BagOrder(drug_mcg=4.5, volume_ml=130.0, rate_ml_per_h=1.8, duration_h=72, preservative=True)
    with pytest.raises(ModelError) as err:
        validate_bag(light, order, 1, 8)
    assert err.value.clause == "L2.5-min-weight"
    validate_bag(Patient("rr", 5.4, 0.3), order, 1, 8)


# ---------------------------------------------------------------- exact premedication doses, the pump's BSA range


def test_L2_premed_pediatric_dexamethasone_is_exact_not_rounded_down() -> None:
    first = plan_course(Patient("mrd", 30.0, 1.23, age_years=9)).cycles[0]
    assert first.premedication is not None
    assert first.premedication[0].dose_mg == D("6.15")  # 5 mg/m2 x 1.23 m2, not 6 or 6.1
    assert first.premedication[0].dose.startswith("6.15 mg")
    odd = plan_course(Patient("mrd", 30.0, 1.23456, age_years=9)).cycles[0]
    assert odd.premedication is not None and odd.premedication[0].dose_mg == D("6.1728")


def test_L2_premed_pediatric_dexamethasone_at_the_largest_bsa_is_under_the_20_mg_cap() -> None:
    first = plan_course(Patient("rr", 90.0, 3.5, age_years=16)).cycles[0]
    assert first.premedication is not None and first.premedication[0].dose_mg == D("17.5")


def test_L2_dose_28_planner_bsa_range_is_the_kernels() -> None:
    assert (MIN_BSA_CM2, MAX_BSA_CM2) == (kernel.BSA_MIN_CM2, kernel.BSA_MAX_CM2)


@pytest.mark.parametrize("bsa_m2", [0.04996, 0.0499, 3.50001, 3.6])
def test_L2_dose_28_bsa_the_pump_refuses_is_refused_without_rounding(bsa_m2: float) -> None:
    with pytest.raises(ModelError) as err:
        Patient("rr", 30.0, bsa_m2)
    assert (err.value.field, err.value.clause) == ("bsa_m2", "L2-dose-28")


@pytest.mark.parametrize("bsa_m2", [0.05, 3.5])
def test_L2_dose_28_bsa_at_the_pumps_bounds_is_accepted(bsa_m2: float) -> None:
    assert Patient("rr", 30.0, bsa_m2).bsa_cm2 in (kernel.BSA_MIN_CM2, kernel.BSA_MAX_CM2)


# ---------------------------------------------------------------- the command line


def test_L2_premed_cli_without_age_says_population_unknown() -> None:
    data = plan_json("--indication", "rr", "--weight-kg", "70", "--cycles", "2")
    assert data["population"] == "unknown" and data["age_years"] is None
    assert data["population_rule"]["basis"] == "age" and data["population_rule"]["adult_from_age_years"] == 18
    first = data["cycles"][0]
    assert first["premedication"] is None and first["premedication_on_restart"] is None
    both = first["premedication_by_population"]
    assert set(both) == {"adult", "pediatric"}
    assert [p["day"] for p in both["adult"]["before_dose"]] == [1, 8]
    assert [p["dose_mg"] for p in both["adult"]["before_dose"]] == [20.0, 20.0]
    assert both["pediatric"]["before_dose"][0]["dose_mg"] is None  # 5 mg/m2 and no BSA: no invented number
    text = run("--indication", "rr", "--weight-kg", "70", "--cycles", "2")
    assert text.returncode == 0
    assert "UNKNOWN" in text.stdout and "--age-years" in text.stdout
    assert "  adult:" in text.stdout and "  pediatric:" in text.stdout


def test_L2_premed_cli_age_decides_not_weight() -> None:
    adult = plan_json("--indication", "consolidation", "--weight-kg", "40", "--bsa-m2", "1.3", "--age-years", "18")
    assert (adult["dosing"], adult["population"]) == ("bsa", "adult")
    assert adult["cycles"][0]["premedication"][0]["dose_mg"] == 20.0
    assert list(adult["cycles"][0]["premedication_by_population"]) == ["adult"]
    child = plan_json("--indication", "consolidation", "--weight-kg", "50", "--bsa-m2", "1.23", "--age-years",
                      "17.9")
    assert (child["dosing"], child["population"]) == ("fixed", "pediatric")
    assert child["cycles"][0]["premedication"][0]["dose_mg"] == 6.15
    assert child["cycles"][0]["doses"][0]["mcg_per_day"] == 28.0


@pytest.mark.parametrize("age", ["-1", "nan", "inf", "121", "0.075", "0", "abc", ""])
def test_L1_x_cli_bad_age_exits_2_with_one_line(age: str) -> None:
    for extra in ([], ["--json"]):
        result = run("--indication", "mrd", "--weight-kg", "70", "--age-years=%s" % age, *extra)
        assert result.returncode == 2 and result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and "field=age_years clause=L1.1:" in lines[0], result.stderr


def test_L1_x_cli_one_month_as_a_fraction_of_a_year_is_accepted() -> None:
    data = plan_json("--indication", "rr", "--weight-kg", "4", "--bsa-m2", "0.25", "--age-years", repr(1 / 12))
    assert data["population"] == "pediatric"


def test_L2_weight_45_cli_44_9995_kg_needs_a_bsa() -> None:
    result = run("--indication", "rr", "--weight-kg", "44.9995")
    assert result.returncode == 2 and "field=bsa_m2 clause=L2-dose-28:" in result.stderr
    data = plan_json("--indication", "rr", "--weight-kg", "44.9995", "--bsa-m2", "1.0", "--cycles", "1")
    assert data["dosing"] == "bsa" and data["cycles"][0]["doses"][1]["mcg_per_day"] == 15.0
