"""The integer limits the firmware safety kernel enforces, computed the kernel's way from a Patient.

The kernel works in integers only (ng, uL, g, cm2, minutes, hours); these functions use exactly its
conventions, so a test can run the kernel and this module on the same patient and compare.
"""
from __future__ import annotations

from dataclasses import dataclass

from .label import (
    BAG_DURATIONS_H,
    DEFAULT_EXT,
    FIXED_DOSE_MIN_WEIGHT_KG,
    FULL_DOSE_CAP,
    FULL_DOSE_FIXED,
    FULL_DOSE_PER_M2,
    INDICATION_CODES,
    MIN_WEIGHT_PRESERVATIVE_KG,
    NEW_CYCLE_AFTER_DAYS,
    REINIT_H,
    STEP_DOSE_CAP,
    STEP_DOSE_FIXED,
    STEP_DOSE_PER_M2,
    STEP_LAST_DAY,
    VIAL_STORAGE,
    ExtConfig,
    Indication,
    bag_storage_limit,
    course_rule,
    treatment_free_days,
)
from .patient import CM2_PER_M2, GRAMS_PER_KG, Patient

NG_PER_MCG = 1000
UL_PER_ML = 1000
MIN_PER_H = 60
MIN_PER_DAY = 24 * MIN_PER_H
H_PER_DAY = 24

# indication codes of the kernel (fixed convention)
INDICATION_CODE: dict[Indication, int] = {"mrd": 1, "rr": 2, "consolidation": 3}
assert tuple(INDICATION_CODE) == INDICATION_CODES

FIXED_DOSE_MIN_WEIGHT_G = FIXED_DOSE_MIN_WEIGHT_KG.value * GRAMS_PER_KG  # L2-weight-45: 45000
CAP_FULL_FIXED_NG_PER_DAY = FULL_DOSE_FIXED.value * NG_PER_MCG  # L2-dose-28: 28000
CAP_FULL_MAX_NG_PER_DAY = FULL_DOSE_CAP.value * NG_PER_MCG  # L2-dose-28: 28000
CAP_LOW_FIXED_NG_PER_DAY = STEP_DOSE_FIXED.value * NG_PER_MCG  # L2.2-step: 9000
CAP_LOW_MAX_NG_PER_DAY = STEP_DOSE_CAP.value * NG_PER_MCG  # L2.2-step: 9000
MIN_WEIGHT_PRESERVATIVE_G = int(MIN_WEIGHT_PRESERVATIVE_KG.value * GRAMS_PER_KG)  # L2.5-min-weight: 5400

DURATIONS_H: tuple[int, ...] = BAG_DURATIONS_H  # L2.5-durations

# Table 5 in minutes; the room-temperature limit includes infusion time (L2.6-*)
VIAL_ROOM_MIN = VIAL_STORAGE.room_h * MIN_PER_H  # L2.6-vial: 240
VIAL_FRIDGE_MIN = VIAL_STORAGE.fridge_h * MIN_PER_H  # L2.6-vial: 1440
BAG_ROOM_MIN: dict[int, int] = {d: bag_storage_limit(d).room_h * MIN_PER_H for d in DURATIONS_H}
BAG_FRIDGE_MIN: dict[int, int] = {d: bag_storage_limit(d).fridge_h * MIN_PER_H for d in DURATIONS_H}

STEP_WINDOW_MIN = STEP_LAST_DAY.value * MIN_PER_DAY  # L2.2-step / L2.4-restart-9: 7 days = 10080
REINIT_THRESHOLD_MIN = REINIT_H.value * MIN_PER_H  # L2-reinit-4h: 240
NEW_CYCLE_THRESHOLD_MIN = NEW_CYCLE_AFTER_DAYS.value * MIN_PER_DAY  # L2.4-new-cycle: strictly more than 10080


def overdose_lockout_min(ext: ExtConfig = DEFAULT_EXT) -> int:
    return ext.overdose_lockout_h * MIN_PER_H  # EXT-overdose-12h: 720 by default


OVERDOSE_LOCKOUT_MIN = overdose_lockout_min()


