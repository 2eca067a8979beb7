"""A patient's course as the label lays it out: cycles, daily doses, hospital stays, premedication."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from .dose import exact, full_cap_mcg_per_day, low_cap_mcg_per_day, planned
from .errors import ModelError
from .label import (
    DEFAULT_EXT,
    INFUSION_DAYS,
    REINIT_H,
    STEP_CYCLE,
    STEP_FIRST_DAY,
    STEP_LAST_DAY,
    ExtConfig,
    Indication,
    Phase,
    Population,
    PremedRule,
    course_rule,
    hospitalization_days,
    premed_rule,
    treatment_free_days,
)
from .patient import Patient

NG_PER_MCG = 1000


@dataclass(frozen=True)
class DoseRange:
    """Infusion days first_day..last_day (inclusive) at one daily dose."""

    first_day: int
    last_day: int
    mcg_per_day: Decimal  # capped, rounded down to 0.01
    clause: str

    @property
    def ng_per_day(self) -> int:
        return int(self.mcg_per_day * NG_PER_MCG)


@dataclass(frozen=True)
class PremedEvent:
    """A premedication before the dose on infusion day `day` of a cycle (L2-premed)."""

    day: int
    drug: str
    dose_mg: Decimal | None  # None when it is per m2 and the BSA is unknown
    dose: str
    timing: str
    reason: str
    population: Population
    clause: str


@dataclass(frozen=True)
class RestartPremed:
    """A premedication due only if the infusion restarts after an interruption of >= 4 h (L2-premed)."""

    drug: str
    dose_mg: Decimal | None
    dose: str
    condition: str
    population: Population
    clause: str


@dataclass(frozen=True)
class CyclePlan:
    number: int
    phase: Phase
    infusion_days: int
    treatment_free_days: int
    doses: tuple[DoseRange, ...]
    hospitalization_days: int
    supervised_start: bool  # L2-reinit-4h: later cycle starts need supervision or hospitalisation
    premedication: tuple[PremedEvent, ...]
    premedication_on_restart: tuple[RestartPremed, ...]


@dataclass(frozen=True)
class Course:
    patient: Patient
    clause: str
    cycles: tuple[CyclePlan, ...]

    @property
    def indication(self) -> Indication:
        return self.patient.indication

    @property
    def dosing(self) -> str:
        return self.patient.dosing


def _premed_dose(rule: PremedRule, patient: Patient) -> tuple[Decimal | None, str]:
    if rule.dose_mg is not None:
        return Decimal(rule.dose_mg), "%d mg %s" % (rule.dose_mg, rule.route)
    assert rule.dose_mg_per_m2 is not None and rule.max_dose_mg is not None
    per_m2 = "%d mg/m2 (max %d mg) %s" % (rule.dose_mg_per_m2, rule.max_dose_mg, rule.route)
    if patient.bsa_m2 is None:
        return None, per_m2 + "; BSA not given"
    # L2-premed: 5 mg/m2 to a maximum of 20 mg; rounded down to 0.1 mg
    dose_mg = min(Decimal(rule.max_dose_mg), rule.dose_mg_per_m2 * exact(patient.bsa_m2))
    dose_mg = dose_mg.quantize(Decimal("0.1"), rounding=ROUND_DOWN)
    return dose_mg, "%s mg (%s)" % (dose_mg, per_m2)


def _premedication(patient: Patient, cycle: int) -> tuple[tuple[PremedEvent, ...], tuple[RestartPremed, ...]]:
    rule = premed_rule(patient.indication, patient.population)
    dose_mg, dose = _premed_dose(rule, patient)
    events: list[PremedEvent] = []
    if rule.every_cycle or cycle == 1:
        # L2-premed: before the first dose of each cycle (adults) or of the first cycle (children)
        events.append(PremedEvent(1, rule.drug, dose_mg, dose, rule.timing, "first dose of cycle %d" % cycle,
                                  patient.population, rule.clause))
    if rule.before_step_dose and cycle == STEP_CYCLE.value:
        # L2-premed with L2.2-step: before the step up on cycle 1 day 8
        events.append(PremedEvent(STEP_LAST_DAY.value + 1, rule.drug, dose_mg, dose, "before the step dose",
                                  "step dose (cycle 1 day %d)" % (STEP_LAST_DAY.value + 1), patient.population,
                                  rule.clause))
    restarts: list[RestartPremed] = []
    if rule.on_restart == "every-cycle" or (rule.on_restart == "first-cycle" and cycle == 1):
        # L2-premed with L2-reinit-4h
        restarts.append(RestartPremed(rule.drug, dose_mg, dose, "restart after an interruption of >= %d h"
                                      % REINIT_H.value, patient.population, rule.clause))
    return tuple(events), tuple(restarts)


def _doses(patient: Patient, cycle: int) -> tuple[DoseRange, ...]:
    full = DoseRange(1, INFUSION_DAYS.value, planned(full_cap_mcg_per_day(patient)), "L2-dose-28")
    if patient.indication == "rr" and cycle == STEP_CYCLE.value:
        # L2.2-step: days 1-7 at the step dose, days 8-28 at the target dose
        step = DoseRange(STEP_FIRST_DAY.value, STEP_LAST_DAY.value, planned(low_cap_mcg_per_day(patient)),
                         "L2.2-step")
        return step, DoseRange(STEP_LAST_DAY.value + 1, INFUSION_DAYS.value, full.mcg_per_day, "L2-dose-28")
    return (full,)


def plan_course(patient: Patient, cycles: int | None = None, ext: ExtConfig = DEFAULT_EXT) -> Course:
    """The label's course for this patient; `cycles` keeps only the first N cycles."""
    rule = course_rule(patient.indication, ext)
    count = rule.max_cycles
    if cycles is not None:
        # L2.1-course / L2.2-course / L2.3-course: no more cycles than the course has, and at least one
        if isinstance(cycles, bool) or not isinstance(cycles, int) or not 1 <= cycles <= rule.max_cycles:
            raise ModelError("cycles", rule.clause, "cycles %r is not in 1..%d for indication %s"
                             % (cycles, rule.max_cycles, patient.indication))
        count = cycles
    plans: list[CyclePlan] = []
    for n in range(1, count + 1):
        hosp_days = hospitalization_days(patient.indication, n)  # L2-hosp
        premeds, restarts = _premedication(patient, n)
        plans.append(CyclePlan(
            number=n,
            phase=rule.phases[n - 1],
            infusion_days=INFUSION_DAYS.value,  # L2-cycle-42
            treatment_free_days=treatment_free_days(patient.indication, n),  # L2-cycle-42, L2.2-cycle-84
            doses=_doses(patient, n),
            hospitalization_days=hosp_days,
            supervised_start=hosp_days == 0,  # L2-reinit-4h
            premedication=premeds,
            premedication_on_restart=restarts,
        ))
    return Course(patient, rule.clause, tuple(plans))
