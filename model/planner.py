"""A patient's course as the label lays it out: cycles, daily doses, hospital stays, premedication, and what the
label asks around the pump (model/around.py).

Premedication follows AGE (L2-premed: adult or pediatric), the dose follows WEIGHT (L2-weight-45). Without an
age the population is unknown: every cycle then lists the premedication of both populations, side by side,
and names none of them as the one to give.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .around import AroundThePump, around_the_pump, mg_text
from .dose import exact, full_cap_mcg_per_day, low_cap_mcg_per_day, planned
from .errors import ModelError
from .label import (
    DEFAULT_EXT,
    INFUSION_DAYS,
    REINIT_H,
    SITE,
    STEP_CYCLE,
    STEP_FIRST_DAY,
    STEP_LAST_DAY,
    ExtConfig,
    Indication,
    Phase,
    Population,
    PopulationStatus,
    PremedRule,
    course_rule,
    hospitalization_days,
    premed_rule,
    treatment_free_days,
)
from .patient import Patient

POPULATIONS: tuple[Population, ...] = ("adult", "pediatric")

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
class PopulationPremed:
    """One population's premedication in one cycle (L2-premed)."""

    population: Population
    before_dose: tuple[PremedEvent, ...]
    on_restart: tuple[RestartPremed, ...]


@dataclass(frozen=True)
class CyclePlan:
    number: int
    phase: Phase
    infusion_days: int
    treatment_free_days: int
    doses: tuple[DoseRange, ...]
    hospitalization_days: int
    supervised_start: bool  # L2-reinit-4h: later cycle starts need supervision or hospitalisation
    # L2-premed: one entry when the population is known; adult and pediatric, side by side, when it is not
    premedication_by_population: tuple[PopulationPremed, ...]

    @property
    def population_known(self) -> bool:
        return len(self.premedication_by_population) == 1

    @property
    def premedication(self) -> tuple[PremedEvent, ...] | None:
        """The premedication of the patient's population; None when the population (age) is unknown."""
        return self.premedication_by_population[0].before_dose if self.population_known else None

    @property
    def premedication_on_restart(self) -> tuple[RestartPremed, ...] | None:
        """Premedication due on a restart after >= 4 h; None when the population (age) is unknown."""
        return self.premedication_by_population[0].on_restart if self.population_known else None


@dataclass(frozen=True)
class CourseLength:
    """How many cycles the plan has, and whose number that is (L2.1-course, L2.2-course, L2.3-course)."""

    cycles: int
    max_cycles: int
    source: str  # "label", or "site setting" for the consolidation count (L2.3-course)
    clause: str
    note: str


@dataclass(frozen=True)
class Course:
    patient: Patient
    clause: str
    cycles: tuple[CyclePlan, ...]
    course_length: CourseLength
    around: AroundThePump

    @property
    def indication(self) -> Indication:
        return self.patient.indication

    @property
    def dosing(self) -> str:
        return self.patient.dosing

    @property
    def population(self) -> PopulationStatus:
        return self.patient.population

    @property
    def last_infusion_course_day(self) -> int:
        return last_infusion_course_day(self.cycles)


def last_infusion_course_day(cycles: tuple[CyclePlan, ...]) -> int:
    """Course day (day 1 = first infusion day) of the last planned infusion day, with no interruptions and
    treatment-free intervals of the label's length (L2-cycle-42, L2.2-cycle-84)."""
    return sum(c.infusion_days + c.treatment_free_days for c in cycles[:-1]) + cycles[-1].infusion_days


def _premed_dose(rule: PremedRule, patient: Patient) -> tuple[Decimal | None, str]:
    if rule.dose_mg is not None:
        return Decimal(rule.dose_mg), "%d mg %s" % (rule.dose_mg, rule.route)
    assert rule.dose_mg_per_m2 is not None and rule.max_dose_mg is not None
    per_m2 = "%d mg/m2 (max %d mg) %s" % (rule.dose_mg_per_m2, rule.max_dose_mg, rule.route)
    if patient.bsa_m2 is None:
        return None, per_m2 + "; BSA not given: needed for this dose"
    # L2-premed: 5 mg/m2 to a maximum of 20 mg, exact (BSA 1.23 m2 -> 6.15 mg, not rounded to 6 or 6.1)
    dose_mg = min(Decimal(rule.max_dose_mg), rule.dose_mg_per_m2 * exact(patient.bsa_m2))
    return dose_mg, "%s mg (%s)" % (mg_text(dose_mg), per_m2)


