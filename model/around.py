"""What the label asks around the pump, for one patient's plan, each with its clause ID.

The pump enforces the dose; these are the things a pharmacist or clinician must do or know beside it:

- EXT-filter: the infusion line (a set-up check, not a number);
- L2-it-prophylaxis: intrathecal chemotherapy prophylaxis before and during therapy;
- L2.4-steroids: the dexamethasone dose for grade 3 (and grade 4) CRS, by WEIGHT (Table 4's columns);
- L5.12-benzyl: the benzyl alcohol load of the preservative bags (72 h, 96 h, 7 days) at the published rates
  (EXT-rates), per kg per day, flagged for infants;
- A-contraception: pregnancy test, contraception and no breastfeeding until 48 h after the last dose, as a day
  offset from the plan's last infusion day.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from .label import (
    BAG_DURATIONS_H,
    CONTRACEPTION_AFTER_H,
    DEFAULT_EXT,
    FIXED_DOSE_MIN_WEIGHT_KG,
    MIN_WEIGHT_PRESERVATIVE_KG,
    NO_BREASTFEEDING_AFTER_H,
    PATIENT_ARTICLE,
    SEED,
    STEROID_DEX_MG,
    STEROID_DEX_MG_PER_M2,
    STEROID_INTERVAL_H,
    STEROID_MAX_DAYS,
    STEROID_TAPER_DAYS,
    ExtConfig,
    benzyl_alcohol_mg_per_ml,
    preservative_required,
)
from .patient import Patient, exact

H_PER_DAY = 24
CENT = Decimal("0.01")

# Not a label number. 5.12 speaks of neonates (very low birth weight and early preterm neonates); the
# indication starts at one month (L1.x), so a patient the planner accepts is past the first 28 days of life,
# but a preterm infant can still be a neonate by corrected age. This reading flags every patient under 1 year,
# and every patient whose age is not given (never inferred from weight).
BENZYL_FLAG_BELOW_AGE_YEARS = 1


@dataclass(frozen=True)
class SetupCheck:
    """EXT-filter: the line, checked at set-up."""

    clause: str
    source: str
    checks: tuple[str, ...]


@dataclass(frozen=True)
class Advice:
    """A recommendation with no number (L2-it-prophylaxis)."""

    clause: str
    source: str
    text: str


@dataclass(frozen=True)
class CrsDexamethasone:
    """L2.4-steroids: dexamethasone for grade 3 CRS (and grade 4, L2.4-crs-4), by weight."""

    clause: str
    basis: str  # which Table 4 column: weight >= 45 kg or < 45 kg
    dose_mg: Decimal  # exact, capped at 8 mg
    dose: str
    route: str
    every_h: int
    up_to_days: int
    taper_over_days: int
    when: str
    source: str


@dataclass(frozen=True)
class BenzylBag:
    """One bag duration's benzyl alcohol at its published rate (L5.12-benzyl with EXT-rates)."""

    duration_h: int
    preservative: bool
    benzyl_mg_per_ml: Decimal
    rate_ml_per_h: Decimal  # EXT-rates
    ml_per_day: Decimal
    mg_per_day: Decimal
    mg_per_kg_per_day: Decimal  # rounded UP to 0.01 so the load is never understated
    recommended: bool  # L2.5-min-weight: preservative bags not recommended under 5.4 kg
    note: str


@dataclass(frozen=True)
class BenzylAlcohol:
    clause: str
    flagged: bool  # infant (< 1 year) or age unknown: prefer preservative-free, add up the daily load
    reason: str
    advice: str
    bags: tuple[BenzylBag, ...]
    source: str


@dataclass(frozen=True)
class Contraception:
    """A-contraception: until 48 h after the last dose (patient article)."""

    clause: str
    before_start: str
    during_and_after: str
    hours_after_last_dose: int
    last_planned_infusion_course_day: int  # course day 1 = first infusion day
    until_end_of_course_day: int  # 48 h after the end of the last infusion day
    note: str
    source: str


@dataclass(frozen=True)
class AroundThePump:
    filter: SetupCheck
    it_prophylaxis: Advice
    crs_dexamethasone: CrsDexamethasone
    benzyl_alcohol: BenzylAlcohol
    contraception: Contraception


FILTER = SetupCheck(
    "EXT-filter", "EXT (full label 2.5 / IFU)",
    ("IV tubing with a sterile, non-pyrogenic, low protein-binding 0.2 micron in-line filter",
     "a dedicated lumen for BLINCYTO",
     "the line primed with the BLINCYTO solution only (never flushed: EXT-no-flush)"))

IT_PROPHYLAXIS = Advice(
    "L2-it-prophylaxis", SEED + " 2.1-2.3",
    "intrathecal chemotherapy prophylaxis is recommended before and during BLINCYTO therapy to prevent central "
    "nervous system ALL relapse")


def mg_text(value: Decimal) -> str:
    """A dose in mg as written: 6.15, 20, 17.5 (no exponent, no trailing zeros)."""
    return format(value.normalize(), "f")


CRS_WHEN = ("grade 3 CRS (interrupt; restart at L2.4-restart-9) and grade 4 CRS (discontinue, L2.4-crs-4; "
            "dexamethasone as for grade 3)")
CRS_SCHEDULE = "every %d h IV or PO for up to %d days, then taper over %d days" % (
    STEROID_INTERVAL_H.value, STEROID_MAX_DAYS.value, STEROID_TAPER_DAYS.value)


