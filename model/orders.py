"""Bag orders: is this prepared bag safe to hang for this patient on this day? And a standard bag."""
from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from .dose import CENT, cap_for_day, exact, low_cap_mcg_per_day, planned
from .errors import ModelError
from .label import (
    BAG_DURATIONS_H,
    DEFAULT_EXT,
    INFUSION_DAYS,
    MIN_WEIGHT_PRESERVATIVE_KG,
    RESTART_ESCALATE_AFTER_DAYS,
    VIAL_MCG,
    VIAL_STORAGE,
    ExtConfig,
    StorageLimit,
    bag_storage_limit,
    benzyl_alcohol_mg_per_ml,
    course_rule,
    preservative_required,
)
from .patient import GRAMS_PER_KG, Patient

H_PER_DAY = 24
# EXT-rates: the planner's default overfill, as a fraction of the infused volume (a 24 h bag of
# 240 mL infused is prepared as 270 mL); the pharmacy's own preparation may differ, the pump
# checks only that the bag holds what it infuses
OVERFILL_FRACTION = Decimal("0.125")


@dataclass(frozen=True)
class BagOrder:
    """A prepared bag as the pharmacy labels it, with the storage it has had so far.

    EXT-rates: the bag holds more than it infuses (the overfill primes the line). It runs at the
    rate on its label for its duration; what it delivers is its concentration (drug_mcg /
    volume_ml) times the volume infused, and the rest is discarded, never flushed (EXT-no-flush).
    """

    drug_mcg: float  # drug in the bag, overfill included
    volume_ml: float  # total volume in the bag, overfill included
    rate_ml_per_h: float  # infusion rate on the pharmacy label
    duration_h: int
    preservative: bool
    room_temp_h_so_far: float = 0.0  # 23-27 C, since preparation
    refrigerated_h_so_far: float = 0.0  # 2-8 C, since preparation


@dataclass(frozen=True)
class AcceptedBag:
    order: BagOrder
    first_day: int  # infusion days of the cycle the bag runs on
    last_day: int
    cap_mcg_per_day: Decimal  # the lowest cap over those days
    cap_clause: str
    drug_mcg_per_day: Decimal  # concentration x volume infused per day (EXT-rates)
    flow_ml_per_h: Decimal  # the labelled rate
    infused_ml: Decimal  # rate x duration; the rest of the bag is left behind
    benzyl_alcohol_mg_per_day: Decimal  # L5.12-benzyl: to add up the daily load in neonates
    storage: StorageLimit
    room_temp_h_left: Decimal  # how much longer it may wait at room temperature before it is hung
    vials_min: int  # L2-vial: at least this many 35 mcg vials (the IFU's overfill is not modelled)


def _finite_positive(value: float, field: str, what: str) -> Decimal:
    # L2.5-errors: a zero, negative or missing amount is a preparation error, never a bag to run
    if isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ModelError(field, "L2.5-errors", "%s %r must be a finite number > 0" % (what, value))
    return exact(value)


def _hours_so_far(value: float, field: str, clause: str) -> Decimal:
    if isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise ModelError(field, clause, "%s %r must be a finite number >= 0 h" % (field, value))
    return exact(value)


def _bag_days(patient: Patient, duration_h: int, cycle: int, cycle_day: int, ext: ExtConfig) -> tuple[int, int]:
    course = course_rule(patient.indication, ext)
    if isinstance(cycle, bool) or not isinstance(cycle, int) or not 1 <= cycle <= course.max_cycles:
        raise ModelError("cycle", course.clause, "cycle %r is not in 1..%d for indication %s"
                         % (cycle, course.max_cycles, patient.indication))
    if isinstance(cycle_day, bool) or not isinstance(cycle_day, int) or not 1 <= cycle_day <= INFUSION_DAYS.value:
        raise ModelError("cycle_day", "L2-cycle-42", "infusion day %r is not in 1..%d"
                         % (cycle_day, INFUSION_DAYS.value))
    last_day = cycle_day + duration_h // H_PER_DAY - 1
    if last_day > INFUSION_DAYS.value:
        # L2-cycle-42: a cycle has 28 infusion days; a bag that runs past them is extra drug
        raise ModelError("duration_h", "L2-cycle-42", "a %d h bag from infusion day %d runs to day %d, past day %d"
                         % (duration_h, cycle_day, last_day, INFUSION_DAYS.value))
    return cycle_day, last_day


