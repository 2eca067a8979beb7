"""`blinpump plan` and `blinpump label`.

Bad input exits with status 2 and one line on stderr that names the field and the label clause, so a test
bench can check which rule refused it. Numbers are parsed here, not by argparse, for that reason. An option
given twice (`--weight-kg 70 --weight-kg 80`) is refused, not silently resolved to the last one: two weights
on one order are a question for the prescriber, not for the planner.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, NoReturn

from .around import AroundThePump, mg_text
from .errors import ModelError
from .label import ADULT_MIN_AGE_YEARS, DEFAULT_EXT, INDICATION_CODES, course_rule, indication_clause, label_rows
from .patient import BSA_FORMULAS, MAX_AGE_YEARS, BsaFormula, Patient, parse_indication
from .planner import POPULATIONS, Course, CyclePlan, PopulationPremed, PremedEvent, RestartPremed, plan_course

EXIT_USAGE = 2

# option -> (field, clause) for argparse's own errors (missing or repeated options)
_OPTION_CLAUSES: dict[str, tuple[str, str]] = {
    "--indication": ("indication", "L1"),
    "--weight-kg": ("weight_kg", "L2-weight-45"),
    "--bsa-m2": ("bsa_m2", "L2-dose-28"),
    "--height-cm": ("height_cm", "L2-dose-28"),
    "--bsa-formula": ("bsa_formula", "L2-dose-28"),
    "--age-years": ("age_years", "L1"),
    "--cycles": ("cycles", "L2.1-course/L2.2-course/L2.3-course"),
}


class _Parser(argparse.ArgumentParser):
    """argparse, but its errors are one line that names a field and a clause where it can."""

    def error(self, message: str) -> NoReturn:
        hits = [(message.find(opt), field_clause) for opt, field_clause in _OPTION_CLAUSES.items() if opt in message]
        field, clause = min(hits)[1] if hits else ("arguments", "-")
        self.exit(EXIT_USAGE, "%s: error: field=%s clause=%s: %s\n" % (self.prog, field, clause,
                                                                       " ".join(message.split())))


class _Once(argparse.Action):
    """Store an option's value, refusing a second one (argparse would keep the last silently)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: str | Sequence[Any] | None, option_string: str | None = None) -> None:
        if getattr(namespace, self.dest, None) is not None:
            raise argparse.ArgumentError(self, "given more than once (%r, then %r)"
                                         % (getattr(namespace, self.dest), values))
        setattr(namespace, self.dest, values)


def _number(text: str | None, field: str, clause: str) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise ModelError(field, clause, "%r is not a number" % text) from None


def _plan_parser() -> _Parser:
    parser = _Parser(prog="blinpump plan", description="Plan a BLINCYTO course (label Tables 1-3).")
    parser.add_argument("--indication", required=True, action=_Once,
                        metavar="{%s}" % ",".join(INDICATION_CODES),
                        help="mrd (L1.1), rr (L1.2) or consolidation (L1.3)")
    parser.add_argument("--weight-kg", required=True, action=_Once, metavar="W",
                        help="body weight in kg (L2-weight-45)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--bsa-m2", action=_Once, metavar="B", help="body surface area in m2 (required below 45 kg)")
    size.add_argument("--height-cm", action=_Once, metavar="H", help="height in cm, to compute the BSA")
    parser.add_argument("--bsa-formula", action=_Once, choices=BSA_FORMULAS, default=None,
                        help="formula for --height-cm (default mosteller)")
    parser.add_argument("--age-years", action=_Once, metavar="A",
                        help="age in years (1/12 year = 1 month .. %g): adult (>= %d) or pediatric premedication "
                             "(L2-premed); without it the population is unknown and both are listed"
                        % (MAX_AGE_YEARS, ADULT_MIN_AGE_YEARS))
    parser.add_argument("--cycles", action=_Once, metavar="N",
                        help="mrd, rr: plan only the first N cycles; consolidation: the site's number of cycles "
                             "(a site setting, 1..%d; the label gives none, L2.3-course)"
                        % DEFAULT_EXT.consolidation_max_cycles)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _patient(args: argparse.Namespace) -> Patient:
    indication = parse_indication(args.indication)
    weight_kg = _number(args.weight_kg, "weight_kg", "L2-weight-45")
    assert weight_kg is not None  # argparse makes --weight-kg required
    # L1.1-L1.3: an age that is not a number is refused with the indication's clause, as a wrong one is
    age_years = _number(args.age_years, "age_years", indication_clause(indication))
    if args.height_cm is not None:
        height_cm = _number(args.height_cm, "height_cm", "L2-dose-28")
        assert height_cm is not None
        formula: BsaFormula = args.bsa_formula or "mosteller"
        return Patient.from_height(indication, weight_kg, height_cm, formula, age_years)
    if args.bsa_formula is not None:
        raise ModelError("bsa_formula", "L2-dose-28", "--bsa-formula needs --height-cm")
    return Patient(indication, weight_kg, _number(args.bsa_m2, "bsa_m2", "L2-dose-28"), age_years)


