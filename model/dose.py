"""Daily dose caps of Tables 1-3 and Table 4, in exact decimals.

Floats are turned into Decimal through their shortest repr, so a BSA typed as 0.7 m2 is 0.7 m2 exactly and
15 mcg/m2/day gives 10.5 mcg/day, not 10.4999...
"""
from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from .label import (
    FULL_DOSE_CAP,
    FULL_DOSE_FIXED,
    FULL_DOSE_PER_M2,
    STEP_CYCLE,
    STEP_DOSE_CAP,
    STEP_DOSE_FIXED,
    STEP_DOSE_PER_M2,
    STEP_FIRST_DAY,
    STEP_LAST_DAY,
)
from .patient import Patient, exact

__all__ = ["CENT", "cap_for_day", "exact", "full_cap_mcg_per_day", "is_step_day", "low_cap_mcg_per_day", "planned"]

CENT = Decimal("0.01")


def _bsa(patient: Patient) -> Decimal:
    assert patient.bsa_m2 is not None, "Patient guarantees a BSA below 45 kg"
    return exact(patient.bsa_m2)


def full_cap_mcg_per_day(patient: Patient) -> Decimal:
    # L2-dose-28: 28 mcg/day fixed, or 15 mcg/m2/day not to exceed 28 mcg/day
    if patient.fixed_dose:
        return Decimal(FULL_DOSE_FIXED.value)
    return min(Decimal(FULL_DOSE_CAP.value), FULL_DOSE_PER_M2.value * _bsa(patient))


def low_cap_mcg_per_day(patient: Patient) -> Decimal:
    # L2.2-step and L2.4-restart-9: 9 mcg/day fixed, or 5 mcg/m2/day not to exceed 9 mcg/day
    if patient.fixed_dose:
        return Decimal(STEP_DOSE_FIXED.value)
    return min(Decimal(STEP_DOSE_CAP.value), STEP_DOSE_PER_M2.value * _bsa(patient))


def planned(cap_mcg_per_day: Decimal) -> Decimal:
    """A cap as a planned dose: to 0.01 mcg/day, rounded down so a plan never exceeds its cap."""
    return cap_mcg_per_day.quantize(CENT, rounding=ROUND_DOWN)


def is_step_day(patient: Patient, cycle: int, cycle_day: int) -> bool:
    # L2.2-step: R/R cycle 1, days 1-7 only
    return (patient.indication == "rr" and cycle == STEP_CYCLE.value
            and STEP_FIRST_DAY.value <= cycle_day <= STEP_LAST_DAY.value)


def cap_for_day(patient: Patient, cycle: int, cycle_day: int) -> tuple[Decimal, str]:
    """The cap that applies on one infusion day, and the clause it comes from."""
    if is_step_day(patient, cycle, cycle_day):
        return low_cap_mcg_per_day(patient), "L2.2-step"
    return full_cap_mcg_per_day(patient), "L2-dose-28"