def _bag_cap(patient: Patient, cycle: int, first_day: int, last_day: int,
             restart_day: int | None) -> tuple[Decimal, str]:
    """The lowest cap over every day the bag runs: one step-dose day makes the whole bag a step-dose bag."""
    cap, clause = cap_for_day(patient, cycle, first_day)
    for day in range(first_day + 1, last_day + 1):
        day_cap, day_clause = cap_for_day(patient, cycle, day)
        if day_cap < cap:
            cap, clause = day_cap, day_clause
    if restart_day is not None:
        # L2.4-restart-9: after a resolved reaction, the low dose for 7 days, then the target dose
        if restart_day <= last_day and first_day < restart_day + RESTART_ESCALATE_AFTER_DAYS.value:
            low = low_cap_mcg_per_day(patient)
            if low < cap:
                cap, clause = low, "L2.4-restart-9"
    return cap, clause


def _check_duration(patient: Patient, duration_h: int) -> None:
    if isinstance(duration_h, bool) or duration_h not in BAG_DURATIONS_H:
        raise ModelError("duration_h", "L2.5-durations", "duration %r h is not one of %s h"
                         % (duration_h, "/".join(map(str, BAG_DURATIONS_H))))
    if preservative_required(duration_h) and patient.weight_g < MIN_WEIGHT_PRESERVATIVE_KG.value * GRAMS_PER_KG:
        raise ModelError("duration_h", "L2.5-min-weight", "%d h bags are not for patients under %s kg (weight %r kg)"
                         % (duration_h, MIN_WEIGHT_PRESERVATIVE_KG.value, patient.weight_kg))


def _check_preservative(order: BagOrder) -> None:
    if order.preservative is not preservative_required(order.duration_h):
        # L2.5-durations: 24/48 h are preservative-free, 72/96/168 h are prepared with preservative
        raise ModelError("preservative", "L2.5-durations", "a %d h bag must be %s" % (
            order.duration_h,
            "prepared with preservative" if preservative_required(order.duration_h) else "preservative-free"))


def validate_bag(patient: Patient, order: BagOrder, cycle: int, cycle_day: int, *,
                 restart_day: int | None = None, ext: ExtConfig = DEFAULT_EXT) -> AcceptedBag:
    """Accept the bag for infusion day `cycle_day` (1-28, counted in infusion days) of `cycle`, or raise.

    `restart_day` is the infusion day of a restart after a resolved adverse reaction (L2.4-restart-9).
    """
    _check_duration(patient, order.duration_h)
    _check_preservative(order)
    drug_mcg = _finite_positive(order.drug_mcg, "drug_mcg", "drug")
    volume_ml = _finite_positive(order.volume_ml, "volume_ml", "volume")
    rate_ml_per_h = _finite_positive(order.rate_ml_per_h, "rate_ml_per_h", "rate")
    duration_h = order.duration_h
    table_rate = ext.bag_rate_ml_per_h(duration_h)
    if rate_ml_per_h != table_rate:
        # EXT-rates: the pump runs at the labelled rate, which must be the site's rate for the duration
        raise ModelError("rate_ml_per_h", "EXT-rates", "%s mL/h is not the %s mL/h of a %d h bag"
                         % (rate_ml_per_h, table_rate, duration_h))
    infused_ml = rate_ml_per_h * duration_h
    if infused_ml > volume_ml:
        raise ModelError("volume_ml", "EXT-rates", "%s mL/h for %d h infuses %s mL, more than the bag's %s mL"
                         % (rate_ml_per_h, duration_h, infused_ml, volume_ml))
    first_day, last_day = _bag_days(patient, duration_h, cycle, cycle_day, ext)

    cap, cap_clause = _bag_cap(patient, cycle, first_day, last_day, restart_day)
    # L2-dose-28 / L2.2-step: the daily dose is the concentration times the volume infused per day
    # (EXT-rates), compared exactly: drug * rate * 24 <= cap * volume, without division
    if drug_mcg * rate_ml_per_h * H_PER_DAY > cap * volume_ml:
        daily = (drug_mcg * rate_ml_per_h * H_PER_DAY / volume_ml).quantize(Decimal("0.001"))
        raise ModelError("drug_mcg", cap_clause, "%s mcg in %s mL at %s mL/h is %s mcg/day, above the cap of %s "
                         "mcg/day on cycle %d days %d-%d" % (drug_mcg, volume_ml, rate_ml_per_h, daily, cap,
                                                             cycle, first_day, last_day))

    storage = bag_storage_limit(duration_h)
    fridge_h = _hours_so_far(order.refrigerated_h_so_far, "refrigerated_h_so_far", storage.clause)
    room_h = _hours_so_far(order.room_temp_h_so_far, "room_temp_h_so_far", storage.clause)
    if fridge_h > storage.fridge_h:
        # L2.6-bag-*: past the refrigerated limit the bag is discarded
        raise ModelError("refrigerated_h_so_far", storage.clause, "%s h refrigerated exceeds %d h for a %s"
                         % (fridge_h, storage.fridge_h, storage.item))
    if room_h + duration_h > storage.room_h:
        # L2.6-bag-*: "storage time includes infusion time", so the bag must finish within the room limit
        raise ModelError("room_temp_h_so_far", storage.clause, "%s h at room temperature plus %d h infusion "
                         "exceeds %d h for a %s" % (room_h, duration_h, storage.room_h, storage.item))

    return AcceptedBag(
        order=order,
        first_day=first_day,
        last_day=last_day,
        cap_mcg_per_day=cap,
        cap_clause=cap_clause,
        drug_mcg_per_day=drug_mcg * rate_ml_per_h * H_PER_DAY / volume_ml,
        flow_ml_per_h=rate_ml_per_h,
        infused_ml=infused_ml,
        benzyl_alcohol_mg_per_day=rate_ml_per_h * benzyl_alcohol_mg_per_ml(duration_h) * H_PER_DAY,
        storage=storage,
        room_temp_h_left=storage.room_h - duration_h - room_h,
        vials_min=math.ceil(drug_mcg / VIAL_MCG.value),
    )


