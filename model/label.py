"""The BLINCYTO label (LABEL.md) as data: every clause that carries a number.

Each number is a `LabelNumber` that keeps its clause ID, so code that uses it and the printed table
(`label_rows`) both point back to LABEL.md. Numbers marked EXT are not in the seed text (they come from
the full label or the instructions for use); they live in `ExtConfig` so a site can change them.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Generic, Literal, TypeVar

Indication = Literal["mrd", "rr", "consolidation"]
Phase = Literal["induction", "consolidation", "continued"]
Population = Literal["adult", "pediatric"]
# A patient's population for premedication (L2-premed): "unknown" when no age is given; never guessed.
PopulationStatus = Literal["adult", "pediatric", "unknown"]

Num = TypeVar("Num", int, Decimal)

SEED = "PI"  # the prescribing information in seeds/003 (revisions 12/2024 to 10/2025)
EXT = "EXT"  # full label / instructions for use, not in the seed text: configurable
SITE = "site setting"  # neither the seed nor the full label: the site decides (L2.3-course cycle count)


# How code, tests and documents cite a clause: an explicit ID of LABEL.md, a family by wildcard
# (L2.4-*, L2.6-bag-*) or the L2.x-course form
CLAUSE_REF = re.compile(r"(?<![A-Za-z0-9_.-])(L\d+(?:\.(?:\d+|x))?(?:-[A-Za-z0-9]+)*(?:-\*)?"
                        r"|EXT-[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*|A-[a-z]+(?:-[a-z]+)*)")


def clause_members(ref: str, known: Iterable[str]) -> list[str]:
    """The clause IDs among `known` that a reference names: a family's members, else the reference."""
    if ref.endswith("-*"):
        prefix = ref[:-1]
        return [k for k in known if k.startswith(prefix)] or [ref]
    if ".x-" in ref:
        pat = re.compile(re.escape(ref).replace(r"\.x\-", r"\.\d+\-") + "$")
        return [k for k in known if pat.match(k)] or [ref]
    return [ref]


@dataclass(frozen=True)
class LabelNumber(Generic[Num]):
    """One number of the label, with the clause it comes from."""

    clause: str
    what: str
    value: Num
    unit: str
    source: str


@dataclass(frozen=True)
class LabelRow:
    """One printable row of the label table."""

    clause: str
    what: str
    value: int | float | str
    unit: str
    source: str


# ---------------------------------------------------------------- EXT numbers (configurable)


@dataclass(frozen=True)
class ExtConfig:
    """Numbers that are not in the seed text, and the site's settings. Change them here, not in the code."""

    # L2.3-course: SITE SETTING, not a label number. The seed text gives no number of consolidation cycles
    # ("a single cycle of BLINCYTO monotherapy in consolidation is 28 days ... followed by a 14-day
    # treatment-free interval"); BLINCYTO cycles sit inside the site's multiphase chemotherapy protocol. This is
    # the most consolidation cycles the planner (`--cycles`) and the kernel accept: the bound of the setting.
    consolidation_max_cycles: int = 4
    overdose_lockout_h: int = 12  # EXT-overdose-12h
    rate_24h_bag_ml_per_h: int = 10  # EXT-rates
    rate_48h_bag_ml_per_h: int = 5  # EXT-rates
    infused_volume_24_48h_bag_ml: int = 240  # EXT-rates: 10 mL/h * 24 h = 5 mL/h * 48 h
    # EXT-rates: published rates of the preservative bags; they changed between revisions, so they are settings.
    # The pump runs a bag at the rate on its pharmacy label; these are what the planner expects (the daily
    # benzyl alcohol load, L5.12-benzyl).
    rate_72h_96h_bag_ml_per_h: Decimal = Decimal("1.8")
    rate_7d_bag_ml_per_h: Decimal = Decimal("0.6")

    def __post_init__(self) -> None:
        # a course has at least one cycle; the R/R course (9 cycles) is the longest the label knows
        if not 1 <= self.consolidation_max_cycles <= 9:
            raise ValueError("consolidation_max_cycles must be in 1..9")
        for name in ("overdose_lockout_h", "rate_24h_bag_ml_per_h", "rate_48h_bag_ml_per_h",
                     "infused_volume_24_48h_bag_ml", "rate_72h_96h_bag_ml_per_h", "rate_7d_bag_ml_per_h"):
            if getattr(self, name) <= 0:
                raise ValueError("%s must be > 0" % name)

    def bag_rate_ml_per_h(self, duration_h: int) -> Decimal:
        """EXT-rates: the published rate of a bag of this duration (mL/h)."""
        if duration_h == 24:
            return Decimal(self.rate_24h_bag_ml_per_h)
        if duration_h == 48:
            return Decimal(self.rate_48h_bag_ml_per_h)
        if duration_h in (72, 96):
            return self.rate_72h_96h_bag_ml_per_h
        if duration_h == 168:
            return self.rate_7d_bag_ml_per_h
        raise KeyError(duration_h)


