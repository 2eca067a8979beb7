"""The label as data: every number checked against LABEL.md and the seed prescribing information."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from blinpump.model import label as L

# Every clause ID in LABEL.md, and the ones that carry a number (the rest are prose rules).
ALL_CLAUSES = {
    "L1.1", "L1.2", "L1.3", "L2.1-course", "L2.2-course", "L2.3-course", "L2-cycle-42", "L2.2-cycle-84",
    "L2-dose-28", "L2.2-step", "L2-weight-45", "L2-vial", "L2-constant-rate", "L2.5-durations", "L2.5-min-weight",
    "L2.5-errors", "L5.12-benzyl", "EXT-no-flush", "EXT-rates", "EXT-pump", "EXT-overdose-12h", "L2.6-vial",
    "L2.6-bag-24-48", "L2.6-bag-72-96", "L2.6-bag-7d", "L2-hosp", "L2-reinit-4h", "L2-premed", "L2-it-prophylaxis",
    "L2.4-resume-7d", "L2.4-new-cycle", "L2.4-restart-9", "L2.4-crs-4", "L2.4-seizure", "L2.4-neuro-3",
    "L2.4-neuro-4", "L2.4-other-3", "L2.4-other-4", "L2.4-steroids", "L5.1-crs", "L5.2-neuro", "A-contraception",
    "A-live-vaccines", "A-missed",
}
NO_NUMBER = {"L2-constant-rate", "L2.5-errors", "EXT-no-flush", "EXT-pump", "L2-it-prophylaxis", "A-missed"}
# "L1" names the three indications together (the one-month minimum age is common to L1.1-L1.3)
ROW_CLAUSES = ALL_CLAUSES | {"L1"}


def _rows(clause: str) -> dict[str, int | float | str]:
    return {r.what: r.value for r in L.label_rows() if r.clause == clause}


def test_label_rows_cover_every_numbered_clause() -> None:
    clauses = {r.clause for r in L.label_rows()}
    assert ALL_CLAUSES - NO_NUMBER <= clauses


def test_label_rows_cite_only_label_clauses() -> None:
    unknown = {r.clause for r in L.label_rows()} - ROW_CLAUSES
    assert not unknown


def test_label_rows_are_complete_and_json_ready() -> None:
    rows = L.label_rows()
    assert len(rows) == len({(r.clause, r.what) for r in rows}), "duplicate rows"
    for row in rows:
        assert row.what and row.source
        assert isinstance(row.value, (int, float, str))
    json.dumps([vars(r) for r in rows])


def test_label_rows_mark_ext_numbers_as_configurable() -> None:
    ext_rows = [r for r in L.label_rows() if r.clause.startswith("EXT-")]
    assert ext_rows and all(r.source.startswith("EXT") for r in ext_rows)
    # L2.3-course: the consolidation cycle count is a site setting, not an EXT (full label) number: it used to be
    # marked EXT here; the seed gives no number and LABEL.md asks that it never be shown as a label number
    site_rows = [r for r in L.label_rows() if r.clause == "L2.3-course"]
    assert site_rows and all(r.source.startswith("site setting") for r in site_rows)


def test_L1_three_indications() -> None:
    assert L.INDICATION_CODES == ("mrd", "rr", "consolidation")
    assert [L.indication_clause(c) for c in L.INDICATION_CODES] == ["L1.1", "L1.2", "L1.3"]
    assert L.MIN_AGE_MONTHS.value == 1
    assert L.MRD_THRESHOLD_PCT.value == Decimal("0.1")


def test_L2_1_course_mrd_one_induction_then_three_consolidation() -> None:
    rule = L.course_rule("mrd")
    assert rule.clause == "L2.1-course"
    assert rule.phases == ("induction", "consolidation", "consolidation", "consolidation")
    assert rule.max_cycles == 4


def test_L2_2_course_rr_two_induction_three_consolidation_four_continued() -> None:
    rule = L.course_rule("rr")
    assert rule.clause == "L2.2-course"
    assert rule.max_cycles == 9
    assert rule.phases[0:2] == ("induction",) * 2
    assert rule.phases[2:5] == ("consolidation",) * 3
    assert rule.phases[5:9] == ("continued",) * 4


def test_L2_3_course_consolidation_count_is_a_site_setting_default_4_and_configurable() -> None:
    assert L.course_rule("consolidation").max_cycles == 4
    assert L.course_rule("consolidation", L.ExtConfig(consolidation_max_cycles=2)).phases == ("consolidation",) * 2
    assert L.course_rule("consolidation").source.startswith("site setting")
    with pytest.raises(ValueError):
        L.ExtConfig(consolidation_max_cycles=0)


def test_L2_cycle_42_is_28_infusion_plus_14_free() -> None:
    assert (L.INFUSION_DAYS.value, L.TREATMENT_FREE_DAYS.value, L.CYCLE_DAYS.value) == (28, 14, 42)
    assert L.INFUSION_DAYS.value + L.TREATMENT_FREE_DAYS.value == L.CYCLE_DAYS.value
    for indication in L.INDICATION_CODES:
        assert L.treatment_free_days(indication, 1) == 14


def test_L2_2_cycle_84_rr_cycles_6_to_9_rest_56_days() -> None:
    assert (L.CONTINUED_TREATMENT_FREE_DAYS.value, L.CONTINUED_CYCLE_DAYS.value) == (56, 84)
    assert [L.treatment_free_days("rr", n) for n in range(1, 10)] == [14] * 5 + [56] * 4
    assert L.treatment_free_days("mrd", 4) == 14


def test_L2_dose_28_fixed_28_or_15_per_m2_capped_at_28() -> None:
    assert (L.FULL_DOSE_FIXED.value, L.FULL_DOSE_PER_M2.value, L.FULL_DOSE_CAP.value) == (28, 15, 28)
    assert L.FULL_DOSE_FIXED.unit == "mcg/day" and L.FULL_DOSE_PER_M2.unit == "mcg/m2/day"


def test_L2_2_step_9_or_5_per_m2_capped_at_9_cycle1_days_1_7() -> None:
    assert (L.STEP_DOSE_FIXED.value, L.STEP_DOSE_PER_M2.value, L.STEP_DOSE_CAP.value) == (9, 5, 9)
    assert (L.STEP_CYCLE.value, L.STEP_FIRST_DAY.value, L.STEP_LAST_DAY.value) == (1, 1, 7)


def test_L2_weight_45_and_L2_vial_35() -> None:
    assert L.FIXED_DOSE_MIN_WEIGHT_KG.value == 45 and L.FIXED_DOSE_MIN_WEIGHT_KG.clause == "L2-weight-45"
    assert L.VIAL_MCG.value == 35 and L.VIAL_MCG.clause == "L2-vial"


def test_L2_5_durations_24_48_free_72_96_168_with_preservative() -> None:
    assert L.PRESERVATIVE_FREE_DURATIONS_H == (24, 48)
    assert L.PRESERVATIVE_DURATIONS_H == (72, 96, 168)
    assert [L.preservative_required(d) for d in L.BAG_DURATIONS_H] == [False, False, True, True, True]
    assert not L.preservative_required(36)


def test_L2_5_min_weight_5_4_kg() -> None:
    assert L.MIN_WEIGHT_PRESERVATIVE_KG.value == Decimal("5.4")


def test_L5_12_benzyl_2_5_and_7_4_mg_per_ml() -> None:
    assert L.benzyl_alcohol_mg_per_ml(72) == L.benzyl_alcohol_mg_per_ml(96) == Decimal("2.5")
    assert L.benzyl_alcohol_mg_per_ml(168) == Decimal("7.4")
    assert L.benzyl_alcohol_mg_per_ml(24) == L.benzyl_alcohol_mg_per_ml(48) == 0


@pytest.mark.parametrize("limit, clause, room_h, fridge_h", [
    (L.VIAL_STORAGE, "L2.6-vial", 4, 24),
    (L.BAG_24_48H_STORAGE, "L2.6-bag-24-48", 48, 8 * 24),
    (L.BAG_72_96H_STORAGE, "L2.6-bag-72-96", 4 * 24, 14 * 24),
    (L.BAG_7D_STORAGE, "L2.6-bag-7d", 7 * 24, 14 * 24),
])
def test_L2_6_table5_storage_limits(limit: L.StorageLimit, clause: str, room_h: int, fridge_h: int) -> None:
    assert (limit.clause, limit.room_h, limit.fridge_h) == (clause, room_h, fridge_h)


def test_L2_6_bag_storage_by_duration() -> None:
    assert [L.bag_storage_limit(d).clause for d in (24, 48, 72, 96, 168)] == [
        "L2.6-bag-24-48", "L2.6-bag-24-48", "L2.6-bag-72-96", "L2.6-bag-72-96", "L2.6-bag-7d"]
    with pytest.raises(KeyError):
        L.bag_storage_limit(12)


def test_L2_hosp_3_2_for_mrd_and_consolidation_9_2_for_rr() -> None:
    assert [L.hospitalization_days("mrd", n) for n in (1, 2, 3)] == [3, 2, 0]
    assert [L.hospitalization_days("consolidation", n) for n in (1, 2, 3)] == [3, 2, 0]
    assert [L.hospitalization_days("rr", n) for n in (1, 2, 3, 9)] == [9, 2, 0, 0]


def test_L2_premed_adult_doses() -> None:
    mrd = L.premed_rule("mrd", "adult")
    assert mrd.dose_mg == 100 and mrd.drug.startswith("prednisone") and mrd.every_cycle
    assert L.MRD_ADULT_DEX_ALTERNATIVE_MG.value == 16
    rr = L.premed_rule("rr", "adult")
    assert (rr.drug, rr.dose_mg, rr.every_cycle, rr.before_step_dose, rr.on_restart) == (
        "dexamethasone", 20, True, True, "every-cycle")
    cons = L.premed_rule("consolidation", "adult")
    assert (cons.dose_mg, cons.before_step_dose, cons.on_restart) == (20, False, "never")
    assert L.PREMED_LEAD_H.value == 1


def test_L2_premed_pediatric_5_mg_per_m2_max_20_first_cycle() -> None:
    for indication in L.INDICATION_CODES:
        rule = L.premed_rule(indication, "pediatric")
        assert (rule.drug, rule.dose_mg, rule.dose_mg_per_m2, rule.max_dose_mg) == ("dexamethasone", None, 5, 20)
        assert not rule.every_cycle and rule.on_restart == "first-cycle"
        assert rule.before_step_dose == (indication == "rr")


def test_L2_reinit_4h_and_L2_4_resume_7d_and_new_cycle() -> None:
    assert L.REINIT_H.value == 4
    assert L.RESUME_MAX_DAYS.value == 7 and L.NEW_CYCLE_AFTER_DAYS.value == 7


def test_L2_4_table4_dose_modifications() -> None:
    mods = {(m.clause, m.reaction, m.grade): m for m in L.DOSE_MODS}
    assert L.RESTART_DOSE_FIXED.value == 9 and L.RESTART_DOSE_PER_M2.value == 5
    assert L.RESTART_ESCALATE_AFTER_DAYS.value == 7
    assert mods[("L2.4-restart-9", "CRS", "grade 3")].restarts
    assert mods[("L2.4-restart-9", "ICANS", "grade 2")].restarts
    assert mods[("L2.4-crs-4", "CRS", "grade 4")].permanent
    assert L.SEIZURES_TOLERATED.value == 1 and mods[("L2.4-seizure", "seizures", "more than one")].permanent
    neuro3 = mods[("L2.4-neuro-3", "neurologic event incl. ICANS", "grade 3")]
    assert (neuro3.withhold_min_days, neuro3.discontinue_if_resolution_over_days,
            neuro3.discontinue_if_at_low_dose) == (3, 7, True)
    assert mods[("L2.4-neuro-4", "neurologic event incl. ICANS", "grade 4")].permanent
    other3 = mods[("L2.4-other-3", "other clinically relevant reaction", "grade 3")]
    assert (other3.discontinue_if_resolution_over_days, other3.permanent) == (14, False)
    other4 = mods[("L2.4-other-4", "other clinically relevant reaction", "grade 4")]
    assert other4.clinician_decides and not other4.permanent


def test_L2_4_steroids_dex_8_mg_q8h_3_days_taper_4() -> None:
    assert (L.STEROID_DEX_MG.value, L.STEROID_DEX_MG_PER_M2.value, L.STEROID_INTERVAL_H.value,
            L.STEROID_MAX_DAYS.value, L.STEROID_TAPER_DAYS.value) == (8, 5, 8, 3, 4)


def test_EXT_rates_and_EXT_overdose_12h_defaults() -> None:
    ext = L.DEFAULT_EXT
    assert (ext.rate_24h_bag_ml_per_h, ext.rate_48h_bag_ml_per_h, ext.infused_volume_24_48h_bag_ml) == (10, 5, 240)
    assert ext.rate_24h_bag_ml_per_h * 24 == ext.rate_48h_bag_ml_per_h * 48 == ext.infused_volume_24_48h_bag_ml
    assert ext.overdose_lockout_h == 12
    assert _rows("EXT-overdose-12h") == {"earliest re-initiation after an overdose interruption": 12}
    changed = [r.value for r in L.label_rows(L.ExtConfig(overdose_lockout_h=24)) if r.clause == "EXT-overdose-12h"]
    assert changed == [24]


def test_L5_1_crs_L5_2_neuro_and_article_numbers() -> None:
    assert sorted(_rows("L5.1-crs").values()) == [2, 5, 7, 15, 16]
    assert sorted(_rows("L5.2-neuro").values()) == [2, 7.5, 13, 65]
    assert list(_rows("A-contraception").values()) == [48, 48]
    assert list(_rows("A-live-vaccines").values()) == [2]


def test_label_rows_show_the_numbers_the_code_uses() -> None:
    assert 28 in _rows("L2-dose-28").values() and 15 in _rows("L2-dose-28").values()
    assert set(_rows("L2.6-bag-7d").values()) == {168, 336}
    assert _rows("L2.5-durations")["bag durations, with preservative"] == "72/96/168"
    assert _rows("L2.2-course")["rr course: continued cycles"] == "6-9"
