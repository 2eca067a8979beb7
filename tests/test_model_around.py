"""What the plan says around the pump (model/around.py), and the course length as a site setting."""
from __future__ import annotations

import subprocess
from decimal import Decimal

import pytest

from blinpump.model import label as L
from blinpump.model.around import benzyl_alcohol, crs_dexamethasone
from blinpump.model.errors import ModelError
from blinpump.model.label import ExtConfig
from blinpump.model.patient import Patient
from blinpump.model.planner import plan_course
from plan_cli import plan_json, run_model

D = Decimal
def run(*args: str) -> subprocess.CompletedProcess[str]:
    return run_model("plan", *args)


def bags(patient: Patient, ext: ExtConfig = L.DEFAULT_EXT) -> dict[int, tuple[Decimal, Decimal, bool]]:
    return {b.duration_h: (b.mg_per_day, b.mg_per_kg_per_day, b.recommended)
            for b in benzyl_alcohol(patient, ext).bags}


# ---------------------------------------------------------------- L5.12-benzyl with EXT-rates


def test_L5_12_benzyl_daily_load_per_kg_at_the_published_rates() -> None:
    infant = Patient("rr", 6.0, 0.33, age_years=0.5)
    # 72/96 h: 2.5 mg/mL x 1.8 mL/h x 24 h = 108 mg/day; 7 days: 7.4 mg/mL x 0.6 mL/h x 24 h = 106.56 mg/day
    assert bags(infant) == {24: (D(0), D(0), True), 48: (D(0), D(0), True), 72: (D(108), D(18), True),
                            96: (D(108), D(18), True), 168: (D("106.56"), D("17.76"), True)}
    load = benzyl_alcohol(infant)
    assert load.clause == "L5.12-benzyl" and load.flagged and "infant" in load.reason
    assert "preservative-free" in load.advice and "all other sources" in load.advice
    assert {b.duration_h: b.ml_per_day for b in load.bags} == {24: 240, 48: 120, 72: D("43.2"), 96: D("43.2"),
                                                               168: D("14.4")}


def test_L5_12_benzyl_per_kg_is_rounded_up_never_down() -> None:
    loads = bags(Patient("mrd", 7.0, 0.37, age_years=0.6))
    assert loads[72][1] == D("15.43")  # 108 / 7 = 15.428...
    assert loads[168][1] == D("15.23")  # 106.56 / 7 = 15.2228...


@pytest.mark.parametrize("age_years, flagged", [(1 / 12, True), (0.999, True), (1.0, False), (40.0, False),
                                                (None, True)])
def test_L5_12_benzyl_flagged_under_1_year_and_when_age_unknown(age_years: float | None, flagged: bool) -> None:
    load = benzyl_alcohol(Patient("consolidation", 70.0, 1.9, age_years=age_years))
    assert load.flagged is flagged
    if age_years is None:
        assert "age not given" in load.reason


def test_L5_12_benzyl_uses_the_configurable_EXT_rates() -> None:
    ext = ExtConfig(rate_72h_96h_bag_ml_per_h=D("2.0"), rate_7d_bag_ml_per_h=D("0.8"))
    loads = bags(Patient("rr", 10.0, 0.45, age_years=1.5), ext)
    assert loads[72][0] == D("120.0") and loads[168][0] == D("142.08")  # 2.5 x 2.0 x 24; 7.4 x 0.8 x 24
    with pytest.raises(ValueError):
        ExtConfig(rate_7d_bag_ml_per_h=D(0))
    rows = {r.what: r.value for r in L.label_rows() if r.clause == "EXT-rates"}
    assert 1.8 in rows.values() and 0.6 in rows.values()


def test_L2_5_min_weight_preservative_bags_not_recommended_under_5_4_kg() -> None:
    loads = bags(Patient("rr", 5.3999, 0.3, age_years=0.3))
    assert [loads[d][2] for d in (24, 48, 72, 96, 168)] == [True, True, False, False, False]
    assert all(recommended for _, _, recommended in bags(Patient("rr", 5.4, 0.3, age_years=0.3)).values())


# ---------------------------------------------------------------- L2.4-steroids


def test_L2_4_steroids_fixed_8_mg_from_45_kg() -> None:
    crs = crs_dexamethasone(Patient("rr", 45.0, age_years=12))  # a child of 45 kg: Table 4 is by weight
    assert (crs.clause, crs.dose_mg, crs.every_h, crs.up_to_days, crs.taper_over_days) == (
        "L2.4-steroids", D(8), 8, 3, 4)
    assert crs.basis == "weight >= 45 kg"


def test_L2_4_steroids_5_mg_per_m2_exact_below_45_kg() -> None:
    crs = crs_dexamethasone(Patient("rr", 44.999, 1.23, age_years=30))  # an adult under 45 kg: by weight
    assert crs.dose_mg == D("6.15") and crs.basis == "weight < 45 kg"
    assert crs.dose.startswith("6.15 mg") and "every 8 h" in crs.dose and "taper over 4 days" in crs.dose


def test_L2_4_steroids_per_m2_capped_at_8_mg() -> None:
    assert crs_dexamethasone(Patient("rr", 40.0, 1.6)).dose_mg == D(8)  # 5 x 1.6 = 8
    assert crs_dexamethasone(Patient("rr", 40.0, 1.8)).dose_mg == D(8)  # 9 -> 8
    assert crs_dexamethasone(Patient("rr", 40.0, 1.59)).dose_mg == D("7.95")


# ---------------------------------------------------------------- A-contraception