DEFAULT_EXT = ExtConfig()


# ---------------------------------------------------------------- indications (L1.x)


@dataclass(frozen=True)
class IndicationRule:
    code: Indication
    clause: str
    text: str


INDICATIONS: tuple[IndicationRule, ...] = (
    IndicationRule("mrd", "L1.1", "MRD-positive B-cell precursor ALL, first or second complete remission"),
    IndicationRule("rr", "L1.2", "relapsed or refractory B-cell precursor ALL"),
    IndicationRule("consolidation", "L1.3",
                   "Ph-negative B-cell precursor ALL, consolidation phase of multiphase chemotherapy"),
)
INDICATION_CODES: tuple[Indication, ...] = tuple(rule.code for rule in INDICATIONS)
MIN_AGE_MONTHS = LabelNumber("L1", "minimum age, all indications", 1, "month", SEED + " 1.1-1.3")
MRD_THRESHOLD_PCT = LabelNumber("L1.1", "MRD positivity threshold", Decimal("0.1"), "%", SEED + " 1.1")


def indication_clause(indication: Indication) -> str:
    for rule in INDICATIONS:
        if rule.code == indication:
            return rule.clause
    raise KeyError(indication)


# ---------------------------------------------------------------- course and cycle structure

INFUSION_DAYS = LabelNumber("L2-cycle-42", "continuous infusion per cycle", 28, "days", SEED + " 2.1-2.3")
TREATMENT_FREE_DAYS = LabelNumber("L2-cycle-42", "treatment-free interval, induction/consolidation cycle",
                                  14, "days", SEED + " 2.1-2.3")
CYCLE_DAYS = LabelNumber("L2-cycle-42", "induction/consolidation cycle length", 42, "days", SEED + " 2.1-2.3")
CONTINUED_TREATMENT_FREE_DAYS = LabelNumber("L2.2-cycle-84", "treatment-free interval, R/R continued cycle",
                                            56, "days", SEED + " 2.2")
CONTINUED_CYCLE_DAYS = LabelNumber("L2.2-cycle-84", "R/R continued-therapy cycle length", 84, "days",
                                   SEED + " 2.2")


@dataclass(frozen=True)
class CourseRule:
    """The cycles of one indication's course: `phases[n - 1]` is the phase of cycle n."""

    indication: Indication
    clause: str
    phases: tuple[Phase, ...]
    source: str

    @property
    def max_cycles(self) -> int:
        return len(self.phases)


_INDUCTION: tuple[Phase] = ("induction",)
_CONSOLIDATION: tuple[Phase] = ("consolidation",)
_CONTINUED: tuple[Phase] = ("continued",)


def course_rule(indication: Indication, ext: ExtConfig = DEFAULT_EXT) -> CourseRule:
    if indication == "mrd":
        # L2.1-course: 1 induction, then up to 3 consolidation cycles (2-4)
        return CourseRule("mrd", "L2.1-course", _INDUCTION + _CONSOLIDATION * 3, SEED + " 2.1")
    if indication == "rr":
        # L2.2-course: up to 2 induction, 3 consolidation (3-5), up to 4 continued therapy (6-9)
        return CourseRule("rr", "L2.2-course",
                          _INDUCTION * 2 + _CONSOLIDATION * 3 + _CONTINUED * 4, SEED + " 2.2")
    if indication == "consolidation":
        # L2.3-course: single consolidation cycles; the count is a site setting (ExtConfig.consolidation_max_cycles),
        # never a label number
        return CourseRule("consolidation", "L2.3-course", _CONSOLIDATION * ext.consolidation_max_cycles,
                          SITE + " (count, not a label number); " + SEED + " 2.3 (cycle)")
    raise KeyError(indication)