def _premedication(patient: Patient, population: Population, cycle: int) -> PopulationPremed:
    rule = premed_rule(patient.indication, population)
    dose_mg, dose = _premed_dose(rule, patient)
    events: list[PremedEvent] = []
    if rule.every_cycle or cycle == 1:
        # L2-premed: before the first dose of each cycle (adults) or of the first cycle (children)
        events.append(PremedEvent(1, rule.drug, dose_mg, dose, rule.timing, "first dose of cycle %d" % cycle,
                                  population, rule.clause))
    if rule.before_step_dose and cycle == STEP_CYCLE.value:
        # L2-premed with L2.2-step: before the step up on cycle 1 day 8
        events.append(PremedEvent(STEP_LAST_DAY.value + 1, rule.drug, dose_mg, dose, "before the step dose",
                                  "step dose (cycle 1 day %d)" % (STEP_LAST_DAY.value + 1), population,
                                  rule.clause))
    restarts: list[RestartPremed] = []
    if rule.on_restart == "every-cycle" or (rule.on_restart == "first-cycle" and cycle == 1):
        # L2-premed with L2-reinit-4h
        restarts.append(RestartPremed(rule.drug, dose_mg, dose, "restart after an interruption of >= %d h"
                                      % REINIT_H.value, population, rule.clause))
    return PopulationPremed(population, tuple(events), tuple(restarts))


def _premedications(patient: Patient, cycle: int) -> tuple[PopulationPremed, ...]:
    population = patient.population
    if population == "unknown":
        # L2-premed: no age, no guess: what each population would need, side by side
        return tuple(_premedication(patient, p, cycle) for p in POPULATIONS)
    return (_premedication(patient, population, cycle),)


def _doses(patient: Patient, cycle: int) -> tuple[DoseRange, ...]:
    full = DoseRange(1, INFUSION_DAYS.value, planned(full_cap_mcg_per_day(patient)), "L2-dose-28")
    if patient.indication == "rr" and cycle == STEP_CYCLE.value:
        # L2.2-step: days 1-7 at the step dose, days 8-28 at the target dose
        step = DoseRange(STEP_FIRST_DAY.value, STEP_LAST_DAY.value, planned(low_cap_mcg_per_day(patient)),
                         "L2.2-step")
        return step, DoseRange(STEP_LAST_DAY.value + 1, INFUSION_DAYS.value, full.mcg_per_day, "L2-dose-28")
    return (full,)


def _course_length(count: int, max_cycles: int, clause: str, source: str, given: bool) -> CourseLength:
    if source.startswith(SITE):
        # L2.3-course: the seed gives no number of consolidation cycles; the count is the site's setting
        note = ("%s: the label gives no number of consolidation cycles; at most %d cycles (the setting's "
                "bound, not a label number); cycles sit inside multiphase chemotherapy, so the gap between them "
                "may be longer than 14 days" % ("set by --cycles" if given else "the site's default", max_cycles))
        return CourseLength(count, max_cycles, SITE, clause, note)
    if given:
        note = "the first %d of the label's %d cycles (%s)" % (count, max_cycles, clause)
    else:
        note = "the label's course: %d cycles (%s)" % (max_cycles, clause)
    return CourseLength(count, max_cycles, "label", clause, note)


def plan_course(patient: Patient, cycles: int | None = None, ext: ExtConfig = DEFAULT_EXT) -> Course:
    """The label's course for this patient.

    `cycles`: for MRD+ and R/R, keep only the first N cycles of the label's course (L2.1-course, L2.2-course);
    for consolidation, the site's number of cycles (L2.3-course: a site setting, at most
    `ext.consolidation_max_cycles`, default 4; the label gives no number).
    """
    rule = course_rule(patient.indication, ext)
    count = rule.max_cycles
    if cycles is not None:
        # L2.1-course / L2.2-course / L2.3-course: no more cycles than the course has, and at least one
        if isinstance(cycles, bool) or not isinstance(cycles, int) or not 1 <= cycles <= rule.max_cycles:
            bound = ("the site setting's bound: the label gives no number of consolidation cycles"
                     if rule.source.startswith(SITE) else "the label's course")
            raise ModelError("cycles", rule.clause, "cycles %r is not in 1..%d for indication %s (%s)"
                             % (cycles, rule.max_cycles, patient.indication, bound))
        count = cycles
    plans: list[CyclePlan] = []
    for n in range(1, count + 1):
        hosp_days = hospitalization_days(patient.indication, n)  # L2-hosp
        plans.append(CyclePlan(
            number=n,
            phase=rule.phases[n - 1],
            infusion_days=INFUSION_DAYS.value,  # L2-cycle-42
            treatment_free_days=treatment_free_days(patient.indication, n),  # L2-cycle-42, L2.2-cycle-84
            doses=_doses(patient, n),
            hospitalization_days=hosp_days,
            supervised_start=hosp_days == 0,  # L2-reinit-4h
            premedication_by_population=_premedications(patient, n),
        ))
    length = _course_length(count, rule.max_cycles, rule.clause, rule.source, cycles is not None)
    around = around_the_pump(patient, last_infusion_course_day(tuple(plans)), ext)
    return Course(patient, rule.clause, tuple(plans), length, around)