@pytest.mark.parametrize("indication, cycles, last_day", [
    ("rr", None, 5 * 42 + 3 * 84 + 28), ("mrd", None, 3 * 42 + 28), ("consolidation", 1, 28),
    ("consolidation", 2, 42 + 28), ("rr", 6, 5 * 42 + 28)])
def test_A_contraception_48_h_after_the_last_planned_infusion_day(indication: L.Indication, cycles: int | None,
                                                                  last_day: int) -> None:
    course = plan_course(Patient(indication, 70.0, age_years=30), cycles)
    contra = course.around.contraception
    assert course.last_infusion_course_day == last_day == contra.last_planned_infusion_course_day
    assert contra.until_end_of_course_day == last_day + 2 and contra.hours_after_last_dose == 48
    assert contra.clause == "A-contraception" and "breastfeeding" in contra.during_and_after
    assert "pregnancy test" in contra.before_start


# ---------------------------------------------------------------- L2.3-course: a site setting


def test_L2_3_course_consolidation_count_is_marked_as_a_site_setting() -> None:
    course = plan_course(Patient("consolidation", 70.0), 2)
    length = course.course_length
    assert (length.cycles, length.max_cycles, length.source, length.clause) == (2, 4, "site setting", "L2.3-course")
    assert "not a label number" in length.note
    default = plan_course(Patient("consolidation", 70.0)).course_length
    assert (default.cycles, default.source) == (4, "site setting")


@pytest.mark.parametrize("indication, clause, maximum", [("mrd", "L2.1-course", 4), ("rr", "L2.2-course", 9)])
def test_L2_x_course_label_courses_are_marked_as_label(indication: L.Indication, clause: str, maximum: int) -> None:
    length = plan_course(Patient(indication, 70.0)).course_length
    assert (length.cycles, length.max_cycles, length.source, length.clause) == (maximum, maximum, "label", clause)


def test_L2_3_course_cycles_beyond_the_site_setting_bound_refused() -> None:
    for bad in (0, 5):
        with pytest.raises(ModelError) as err:
            plan_course(Patient("consolidation", 70.0), bad)
        assert (err.value.field, err.value.clause) == ("cycles", "L2.3-course")
        assert "site setting" in err.value.message
    assert len(plan_course(Patient("consolidation", 70.0), 4).cycles) == 4
    wider = ExtConfig(consolidation_max_cycles=6)
    assert plan_course(Patient("consolidation", 70.0), 6, wider).course_length.max_cycles == 6


def test_L2_3_course_cli_json_course_length_site_setting() -> None:
    data = plan_json("--indication", "consolidation", "--weight-kg", "70", "--cycles", "3")
    assert data["course_length"] == {
        "cycles": 3, "max_cycles": 4, "source": "site setting", "clause": "L2.3-course",
        "note": data["course_length"]["note"]}
    assert len(data["cycles"]) == 3
    result = run("--indication", "consolidation", "--weight-kg", "70", "--cycles", "5")
    assert result.returncode == 2 and "field=cycles clause=L2.3-course:" in result.stderr
    assert "site setting" in result.stderr and len(result.stderr.splitlines()) == 1
    assert plan_json("--indication", "rr", "--weight-kg", "70")["course_length"]["source"] == "label"


# ---------------------------------------------------------------- the plan, JSON and text


def test_EXT_filter_L2_it_prophylaxis_L2_4_steroids_L5_12_benzyl_A_contraception_in_plan_json() -> None:
    data = plan_json("--indication", "mrd", "--weight-kg", "30", "--bsa-m2", "1.23", "--age-years", "0.5",
                     "--cycles", "1")
    around = data["around_the_pump"]
    assert {k: v["clause"] for k, v in around.items()} == {
        "filter": "EXT-filter", "intrathecal_prophylaxis": "L2-it-prophylaxis",
        "crs_dexamethasone": "L2.4-steroids", "benzyl_alcohol": "L5.12-benzyl", "contraception": "A-contraception"}
    checks = " ".join(around["filter"]["checks"])
    assert "0.2 micron" in checks and "dedicated lumen" in checks and "primed with the BLINCYTO solution only" in checks
    assert around["filter"]["kind"] == "set-up check"
    assert "before and during" in around["intrathecal_prophylaxis"]["text"]
    assert around["crs_dexamethasone"]["dose_mg"] == 6.15 and around["crs_dexamethasone"]["every_h"] == 8
    benzyl = around["benzyl_alcohol"]
    assert benzyl["flagged"] is True
    assert {b["duration_h"]: b["mg_per_kg_per_day"] for b in benzyl["bags"]} == {
        24: 0.0, 48: 0.0, 72: 3.6, 96: 3.6, 168: 3.56}
    assert around["contraception"]["until_end_of_course_day"] == 30


def test_EXT_filter_L2_it_prophylaxis_L2_4_steroids_L5_12_benzyl_A_contraception_in_plan_text() -> None:
    result = run("--indication", "consolidation", "--weight-kg", "6", "--bsa-m2", "0.33", "--age-years", "0.5")
    assert result.returncode == 0
    for clause in ("EXT-filter", "L2-it-prophylaxis", "L2.4-steroids", "L5.12-benzyl", "A-contraception",
                   "L2.3-course", "SITE SETTING", "FLAGGED"):
        assert clause in result.stdout, clause
    assert "18 mg/kg/day" in result.stdout and "17.76 mg/kg/day" in result.stdout
    assert len([line for line in result.stdout.splitlines() if line[:1].isdigit()]) == 4  # the cycle rows
