"""A patient as the label sees one: indication, weight, BSA, and age.

Two different questions (LABEL.md, "Units and who is who"): the dose basis is decided by WEIGHT (the 45 kg
line, L2-weight-45); adult or pediatric premedication is decided by AGE (L2-premed). Neither is inferred from
the other: a 40 kg adult is BSA-dosed with adult premedication, a 50 kg child is fixed-dosed with pediatric
premedication, and a patient without an age has an unknown population (the plan then lists both).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Literal

from .errors import ModelError
from .label import (
    ADULT_MIN_AGE_YEARS,
    FIXED_DOSE_MIN_WEIGHT_KG,
    INDICATION_CODES,
    MIN_AGE_MONTHS,
    Indication,
    PopulationStatus,
    indication_clause,
)

__all__ = ["ModelError", "Patient", "BsaFormula", "BSA_FORMULAS", "bsa_m2_from_height", "exact",
           "parse_indication"]

BsaFormula = Literal["mosteller", "dubois"]
BSA_FORMULAS: tuple[BsaFormula, ...] = ("mosteller", "dubois")

# Plausibility bounds, not label numbers: they catch unit slips (grams typed as kg, cm as m2) before a dose
# is computed from them.
MIN_WEIGHT_KG = 0.5
MAX_WEIGHT_KG = 300.0
MAX_BSA_M2 = 3.5
# The pump's kernel refuses a set-up with a BSA outside [BSA_MIN_CM2, BSA_MAX_CM2] = [500, 35000] cm2
# (firmware/kernel.py, L2-dose-28); the planner refuses the same BSAs, compared as the kernel sees them
# (rounded to 1 cm2), so that a plan is never made for a patient the pump would turn away.
MIN_BSA_CM2 = 500
MAX_BSA_CM2 = 35000
MIN_HEIGHT_CM = 20.0
MAX_HEIGHT_CM = 250.0
# Not a label number: an age above this is a typing slip (months typed as years, a year of birth).
MAX_AGE_YEARS = 120.0
# L1.1-L1.3: "adult and pediatric patients one month and older"; 1 month = 1/12 year (compared as floats, so
# that an age given as 1/12 year is exactly the boundary and is accepted).
MIN_AGE_YEARS = MIN_AGE_MONTHS.value / 12

GRAMS_PER_KG = 1000
CM2_PER_M2 = 10000


def exact(value: float) -> Decimal:
    """The decimal the user meant: repr() is the shortest string that reads back as the same float."""
    return Decimal(repr(value))


def parse_indication(text: str) -> Indication:
    for code in INDICATION_CODES:
        if text == code:
            return code
    # L1.1 / L1.2 / L1.3: the label knows three indications and nothing else
    raise ModelError("indication", "L1", "unknown indication %r; expected one of %s"
                     % (text, ", ".join(INDICATION_CODES)))


def _check_weight(weight_kg: float) -> None:
    # L2-weight-45: the dose basis is decided on weight, so a wrong weight is a wrong dose
    if not math.isfinite(weight_kg) or not MIN_WEIGHT_KG <= weight_kg <= MAX_WEIGHT_KG:
        raise ModelError("weight_kg", "L2-weight-45", "weight %r kg is not in [%g, %g] kg"
                         % (weight_kg, MIN_WEIGHT_KG, MAX_WEIGHT_KG))


def _check_bsa(bsa_m2: float) -> None:
    # L2-dose-28: the BSA-based dose is 15 mcg/m2/day, so BSA must be plausible, and within what the pump's
    # kernel accepts (BSA_MIN_CM2..BSA_MAX_CM2 = 0.05..3.5 m2). Compared exactly, not after rounding to 1 cm2:
    # 0.04996 m2 is below 0.05 m2 even though it would round to 500 cm2.
    if (not math.isfinite(bsa_m2) or not 0 < bsa_m2 <= MAX_BSA_M2
            or not MIN_BSA_CM2 <= exact(bsa_m2) * CM2_PER_M2 <= MAX_BSA_CM2):
        raise ModelError("bsa_m2", "L2-dose-28", "BSA %r m2 is not in [%g, %g] m2 (the pump refuses it)"
                         % (bsa_m2, MIN_BSA_CM2 / CM2_PER_M2, MAX_BSA_M2))


def _check_age(indication: Indication, age_years: float) -> None:
    # L1.1 / L1.2 / L1.3: adults and children one month and older. The clause is the indication's; an age that
    # is not a number, negative, or above MAX_AGE_YEARS (a typing slip) is refused with it too.
    clause = indication_clause(indication)
    if (isinstance(age_years, bool) or not isinstance(age_years, (int, float)) or not math.isfinite(age_years)
            or age_years < 0 or age_years > MAX_AGE_YEARS):
        raise ModelError("age_years", clause, "age %r years is not an age in [0, %g] years"
                         % (age_years, MAX_AGE_YEARS))
    if age_years < MIN_AGE_YEARS:
        raise ModelError("age_years", clause, "age %r years is below 1 month (1/12 year): the indication is for "
                         "patients one month and older" % (age_years,))


def bsa_m2_from_height(height_cm: float, weight_kg: float, formula: BsaFormula = "mosteller") -> float:
    """BSA by a named formula, rounded to 0.0001 m2 (1 cm2, the kernel's resolution)."""
    _check_weight(weight_kg)
    if not math.isfinite(height_cm) or not MIN_HEIGHT_CM < height_cm <= MAX_HEIGHT_CM:
        raise ModelError("height_cm", "L2-dose-28", "height %r cm is not in (%g, %g] cm"
                         % (height_cm, MIN_HEIGHT_CM, MAX_HEIGHT_CM))
    if formula == "mosteller":
        bsa = math.sqrt(height_cm * weight_kg / 3600.0)
    elif formula == "dubois":
        bsa = 0.007184 * weight_kg ** 0.425 * height_cm ** 0.725
    else:
        raise ModelError("bsa_formula", "L2-dose-28", "unknown BSA formula %r; expected one of %s"
                         % (formula, ", ".join(BSA_FORMULAS)))
    return round(bsa, 4)


@dataclass(frozen=True)
class Patient:
    """Validated on construction; a Patient that exists can be dosed."""

    indication: Indication
    weight_kg: float  # decides the dose basis (L2-weight-45), nothing else
    bsa_m2: float | None = None
    age_years: float | None = None  # decides adult or pediatric premedication (L2-premed); None: unknown

    def __post_init__(self) -> None:
        parse_indication(self.indication)
        _check_weight(self.weight_kg)
        if self.bsa_m2 is not None:
            _check_bsa(self.bsa_m2)
        elif not self.fixed_dose:
            # L2-dose-28: below 45 kg the dose is per m2, so there is no dose without a BSA
            raise ModelError("bsa_m2", "L2-dose-28", "BSA is required for weight %r kg (< %d kg, BSA-based dose)"
                             % (self.weight_kg, FIXED_DOSE_MIN_WEIGHT_KG.value))
        if self.age_years is not None:
            _check_age(self.indication, self.age_years)

    @classmethod
    def from_height(cls, indication: Indication, weight_kg: float, height_cm: float,
                    formula: BsaFormula = "mosteller", age_years: float | None = None) -> Patient:
        parse_indication(indication)
        return cls(indication, weight_kg, bsa_m2_from_height(height_cm, weight_kg, formula), age_years)

    @property
    def weight_g(self) -> int:
        # The kernel's unit. Rounded DOWN from the exact decimal, never to nearest: 44.9995 kg is 44999 g, not
        # 45000 g, so the kernel sees the same side of the 45 kg line (L2-weight-45) and of the 5.4 kg line
        # (L2.5-min-weight) as the exact weight: floor(w * 1000) >= N * 1000 exactly when w >= N.
        return int((exact(self.weight_kg) * GRAMS_PER_KG).to_integral_value(rounding=ROUND_FLOOR))

    @property
    def bsa_cm2(self) -> int | None:
        return None if self.bsa_m2 is None else round(self.bsa_m2 * CM2_PER_M2)

    @property
    def fixed_dose(self) -> bool:
        # L2-weight-45: >= 45 kg is fixed-dose, < 45 kg is BSA-based; decided on the weight as typed, with no
        # rounding (44.999 and 44.9995 kg are BSA-based)
        return exact(self.weight_kg) >= FIXED_DOSE_MIN_WEIGHT_KG.value

    @property
    def dosing(self) -> Literal["fixed", "bsa"]:
        return "fixed" if self.fixed_dose else "bsa"

    @property
    def population_known(self) -> bool:
        return self.age_years is not None

    @property
    def population(self) -> PopulationStatus:
        """Adult or pediatric (L2-premed), by AGE only; "unknown" without an age, never guessed from weight.

        The label says "adult patients" and "pediatric patients" without a number: this reading takes 18 years
        (ADULT_MIN_AGE_YEARS) as the line, 18 and over adult.
        """
        if self.age_years is None:
            return "unknown"
        return "adult" if self.age_years >= ADULT_MIN_AGE_YEARS else "pediatric"