def treatment_free_days(indication: Indication, cycle: int) -> int:
    # L2.2-cycle-84: R/R continued therapy (cycles 6-9) rests 56 days; every other cycle 14 (L2-cycle-42)
    if indication == "rr" and cycle >= 6:
        return CONTINUED_TREATMENT_FREE_DAYS.value
    return TREATMENT_FREE_DAYS.value


# ---------------------------------------------------------------- doses (Tables 1-3)

FIXED_DOSE_MIN_WEIGHT_KG = LabelNumber("L2-weight-45", "weight at or above which the dose is fixed",
                                       45, "kg", SEED + " 2.1-2.3")
FULL_DOSE_FIXED = LabelNumber("L2-dose-28", "target dose, weight >= 45 kg", 28, "mcg/day",
                              SEED + " Tables 1-3")
FULL_DOSE_PER_M2 = LabelNumber("L2-dose-28", "target dose, weight < 45 kg", 15, "mcg/m2/day",
                               SEED + " Tables 1-3")
FULL_DOSE_CAP = LabelNumber("L2-dose-28", "BSA-based target dose not to exceed", 28, "mcg/day",
                            SEED + " Tables 1-3")
STEP_DOSE_FIXED = LabelNumber("L2.2-step", "R/R cycle 1 days 1-7 dose, weight >= 45 kg", 9, "mcg/day",
                              SEED + " Table 2")
STEP_DOSE_PER_M2 = LabelNumber("L2.2-step", "R/R cycle 1 days 1-7 dose, weight < 45 kg", 5, "mcg/m2/day",
                               SEED + " Table 2")
STEP_DOSE_CAP = LabelNumber("L2.2-step", "BSA-based step dose not to exceed", 9, "mcg/day", SEED + " Table 2")
STEP_CYCLE = LabelNumber("L2.2-step", "cycle with the step dose (R/R only)", 1, "cycle", SEED + " Table 2")
STEP_FIRST_DAY = LabelNumber("L2.2-step", "first day of the step dose", 1, "day", SEED + " Table 2")
STEP_LAST_DAY = LabelNumber("L2.2-step", "last day of the step dose (day 8 steps up)", 7, "day",
                            SEED + " Table 2")
VIAL_MCG = LabelNumber("L2-vial", "single-dose vial, lyophilized powder", 35, "mcg", SEED + " 3")

# ---------------------------------------------------------------- administration (2.5, 5.12)

PRESERVATIVE_FREE_DURATIONS_H: tuple[int, ...] = (24, 48)  # L2.5-durations
PRESERVATIVE_DURATIONS_H: tuple[int, ...] = (72, 96, 168)  # L2.5-durations: 7 days = 168 h
BAG_DURATIONS_H: tuple[int, ...] = PRESERVATIVE_FREE_DURATIONS_H + PRESERVATIVE_DURATIONS_H
MIN_WEIGHT_PRESERVATIVE_KG = LabelNumber("L2.5-min-weight", "minimum weight for 72 h, 96 h and 7-day bags",
                                         Decimal("5.4"), "kg", SEED + " 2.1-2.3, 2.5, 5.12")
BENZYL_72_96H_MG_PER_ML = LabelNumber("L5.12-benzyl", "benzyl alcohol in 72 h and 96 h bags", Decimal("2.5"),
                                      "mg/mL", SEED + " 5.12")
BENZYL_7D_MG_PER_ML = LabelNumber("L5.12-benzyl", "benzyl alcohol in the 7-day bag", Decimal("7.4"), "mg/mL",
                                  SEED + " 5.12")
SALINE_BENZYL_PCT = LabelNumber("L2.5-durations", "benzyl alcohol in the bacteriostatic 0.9% NaCl diluent",
                                Decimal("0.9"), "%", SEED + " 2.1-2.3")