def check_vial_storage(room_temp_h: float, refrigerated_h: float) -> None:
    """A reconstituted vial past Table 5's limits is discarded (L2.6-vial)."""
    room = _hours_so_far(room_temp_h, "room_temp_h", VIAL_STORAGE.clause)
    fridge = _hours_so_far(refrigerated_h, "refrigerated_h", VIAL_STORAGE.clause)
    if room > VIAL_STORAGE.room_h:
        raise ModelError("room_temp_h", VIAL_STORAGE.clause, "reconstituted vial %s h at room temperature exceeds "
                         "%d h" % (room, VIAL_STORAGE.room_h))
    if fridge > VIAL_STORAGE.fridge_h:
        raise ModelError("refrigerated_h", VIAL_STORAGE.clause, "reconstituted vial %s h refrigerated exceeds %d h"
                         % (fridge, VIAL_STORAGE.fridge_h))


def propose_bag(patient: Patient, cycle: int, cycle_day: int, duration_h: int, volume_ml: float | None = None,
                *, restart_day: int | None = None, ext: ExtConfig = DEFAULT_EXT) -> BagOrder:
    """A standard bag at the capped dose for every day it runs; validated before it is returned.

    It runs at the site's rate for the duration (EXT-rates). `volume_ml` is the bag's total volume,
    overfill included; by default the infused volume plus OVERFILL_FRACTION of it. The drug in the
    bag is the dose for the days it runs, scaled to the whole bag, so that the infused part carries
    exactly that dose.
    """
    _check_duration(patient, duration_h)
    rate = ext.bag_rate_ml_per_h(duration_h)
    infused = rate * duration_h
    bag_ml = exact(volume_ml) if volume_ml is not None else infused * (1 + OVERFILL_FRACTION)
    first_day, last_day = _bag_days(patient, duration_h, cycle, cycle_day, ext)
    cap, _ = _bag_cap(patient, cycle, first_day, last_day, restart_day)
    days = duration_h // H_PER_DAY
    drug_mcg = (planned(cap) * days * bag_ml / infused).quantize(CENT, rounding=ROUND_DOWN)
    order = BagOrder(float(drug_mcg), float(bag_ml), float(rate), duration_h, preservative_required(duration_h))
    validate_bag(patient, order, cycle, cycle_day, restart_day=restart_day, ext=ext)
    return order