def cap_full_ng_per_day(weight_g: int, bsa_cm2: int) -> int:
    # L2-dose-28: 15 mcg/m2/day = 1.5 ng/cm2/day, not above 28000 ng/day; fixed at >= 45000 g (L2-weight-45)
    if weight_g >= FIXED_DOSE_MIN_WEIGHT_G:
        return CAP_FULL_FIXED_NG_PER_DAY
    return min(CAP_FULL_MAX_NG_PER_DAY, (bsa_cm2 * FULL_DOSE_PER_M2.value * NG_PER_MCG) // CM2_PER_M2)


def cap_low_ng_per_day(weight_g: int, bsa_cm2: int) -> int:
    # L2.2-step, L2.4-restart-9: 5 mcg/m2/day = 0.5 ng/cm2/day, not above 9000 ng/day
    if weight_g >= FIXED_DOSE_MIN_WEIGHT_G:
        return CAP_LOW_FIXED_NG_PER_DAY
    return min(CAP_LOW_MAX_NG_PER_DAY, (bsa_cm2 * STEP_DOSE_PER_M2.value * NG_PER_MCG) // CM2_PER_M2)


def bag_rate_ul_per_h(duration_h: int, ext: ExtConfig = DEFAULT_EXT) -> int:
    """EXT-rates: the site's rate for a bag of this duration, in whole uL/h (the rate on its label)."""
    rate = ext.bag_rate_ml_per_h(duration_h) * 1000
    if rate != int(rate):
        raise ValueError("EXT-rates: a rate of %s mL/h is not a whole number of uL/h" % (rate / 1000))
    return int(rate)


def bag_drug_ng_per_day(drug_ng: int, volume_ul: int, duration_h: int, ext: ExtConfig = DEFAULT_EXT) -> int:
    """EXT-rates: what a prepared bag delivers a day, the kernel's way: its concentration times the
    volume it infuses a day, rounded up to the ng (the overfill is never given)."""
    per_day_ul = bag_rate_ul_per_h(duration_h, ext) * H_PER_DAY
    return -(-drug_ng * per_day_ul // volume_ul)


def max_cycles(indication_code: int, ext: ExtConfig = DEFAULT_EXT) -> int:
    # L2.1-course 4, L2.2-course 9, L2.3-course EXT (default 4)
    return course_rule(_indication(indication_code), ext).max_cycles


def treatment_free_days_for(indication_code: int, cycle: int) -> int:
    # L2-cycle-42 (14 days), L2.2-cycle-84 (56 days for R/R cycles 6-9)
    return treatment_free_days(_indication(indication_code), cycle)


def _indication(indication_code: int) -> Indication:
    for name, code in INDICATION_CODE.items():
        if code == indication_code:
            return name
    raise ValueError("unknown indication code %r" % indication_code)


@dataclass(frozen=True)
class KernelLimits:
    """Everything patient-specific the kernel is configured with, as integers."""

    indication_code: int
    weight_g: int
    bsa_cm2: int  # 0 when no BSA is known (fixed dose)
    cap_full_ng_per_day: int
    cap_low_ng_per_day: int
    max_cycles: int
    preservative_allowed: int  # 1 if weight_g >= 5400 (L2.5-min-weight), else 0
    treatment_free_days: tuple[int, ...]  # index n-1 for cycle n
    overdose_lockout_min: int


def kernel_limits(patient: Patient, ext: ExtConfig = DEFAULT_EXT) -> KernelLimits:
    code = INDICATION_CODE[patient.indication]
    weight_g = patient.weight_g  # round(weight_kg * 1000)
    bsa_cm2 = patient.bsa_cm2 or 0  # round(bsa_m2 * 10000)
    cycles = max_cycles(code, ext)
    return KernelLimits(
        indication_code=code,
        weight_g=weight_g,
        bsa_cm2=bsa_cm2,
        cap_full_ng_per_day=cap_full_ng_per_day(weight_g, bsa_cm2),
        cap_low_ng_per_day=cap_low_ng_per_day(weight_g, bsa_cm2),
        max_cycles=cycles,
        preservative_allowed=1 if weight_g >= MIN_WEIGHT_PRESERVATIVE_G else 0,
        treatment_free_days=tuple(treatment_free_days_for(code, n) for n in range(1, cycles + 1)),
        overdose_lockout_min=overdose_lockout_min(ext),
    )