def preservative_required(duration_h: int) -> bool:
    # L2.5-durations: 24/48 h bags are preservative-free, 72/96/168 h bags carry benzyl alcohol
    return duration_h in PRESERVATIVE_DURATIONS_H


def benzyl_alcohol_mg_per_ml(duration_h: int) -> Decimal:
    # L5.12-benzyl
    if duration_h in (72, 96):
        return BENZYL_72_96H_MG_PER_ML.value
    if duration_h == 168:
        return BENZYL_7D_MG_PER_ML.value
    return Decimal(0)


# ---------------------------------------------------------------- storage (Table 5)


@dataclass(frozen=True)
class StorageLimit:
    """Table 5. Room-temperature time includes infusion time; a bag past a limit is discarded."""

    clause: str
    item: str
    room_h: int
    fridge_h: int


VIAL_STORAGE = StorageLimit("L2.6-vial", "reconstituted vial", 4, 24)
BAG_24_48H_STORAGE = StorageLimit("L2.6-bag-24-48", "24 h and 48 h bag (preservative-free)", 48, 8 * 24)
BAG_72_96H_STORAGE = StorageLimit("L2.6-bag-72-96", "72 h and 96 h bag (with preservative)", 4 * 24, 14 * 24)
BAG_7D_STORAGE = StorageLimit("L2.6-bag-7d", "7-day bag (with preservative)", 7 * 24, 14 * 24)
STORAGE_LIMITS: tuple[StorageLimit, ...] = (VIAL_STORAGE, BAG_24_48H_STORAGE, BAG_72_96H_STORAGE, BAG_7D_STORAGE)


def bag_storage_limit(duration_h: int) -> StorageLimit:
    if duration_h in (24, 48):
        return BAG_24_48H_STORAGE  # L2.6-bag-24-48
    if duration_h in (72, 96):
        return BAG_72_96H_STORAGE  # L2.6-bag-72-96
    if duration_h == 168:
        return BAG_7D_STORAGE  # L2.6-bag-7d
    raise KeyError(duration_h)


# ---------------------------------------------------------------- hospitalisation (L2-hosp)


@dataclass(frozen=True)
class HospRule:
    clause: str
    indication: Indication
    cycle1_days: int
    cycle2_days: int


HOSP_RULES: tuple[HospRule, ...] = (
    HospRule("L2-hosp", "mrd", 3, 2),
    HospRule("L2-hosp", "rr", 9, 2),
    HospRule("L2-hosp", "consolidation", 3, 2),
)


def hospitalization_days(indication: Indication, cycle: int) -> int:
    # L2-hosp: only cycles 1 and 2 have a recommended stay; later starts are supervised (L2-reinit-4h)
    for rule in HOSP_RULES:
        if rule.indication == indication:
            return rule.cycle1_days if cycle == 1 else rule.cycle2_days if cycle == 2 else 0
    raise KeyError(indication)


# ---------------------------------------------------------------- premedication (L2-premed)

RestartScope = Literal["never", "first-cycle", "every-cycle"]


@dataclass(frozen=True)
class PremedRule:
    """Who gets which premedication before which dose (L2-premed)."""

    clause: str
    indication: Indication
    population: Population
    drug: str
    dose_mg: int | None  # fixed dose; None when the dose is per m2
    dose_mg_per_m2: int | None
    max_dose_mg: int | None
    route: str
    timing: str
    every_cycle: bool  # False: first cycle only
    before_step_dose: bool  # R/R cycle 1 day 8
    on_restart: RestartScope  # after an interruption of >= 4 h (L2-reinit-4h)


