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

from .errors import ModelError
from .label import INDICATION_CODES, course_rule, indication_clause, label_rows
from .patient import BSA_FORMULAS, BsaFormula, Patient, parse_indication
from .planner import Course, CyclePlan, PremedEvent, RestartPremed, plan_course

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
                        help="age, to choose adult or pediatric premedication (default: inferred from weight)")
    parser.add_argument("--cycles", action=_Once, metavar="N", help="plan only the first N cycles")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _patient(args: argparse.Namespace) -> Patient:
    indication = parse_indication(args.indication)
    weight_kg = _number(args.weight_kg, "weight_kg", "L2-weight-45")
    assert weight_kg is not None  # argparse makes --weight-kg required
    age_years = _number(args.age_years, "age_years", "L1")
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


def _cycle_json(cycle: CyclePlan) -> dict[str, Any]:
    return {
        "cycle": cycle.number,
        "phase": cycle.phase,
        "infusion_days": cycle.infusion_days,
        "treatment_free_days": cycle.treatment_free_days,
        "doses": [{"first_day": d.first_day, "last_day": d.last_day, "mcg_per_day": float(d.mcg_per_day)}
                  for d in cycle.doses],
        "hospitalization_days": cycle.hospitalization_days,
        "premedication": [_premed_json(e) for e in cycle.premedication],
        "premedication_on_restart": [_restart_json(e) for e in cycle.premedication_on_restart],
        "supervised_start": cycle.supervised_start,
    }


def course_json(course: Course) -> dict[str, Any]:
    """The JSON contract of `blinpump plan --json`."""
    patient = course.patient
    return {
        "indication": patient.indication,
        "weight_kg": float(patient.weight_kg),
        "bsa_m2": None if patient.bsa_m2 is None else float(patient.bsa_m2),
        "dosing": patient.dosing,
        "cycles": [_cycle_json(c) for c in course.cycles],
    }


def _course_text(course: Course) -> str:
    patient = course.patient
    bsa = "not given" if patient.bsa_m2 is None else "%g m2" % patient.bsa_m2
    lines = [
        "BLINCYTO course: indication %s (%s, %s), weight %g kg, BSA %s, %s dose (L2-weight-45)"
        % (patient.indication, indication_clause(patient.indication), course.clause, patient.weight_kg, bsa,
           patient.dosing),
        "premedication for: %s%s" % (patient.population,
                                     " (inferred from weight; give --age-years)" if patient.population_inferred
                                     else ""),
        "",
        "%-5s %-13s %4s %4s  %-28s %4s  %s" % ("cycle", "phase", "inf", "rest", "dose mcg/day (days)", "hosp",
                                               "premedication"),
    ]
    for cycle in course.cycles:
        doses = "; ".join("%s (%d-%d)" % (d.mcg_per_day, d.first_day, d.last_day) for d in cycle.doses)
        premeds = "; ".join("day %d %s %s" % (e.day, e.drug, e.dose) for e in cycle.premedication)
        if cycle.premedication_on_restart:
            premeds += "; on restart after >= 4 h: same"
        hosp = str(cycle.hospitalization_days) if cycle.hospitalization_days else "sup."
        lines.append("%-5d %-13s %4d %4d  %-28s %4s  %s" % (cycle.number, cycle.phase, cycle.infusion_days,
                                                             cycle.treatment_free_days, doses, hosp, premeds or "-"))
    lines.append("")
    lines.append("inf/rest: infusion and treatment-free days (L2-cycle-42, L2.2-cycle-84); hosp: recommended days "
                 "in hospital (L2-hosp), sup.: supervised start (L2-reinit-4h); doses capped (L2-dose-28, L2.2-step)")
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