def _crs(basis: str, dose_mg: Decimal, dose: str) -> CrsDexamethasone:
    return CrsDexamethasone("L2.4-steroids", basis, dose_mg, "%s %s" % (dose, CRS_SCHEDULE), "IV or PO",
                            STEROID_INTERVAL_H.value, STEROID_MAX_DAYS.value, STEROID_TAPER_DAYS.value, CRS_WHEN,
                            SEED + " Table 4")


def crs_dexamethasone(patient: Patient) -> CrsDexamethasone:
    # L2.4-steroids: Table 4's columns are by WEIGHT, like the dose (L2-weight-45), not by age
    if patient.fixed_dose:
        dose = Decimal(STEROID_DEX_MG.value)
        return _crs("weight >= %d kg" % FIXED_DOSE_MIN_WEIGHT_KG.value, dose, "%s mg" % mg_text(dose))
    per_m2 = "%d mg/m2 (max %d mg)" % (STEROID_DEX_MG_PER_M2.value, STEROID_DEX_MG.value)
    assert patient.bsa_m2 is not None, "Patient guarantees a BSA below 45 kg (L2-dose-28)"
    # exact: 5 mg/m2 x 1.23 m2 = 6.15 mg, capped at 8 mg, never rounded
    dose = min(Decimal(STEROID_DEX_MG.value), STEROID_DEX_MG_PER_M2.value * exact(patient.bsa_m2))
    return _crs("weight < %d kg" % FIXED_DOSE_MIN_WEIGHT_KG.value, dose,
                "%s mg (%s)" % (mg_text(dose), per_m2))


def _per_kg(mg_per_day: Decimal, patient: Patient) -> Decimal:
    return (mg_per_day / exact(patient.weight_kg)).quantize(CENT, rounding=ROUND_CEILING)


def benzyl_alcohol(patient: Patient, ext: ExtConfig = DEFAULT_EXT) -> BenzylAlcohol:
    # L5.12-benzyl: 2.5 mg/mL in 72 h and 96 h bags, 7.4 mg/mL in the 7-day bag; the volume infused per day is
    # the bag's published rate (EXT-rates) x 24 h. 24 h and 48 h bags are preservative-free.
    recommended = exact(patient.weight_kg) >= MIN_WEIGHT_PRESERVATIVE_KG.value  # L2.5-min-weight
    bags: list[BenzylBag] = []
    for duration_h in BAG_DURATIONS_H:
        rate = ext.bag_rate_ml_per_h(duration_h)
        ml_per_day = rate * H_PER_DAY
        mg_per_ml = benzyl_alcohol_mg_per_ml(duration_h)
        mg_per_day = mg_per_ml * ml_per_day
        with_preservative = preservative_required(duration_h)
        if not with_preservative:
            note = "preservative-free"
        elif recommended:
            note = "with preservative (benzyl alcohol)"
        else:
            note = "not recommended under %s kg (L2.5-min-weight)" % MIN_WEIGHT_PRESERVATIVE_KG.value
        bags.append(BenzylBag(duration_h, with_preservative, mg_per_ml, rate, ml_per_day, mg_per_day,
                              _per_kg(mg_per_day, patient), recommended or not with_preservative, note))
    if patient.age_years is None:
        flagged, reason = True, "age not given: an infant or neonate cannot be ruled out (never inferred from weight)"
    elif patient.age_years < BENZYL_FLAG_BELOW_AGE_YEARS:
        flagged, reason = True, "infant under %d year" % BENZYL_FLAG_BELOW_AGE_YEARS
    else:
        flagged, reason = False, "patient %g years old (not an infant)" % patient.age_years
    advice = ("in neonates and infants use the preservative-free 24 h or 48 h bags where possible; with a "
              "preservative bag, add its daily benzyl alcohol load to that of all other sources (and other "
              "excipients such as ethanol or propylene glycol) and monitor for metabolic acidosis")
    return BenzylAlcohol("L5.12-benzyl", flagged, reason, advice, tuple(bags),
                         SEED + " 5.12; rates EXT-rates (configurable)")


def contraception(last_infusion_course_day: int) -> Contraception:
    # A-contraception: the infusion of the last day ends at the end of that course day; 48 h later is the end of
    # the course day two days on
    hours = CONTRACEPTION_AFTER_H.value
    assert NO_BREASTFEEDING_AFTER_H.value == hours
    return Contraception(
        clause="A-contraception",
        before_start="pregnancy test before starting (patients who can become pregnant)",
        during_and_after="contraception, and no breastfeeding, during treatment and for %d h after the last dose"
                         % hours,
        hours_after_last_dose=hours,
        last_planned_infusion_course_day=last_infusion_course_day,
        until_end_of_course_day=last_infusion_course_day + hours // H_PER_DAY,
        note="course day 1 is the first infusion day; the plan has no interruptions and treatment-free intervals "
             "of the label's length, so this is the earliest end: count %d h from when the pump records the last "
             "infusion stopped" % hours,
        source=PATIENT_ARTICLE)


def around_the_pump(patient: Patient, last_infusion_course_day: int, ext: ExtConfig = DEFAULT_EXT) -> AroundThePump:
    return AroundThePump(FILTER, IT_PROPHYLAXIS, crs_dexamethasone(patient), benzyl_alcohol(patient, ext),
                         contraception(last_infusion_course_day))