PREMED_RULES: tuple[PremedRule, ...] = (
    PremedRule("L2-premed", "mrd", "adult", "prednisone (or equivalent, e.g. dexamethasone 16 mg)", 100, None,
               None, "IV", "1 h before the first dose", True, False, "never"),
    PremedRule("L2-premed", "rr", "adult", "dexamethasone", 20, None, None, "IV or PO",
               "1 h before the first dose", True, True, "every-cycle"),
    PremedRule("L2-premed", "consolidation", "adult", "dexamethasone", 20, None, None, "IV",
               "within 1 h before the first dose", True, False, "never"),
    PremedRule("L2-premed", "mrd", "pediatric", "dexamethasone", None, 5, 20, "IV or PO",
               "before the first dose", False, False, "first-cycle"),
    PremedRule("L2-premed", "rr", "pediatric", "dexamethasone", None, 5, 20, "IV or PO",
               "before the first dose", False, True, "first-cycle"),
    PremedRule("L2-premed", "consolidation", "pediatric", "dexamethasone", None, 5, 20, "IV or PO",
               "before the first dose", False, False, "first-cycle"),
)
MRD_ADULT_DEX_ALTERNATIVE_MG = LabelNumber("L2-premed", "MRD+ adult premedication alternative: dexamethasone",
                                           16, "mg", SEED + " 2.1")
PREMED_LEAD_H = LabelNumber("L2-premed", "adult premedication before the first dose", 1, "h", SEED + " 2.1-2.3")
# Not a label number. The label says "adult patients" and "pediatric patients" (L2-premed) without an age; this
# reading takes 18 years as the line (18 and over: adult), the usual one. Used only for premedication, and only
# when an age is given: without one the population is unknown and both rule sets are listed.
ADULT_MIN_AGE_YEARS = 18


def premed_rule(indication: Indication, population: Population) -> PremedRule:
    for rule in PREMED_RULES:
        if rule.indication == indication and rule.population == population:
            return rule
    raise KeyError((indication, population))


# ---------------------------------------------------------------- interruptions (2.4)

REINIT_H = LabelNumber("L2-reinit-4h", "interruption that needs supervised re-initiation (and premedication)",
                       4, "h", SEED + " 2.1-2.3")
RESUME_MAX_DAYS = LabelNumber("L2.4-resume-7d", "longest adverse-reaction interruption that continues the cycle",
                              7, "days", SEED + " 2.4")
NEW_CYCLE_AFTER_DAYS = LabelNumber("L2.4-new-cycle", "an adverse-reaction interruption longer than this starts "
                                   "a new cycle", 7, "days", SEED + " 2.4")


# ---------------------------------------------------------------- dose modifications (Table 4)


@dataclass(frozen=True)
class DoseModRule:
    """One row of Table 4. Restart doses, when the row restarts, are L2.4-restart-9."""

    clause: str
    reaction: str
    grade: str
    action: str
    restarts: bool  # restart at the L2.4-restart-9 dose once resolved
    withhold_min_days: int | None  # L2.4-neuro-3: at least 3 days
    discontinue_if_resolution_over_days: int | None
    discontinue_if_at_low_dose: bool  # L2.4-neuro-3: occurred at 9 mcg/day (5 mcg/m2/day)
    permanent: bool
    clinician_decides: bool  # L2.4-other-4: the pump asks, it does not decide


RESTART_DOSE_FIXED = LabelNumber("L2.4-restart-9", "restart dose after a resolved reaction, weight >= 45 kg", 9,
                                 "mcg/day", SEED + " Table 4")
RESTART_DOSE_PER_M2 = LabelNumber("L2.4-restart-9", "restart dose after a resolved reaction, weight < 45 kg", 5,
                                  "mcg/m2/day", SEED + " Table 4")
RESTART_ESCALATE_AFTER_DAYS = LabelNumber("L2.4-restart-9", "escalate to the target dose after", 7, "days",
                                          SEED + " Table 4")
SEIZURES_TOLERATED = LabelNumber("L2.4-seizure", "seizures tolerated (more than this: discontinue)", 1,
                                 "seizures", SEED + " Table 4")
NEURO3_WITHHOLD_MIN_DAYS = LabelNumber("L2.4-neuro-3", "grade 3 neurologic event: withhold at least", 3, "days",
                                       SEED + " Table 4")
NEURO3_MAX_RESOLUTION_DAYS = LabelNumber("L2.4-neuro-3", "grade 3 neurologic event: discontinue if resolution "
                                         "takes more than", 7, "days", SEED + " Table 4")
OTHER3_MAX_RESOLUTION_DAYS = LabelNumber("L2.4-other-3", "other grade 3 reaction: discontinue if resolution "
                                         "takes more than", 14, "days", SEED + " Table 4")