def _cycles(text: str | None, patient: Patient) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise ModelError("cycles", course_rule(patient.indication).clause, "%r is not a whole number" % text) from None


def _mg(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _premed_json(event: PremedEvent) -> dict[str, Any]:
    return {"day": event.day, "drug": event.drug, "dose_mg": _mg(event.dose_mg), "dose": event.dose,
            "timing": event.timing, "reason": event.reason, "population": event.population, "clause": event.clause}


def _restart_json(event: RestartPremed) -> dict[str, Any]:
    return {"condition": event.condition, "drug": event.drug, "dose_mg": _mg(event.dose_mg), "dose": event.dose,
            "population": event.population, "clause": event.clause}


def _population_json(premed: PopulationPremed) -> dict[str, Any]:
    return {"before_dose": [_premed_json(e) for e in premed.before_dose],
            "on_restart": [_restart_json(e) for e in premed.on_restart]}


def _cycle_json(cycle: CyclePlan) -> dict[str, Any]:
    premeds, restarts = cycle.premedication, cycle.premedication_on_restart
    return {
        "cycle": cycle.number,
        "phase": cycle.phase,
        "infusion_days": cycle.infusion_days,
        "treatment_free_days": cycle.treatment_free_days,
        "doses": [{"first_day": d.first_day, "last_day": d.last_day, "mcg_per_day": float(d.mcg_per_day)}
                  for d in cycle.doses],
        "hospitalization_days": cycle.hospitalization_days,
        # L2-premed: the patient's population's; null (not an empty list) when the age, so the population, is
        # unknown: then premedication_by_population lists adult and pediatric side by side
        "premedication": None if premeds is None else [_premed_json(e) for e in premeds],
        "premedication_on_restart": None if restarts is None else [_restart_json(e) for e in restarts],
        "premedication_by_population": {p.population: _population_json(p) for p in cycle.premedication_by_population},
        "supervised_start": cycle.supervised_start,
    }


def _around_json(around: AroundThePump) -> dict[str, Any]:
    crs, benzyl, contra = around.crs_dexamethasone, around.benzyl_alcohol, around.contraception
    return {
        "filter": {"clause": around.filter.clause, "kind": "set-up check", "checks": list(around.filter.checks),
                   "source": around.filter.source},
        "intrathecal_prophylaxis": {"clause": around.it_prophylaxis.clause, "text": around.it_prophylaxis.text,
                                    "source": around.it_prophylaxis.source},
        "crs_dexamethasone": {"clause": crs.clause, "when": crs.when, "basis": crs.basis,
                              "dose_mg": float(crs.dose_mg), "dose": crs.dose, "route": crs.route,
                              "every_h": crs.every_h, "up_to_days": crs.up_to_days,
                              "taper_over_days": crs.taper_over_days, "source": crs.source},
        "benzyl_alcohol": {
            "clause": benzyl.clause, "flagged": benzyl.flagged, "reason": benzyl.reason, "advice": benzyl.advice,
            "bags": [{"duration_h": b.duration_h, "preservative": b.preservative,
                      "benzyl_mg_per_ml": float(b.benzyl_mg_per_ml), "rate_ml_per_h": float(b.rate_ml_per_h),
                      "ml_per_day": float(b.ml_per_day), "mg_per_day": float(b.mg_per_day),
                      "mg_per_kg_per_day": float(b.mg_per_kg_per_day), "recommended": b.recommended,
                      "note": b.note} for b in benzyl.bags],
            "source": benzyl.source},
        "contraception": {"clause": contra.clause, "before_start": contra.before_start,
                          "during_and_after": contra.during_and_after,
                          "hours_after_last_dose": contra.hours_after_last_dose,
                          "last_planned_infusion_course_day": contra.last_planned_infusion_course_day,
                          "until_end_of_course_day": contra.until_end_of_course_day, "note": contra.note,
                          "source": contra.source},
    }


def course_json(course: Course) -> dict[str, Any]:
    """The JSON contract of `blinpump plan --json`."""
    patient = course.patient
    length = course.course_length
    return {
        "indication": patient.indication,
        "weight_kg": float(patient.weight_kg),
        "bsa_m2": None if patient.bsa_m2 is None else float(patient.bsa_m2),
        "age_years": None if patient.age_years is None else float(patient.age_years),
        "dosing": patient.dosing,  # by weight (L2-weight-45)
        # by age (L2-premed): "adult", "pediatric" or "unknown" (no --age-years; never guessed from weight)
        "population": patient.population,
        "population_rule": {"clause": "L2-premed", "basis": "age",
                            "adult_from_age_years": ADULT_MIN_AGE_YEARS,
                            "reading": "the label says adult and pediatric patients without an age; 18 years "
                                       "and over is read as adult"},
        "course_length": {"cycles": length.cycles, "max_cycles": length.max_cycles, "source": length.source,
                          "clause": length.clause, "note": length.note},
        "cycles": [_cycle_json(c) for c in course.cycles],
        "around_the_pump": _around_json(course.around),
    }


def _premed_text(events: tuple[PremedEvent, ...] | None, restarts: tuple[RestartPremed, ...] | None) -> str:
    if events is None:
        return "population unknown: see below"
    text = "; ".join("day %d %s %s, %s" % (e.day, e.drug, e.dose, e.timing) for e in events)
    if restarts:
        text += "; on restart after >= 4 h: same"
    return text or "-"


def _population_text(course: Course) -> list[str]:
    """L2-premed without an age: each population's premedication, cycle by cycle."""
    lines = ["premedication (L2-premed) depends on AGE, which was not given: the population is UNKNOWN; what each "
             "would need (give --age-years; adult from %d years):" % ADULT_MIN_AGE_YEARS]
    for population in POPULATIONS:
        lines.append("  %s:" % population)
        for cycle in course.cycles:
            for premed in cycle.premedication_by_population:
                if premed.population == population:
                    lines.append("    cycle %d: %s" % (cycle.number,
                                                      _premed_text(premed.before_dose, premed.on_restart)))
    return lines


def _around_text(course: Course) -> list[str]:
    around = course.around
    crs, benzyl, contra = around.crs_dexamethasone, around.benzyl_alcohol, around.contraception
    lines = ["around the pump:",
             "  %s (set-up check): %s" % (around.filter.clause, "; ".join(around.filter.checks)),
             "  %s: %s" % (around.it_prophylaxis.clause, around.it_prophylaxis.text),
             "  %s: CRS dexamethasone (%s): %s; for %s" % (crs.clause, crs.basis, crs.dose, crs.when),
             "  %s: benzyl alcohol of preservative bags at the published rates (EXT-rates)%s:"
             % (benzyl.clause, " -- FLAGGED: %s; %s" % (benzyl.reason, benzyl.advice) if benzyl.flagged else "")]
    for bag in benzyl.bags:
        if bag.preservative:
            lines.append("    %d h bag: %s mg/mL x %s mL/h = %s mg/day = %s mg/kg/day%s"
                         % (bag.duration_h, mg_text(bag.benzyl_mg_per_ml), mg_text(bag.rate_ml_per_h),
                            mg_text(bag.mg_per_day), mg_text(bag.mg_per_kg_per_day),
                            "" if bag.recommended else "; " + bag.note))
    lines.append("  %s: %s; %s: until the end of course day %d (last planned infusion day %d; %s)"
                 % (contra.clause, contra.before_start, contra.during_and_after, contra.until_end_of_course_day,
                    contra.last_planned_infusion_course_day, contra.note))
    return lines


def _course_text(course: Course) -> str:
    patient = course.patient
    bsa = "not given" if patient.bsa_m2 is None else "%g m2" % patient.bsa_m2
    length = course.course_length
    if patient.population == "unknown":
        population = "UNKNOWN (no --age-years; premedication is by age, never guessed from weight: both listed below)"
    else:
        population = "%s (age %g years; adult from %d, L2-premed)" % (patient.population, patient.age_years or 0,
                                                                    ADULT_MIN_AGE_YEARS)
    lines = [
        "BLINCYTO course: indication %s (%s, %s), weight %g kg, BSA %s, %s dose (L2-weight-45)"
        % (patient.indication, indication_clause(patient.indication), course.clause, patient.weight_kg, bsa,
           patient.dosing),
        "population for premedication: %s" % population,
        "course length: %d cycles (%s, %s): %s" % (length.cycles, length.clause, length.source.upper(), length.note),
        "",
        "%-5s %-13s %4s %4s  %-28s %4s  %s" % ("cycle", "phase", "inf", "rest", "dose mcg/day (days)", "hosp",
                                               "premedication"),
    ]
    for cycle in course.cycles:
        doses = "; ".join("%s (%d-%d)" % (d.mcg_per_day, d.first_day, d.last_day) for d in cycle.doses)
        hosp = str(cycle.hospitalization_days) if cycle.hospitalization_days else "sup."
        lines.append("%-5d %-13s %4d %4d  %-28s %4s  %s" % (
            cycle.number, cycle.phase, cycle.infusion_days, cycle.treatment_free_days, doses, hosp,
            _premed_text(cycle.premedication, cycle.premedication_on_restart)))
    lines.append("")
    lines.append("inf/rest: infusion and treatment-free days (L2-cycle-42, L2.2-cycle-84); hosp: recommended days "
                 "in hospital (L2-hosp), sup.: supervised start (L2-reinit-4h); doses capped (L2-dose-28, L2.2-step)")
    if patient.population == "unknown":
        lines.append("")
        lines.extend(_population_text(course))
    lines.append("")
    lines.extend(_around_text(course))
    return "\n".join(lines)


def plan_main(argv: list[str]) -> int:
    args = _plan_parser().parse_args(argv)
    try:
        patient = _patient(args)
        course = plan_course(patient, _cycles(args.cycles, patient))
    except ModelError as err:
        print("blinpump plan: error: %s" % err, file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(course_json(course), indent=2))
    else:
        print(_course_text(course))
    return 0


def label_main(argv: list[str]) -> int:
    parser = _Parser(prog="blinpump label", description="The BLINCYTO label as clause IDs and numbers.")
    parser.add_argument("--json", action="store_true", help="print a JSON list of rows")
    args = parser.parse_args(argv)
    rows = label_rows()
    if args.json:
        print(json.dumps([{"clause": r.clause, "what": r.what, "value": r.value, "unit": r.unit, "source": r.source}
                          for r in rows], indent=2))
        return 0
    table = [("clause", "what", "value", "unit")] + [(r.clause, r.what, str(r.value), r.unit) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    for row in table:
        print("%-*s  %-*s  %-*s  %s" % (widths[0], row[0], widths[1], row[1], widths[2], row[2], row[3]))
    return 0