STEROID_DEX_MG = LabelNumber("L2.4-steroids", "CRS grade 3 dexamethasone, weight >= 45 kg", 8, "mg",
                             SEED + " Table 4")
STEROID_DEX_MG_PER_M2 = LabelNumber("L2.4-steroids", "CRS grade 3 dexamethasone, weight < 45 kg (max 8 mg)", 5,
                                    "mg/m2", SEED + " Table 4")
STEROID_INTERVAL_H = LabelNumber("L2.4-steroids", "CRS grade 3 dexamethasone every", 8, "h", SEED + " Table 4")
STEROID_MAX_DAYS = LabelNumber("L2.4-steroids", "CRS grade 3 dexamethasone for up to", 3, "days",
                               SEED + " Table 4")
STEROID_TAPER_DAYS = LabelNumber("L2.4-steroids", "then taper over", 4, "days", SEED + " Table 4")

DOSE_MODS: tuple[DoseModRule, ...] = (
    DoseModRule("L2.4-restart-9", "CRS", "grade 3", "interrupt; dexamethasone (L2.4-steroids); restart when resolved",
                True, None, None, False, False, False),
    DoseModRule("L2.4-crs-4", "CRS", "grade 4", "discontinue permanently", False, None, None, False, True, False),
    DoseModRule("L2.4-seizure", "seizures", "more than one", "discontinue permanently", False, None, None, False,
                True, False),
    DoseModRule("L2.4-restart-9", "ICANS", "grade 2", "interrupt until resolved; restart", True, None, None, False,
                False, False),
    DoseModRule("L2.4-neuro-3", "neurologic event incl. ICANS", "grade 3",
                "withhold until grade <= 1 and for at least 3 days; restart", True,
                NEURO3_WITHHOLD_MIN_DAYS.value, NEURO3_MAX_RESOLUTION_DAYS.value, True, False, False),
    DoseModRule("L2.4-neuro-4", "neurologic event incl. ICANS", "grade 4", "discontinue permanently", False, None, None,
                False, True, False),
    DoseModRule("L2.4-other-3", "other clinically relevant reaction", "grade 3", "withhold until grade <= 1; restart",
                True, None, OTHER3_MAX_RESOLUTION_DAYS.value, False, False, False),
    DoseModRule("L2.4-other-4", "other clinically relevant reaction", "grade 4",
                "consider discontinuing permanently (clinician decision)", False, None, None, False, False, True),
)


# ---------------------------------------------------------------- facts a companion can surface (5.1, 5.2, article)

PATIENT_ARTICLE = "patient article (seeds/000)"
CRS_ONSET_MEDIAN_DAYS = LabelNumber("L5.1-crs", "CRS median onset after infusion start", 2, "days", SEED + " 5.1")
CRS_RESOLUTION_MEDIAN_DAYS = LabelNumber("L5.1-crs", "CRS median time to resolution", 5, "days", SEED + " 5.1")
CRS_RR_PCT = LabelNumber("L5.1-crs", "CRS incidence, relapsed/refractory", 15, "%", SEED + " 5.1")
CRS_MRD_PCT = LabelNumber("L5.1-crs", "CRS incidence, MRD-positive", 7, "%", SEED + " 5.1")
CRS_CONSOLIDATION_PCT = LabelNumber("L5.1-crs", "CRS incidence, consolidation", 16, "%", SEED + " 5.1")
NEURO_PCT = LabelNumber("L5.2-neuro", "neurologic toxicity incidence (about)", 65, "%", SEED + " 5.2")
NEURO_FIRST_EVENT_WEEKS = LabelNumber("L5.2-neuro", "median first neurologic event within the first", 2, "weeks",
                                      SEED + " 5.2")
NEURO_GRADE3_PCT = LabelNumber("L5.2-neuro", "grade >= 3 neurologic toxicity (about)", 13, "%", SEED + " 5.2")
ICANS_PCT = LabelNumber("L5.2-neuro", "ICANS incidence", Decimal("7.5"), "%", SEED + " 5.2")
CONTRACEPTION_AFTER_H = LabelNumber("A-contraception", "contraception after the last dose", 48, "h",
                                    PATIENT_ARTICLE)
NO_BREASTFEEDING_AFTER_H = LabelNumber("A-contraception", "no breastfeeding after the last dose", 48, "h",
                                       PATIENT_ARTICLE)
NO_LIVE_VACCINES_BEFORE_WEEKS = LabelNumber("A-live-vaccines", "no live vaccines before starting", 2, "weeks",
                                            PATIENT_ARTICLE)


# ---------------------------------------------------------------- the whole label as one table

_NUMBERS: tuple[LabelNumber[int] | LabelNumber[Decimal], ...] = (
    MIN_AGE_MONTHS, MRD_THRESHOLD_PCT,
    INFUSION_DAYS, TREATMENT_FREE_DAYS, CYCLE_DAYS, CONTINUED_TREATMENT_FREE_DAYS, CONTINUED_CYCLE_DAYS,
    FIXED_DOSE_MIN_WEIGHT_KG, FULL_DOSE_FIXED, FULL_DOSE_PER_M2, FULL_DOSE_CAP,
    STEP_DOSE_FIXED, STEP_DOSE_PER_M2, STEP_DOSE_CAP, STEP_CYCLE, STEP_FIRST_DAY, STEP_LAST_DAY, VIAL_MCG,
    MIN_WEIGHT_PRESERVATIVE_KG, SALINE_BENZYL_PCT, BENZYL_72_96H_MG_PER_ML, BENZYL_7D_MG_PER_ML,
    MRD_ADULT_DEX_ALTERNATIVE_MG, PREMED_LEAD_H,
    REINIT_H, RESUME_MAX_DAYS, NEW_CYCLE_AFTER_DAYS,
    RESTART_DOSE_FIXED, RESTART_DOSE_PER_M2, RESTART_ESCALATE_AFTER_DAYS, SEIZURES_TOLERATED,
    NEURO3_WITHHOLD_MIN_DAYS, NEURO3_MAX_RESOLUTION_DAYS, OTHER3_MAX_RESOLUTION_DAYS,
    STEROID_DEX_MG, STEROID_DEX_MG_PER_M2, STEROID_INTERVAL_H, STEROID_MAX_DAYS, STEROID_TAPER_DAYS,
    CRS_ONSET_MEDIAN_DAYS, CRS_RESOLUTION_MEDIAN_DAYS, CRS_RR_PCT, CRS_MRD_PCT, CRS_CONSOLIDATION_PCT,
    NEURO_PCT, NEURO_FIRST_EVENT_WEEKS, NEURO_GRADE3_PCT, ICANS_PCT,
    CONTRACEPTION_AFTER_H, NO_BREASTFEEDING_AFTER_H, NO_LIVE_VACCINES_BEFORE_WEEKS,
)


def _value(value: int | Decimal) -> int | float:
    return value if isinstance(value, int) else float(value)


def _phase_spans(phases: tuple[Phase, ...]) -> list[tuple[Phase, str]]:
    """("induction", "induction", "consolidation") -> [("induction", "1-2"), ("consolidation", "3")]."""
    spans: list[tuple[Phase, str]] = []
    first = 1
    for n in range(1, len(phases) + 1):
        if n == len(phases) or phases[n] != phases[n - 1]:
            spans.append((phases[n - 1], str(first) if first == n else "%d-%d" % (first, n)))
            first = n + 1
    return spans


def label_rows(ext: ExtConfig = DEFAULT_EXT) -> list[LabelRow]:
    """Every numbered clause, grouped by LABEL.md section, as (clause, what, value, unit, source)."""
    rows: list[LabelRow] = []
    for ind in INDICATIONS:
        rows.append(LabelRow(ind.clause, "indication '%s': %s" % (ind.code, ind.text), ind.code, "", SEED + " 1"))
    for indication in INDICATION_CODES:
        course = course_rule(indication, ext)
        what = "maximum cycles, %s course" % indication
        if course.source.startswith(SITE):
            what += " (site setting's bound, not a label number)"  # L2.3-course
        rows.append(LabelRow(course.clause, what, course.max_cycles, "cycles", course.source))
        for phase, span in _phase_spans(course.phases):
            rows.append(LabelRow(course.clause, "%s course: %s cycles" % (indication, phase), span, "cycle numbers",
                                 course.source))
    for number in _NUMBERS:
        rows.append(LabelRow(number.clause, number.what, _value(number.value), number.unit, number.source))
    rows.append(LabelRow("L2.5-durations", "bag durations, preservative-free",
                         "/".join(map(str, PRESERVATIVE_FREE_DURATIONS_H)), "h", SEED + " 2.5"))
    rows.append(LabelRow("L2.5-durations", "bag durations, with preservative",
                         "/".join(map(str, PRESERVATIVE_DURATIONS_H)), "h", SEED + " 2.5"))
    for limit in STORAGE_LIMITS:
        rows.append(LabelRow(limit.clause, "%s, room temperature 23-27 C (includes infusion time)" % limit.item,
                             limit.room_h, "h", SEED + " Table 5"))
        rows.append(LabelRow(limit.clause, "%s, refrigerated 2-8 C" % limit.item, limit.fridge_h, "h",
                             SEED + " Table 5"))
    for hosp in HOSP_RULES:
        rows.append(LabelRow(hosp.clause, "%s: hospitalisation, cycle 1" % hosp.indication, hosp.cycle1_days,
                             "days", SEED + " 2.1-2.3"))
        rows.append(LabelRow(hosp.clause, "%s: hospitalisation, cycle 2" % hosp.indication, hosp.cycle2_days,
                             "days", SEED + " 2.1-2.3"))
    for pre in PREMED_RULES:
        when = ["first dose of each cycle" if pre.every_cycle else "first dose of cycle 1"]
        if pre.before_step_dose:
            when.append("step dose")
        if pre.on_restart != "never":
            when.append("restart after >= 4 h" + (" in cycle 1" if pre.on_restart == "first-cycle" else ""))
        what = "%s %s premedication: %s %s before %s" % (pre.indication, pre.population, pre.drug, pre.route,
                                                         ", ".join(when))
        if pre.dose_mg is not None:
            rows.append(LabelRow(pre.clause, what, pre.dose_mg, "mg", SEED + " 2.1-2.3"))
        else:
            rows.append(LabelRow(pre.clause, what, pre.dose_mg_per_m2 or 0, "mg/m2, max %s mg" % pre.max_dose_mg,
                                 SEED + " 2.1-2.3"))
    for mod in DOSE_MODS:
        outcome = ("clinician decision" if mod.clinician_decides else "discontinue" if mod.permanent
                   else "restart at low dose")
        rows.append(LabelRow(mod.clause, "%s %s: %s" % (mod.reaction, mod.grade, mod.action), outcome, "",
                             SEED + " Table 4"))
    rows.append(LabelRow("EXT-rates", "24 h bag rate", ext.rate_24h_bag_ml_per_h, "mL/h", EXT + " configurable"))
    rows.append(LabelRow("EXT-rates", "48 h bag rate", ext.rate_48h_bag_ml_per_h, "mL/h", EXT + " configurable"))
    rows.append(LabelRow("EXT-rates", "volume infused from a 24 h or 48 h bag", ext.infused_volume_24_48h_bag_ml,
                         "mL", EXT + " configurable"))
    rows.append(LabelRow("EXT-rates", "72 h, 96 h, 7-day bag rate: volume / duration of the prepared bag", "from bag", "",
                         EXT + " (differs between revisions)"))
    revised = EXT + " configurable (differs between revisions)"
    rows.append(LabelRow("EXT-rates", "72 h and 96 h bag rate, published (the planner's benzyl alcohol load)",
                         float(ext.rate_72h_96h_bag_ml_per_h), "mL/h", revised))
    rows.append(LabelRow("EXT-rates", "7-day bag rate, published (the planner's benzyl alcohol load)",
                         float(ext.rate_7d_bag_ml_per_h), "mL/h", revised))
    rows.append(LabelRow("EXT-overdose-12h", "earliest re-initiation after an overdose interruption",
                         ext.overdose_lockout_h, "h", EXT + " configurable"))
    return rows
