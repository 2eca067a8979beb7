"""Scenario files: steps on a pump over serial, in simulated time, with expectations from model/.

A scenario (hil/scenarios/*.json) names a patient and the label clauses it exercises:

    {"id": "crs4-lockout", "title": "...", "clauses": ["L2.4-crs-4"],
     "patient": {"indication": "rr", "weight_kg": 70},
     "steps": [{"do": "setup"}, {"do": "bag", "ng_per_day": "cap_low", "hours": 168}, ...]}

Steps (docs/protocol.md lists the commands they use):
  {"do": CMD, ...args, "expect": STATUS}   a therapy command; expect defaults to "OK". For "bag",
                                           "expect": "model" asks model.orders.validate_bag and
                                           expects OK, or a refusal citing the model's clause
  {"advance": "7d"}                        fast-forward (d, h, m); "expect": "rebooted" if a power
                                           cut is due to land in it
  {"fault": KIND, "outage": "30m"|"unknown", "after_bytes": N, "value": N}
  {"check": {FIELD: SPEC, "alarm_on": [...], "alarm_off": [...]}}   against STATUS
  {"events": [CODE, ...]}                  journal events since the last events step, in order
  {"no_events": [CODE, ...]}
  {"save": {NAME: FIELD}}                  remember a STATUS field for later expressions
SPEC is an int, a mode/phase name, or an expression with an optional leading comparison
("<= cap_low", "7 * cap_low + 3 * cap_full"). Names come from model.limits.kernel_limits(Patient)
(cap_full, cap_low, ...), from model.limits (reinit_min, room_limit_min_48, ...), and from save
steps: the expected numbers are the model's, never constants typed into the scenario.
"""
from __future__ import annotations

import ast
import json
import operator
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

from blinpump.firmware import codes, journal
from blinpump.firmware import kernel as k
from blinpump.hil.client import EVENT_NAMES, BoardRebooted, Pump, PumpError, Status, status_code

if TYPE_CHECKING:
    from blinpump.hil.plot import Timeline

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
PATIENT_ID = 4242
DEFAULT_VOLUME_ML = 240         # EXT-rates: 10 mL/h for a 24 h bag; the rate always comes from the bag

_WORDS = {"no_patient": k.MODE_NO_PATIENT, "stopped": k.MODE_STOPPED, "running": k.MODE_RUNNING,
          "infusion": k.PHASE_INFUSION, "free": k.PHASE_FREE, "done": k.PHASE_DONE}
_ALARMS = {n[3:]: v for n, v in vars(k).items() if n.startswith("AL_")}
_STOPS = {n[5:].lower(): v for n, v in vars(k).items() if n.startswith("STOP_")}
_REACTIONS = {n[3:].lower(): v for n, v in vars(k).items() if n.startswith("RX_") and n != "RX_NONE"}
_ACKS = {"premed": k.ACK_PREMED, "supervision": k.ACK_SUPERVISION}
_EVENT_CODES = {v: c for c, v in EVENT_NAMES.items()}
_NO_ARG = ("start", "resolved", "overdose", "flush", "remove_bag", "clear_fault")


@dataclass
class Scenario:
    id: str
    title: str
    clauses: list[str]
    patient: dict[str, Any]
    steps: list[dict[str, Any]]
    path: Path | None = None

    @property
    def test_id(self) -> str:
        """A test name that starts with the clause IDs (LABEL.md) the scenario exercises."""
        return "%s:%s" % ("+".join(self.clauses), self.id)


@dataclass
class Result:
    scenario: Scenario
    failures: list[str] = field(default_factory=list)
    steps_run: int = 0
    sim_min: int = 0
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures


class ScenarioError(Exception):
    pass


def load(path: str | Path) -> Scenario:
    path = Path(path)
    data = json.loads(path.read_text())
    for key in ("id", "title", "clauses", "patient", "steps"):
        if key not in data:
            raise ScenarioError("%s: missing %r" % (path, key))
    return Scenario(data["id"], data["title"], list(data["clauses"]), data["patient"], data["steps"], path)


def standard(names: list[str] | None = None) -> list[Scenario]:
    """The standard library (hil/scenarios/*.json), or those whose id, file stem or clause is named."""
    found = [load(p) for p in sorted(SCENARIO_DIR.glob("*.json"))]
    if not names:
        return found
    out = []
    for name in names:
        if Path(name).suffix == ".json" and Path(name).exists():
            out.append(load(name))
            continue
        hits = [s for s in found if name in (s.id, s.path.stem if s.path else "") or name in s.clauses]
        if not hits:
            raise ScenarioError("no scenario %r (have: %s)" % (name, ", ".join(s.id for s in found)))
        out.extend(h for h in hits if h not in out)
    return out


# ---------------------------------------------------------------- names from model/

def _patient(patient: dict[str, Any]) -> Any:
    from blinpump.model.patient import Patient, parse_indication
    bsa = patient.get("bsa_m2")
    return Patient(parse_indication(patient["indication"]), float(patient["weight_kg"]),
                   None if bsa is None else float(bsa))


def model_names(patient: dict[str, Any]) -> dict[str, int]:
    """The integers the kernel must enforce for this patient, computed by model/ (not by the kernel)."""
    try:
        from blinpump.model import limits
    except ImportError as exc:      # pragma: no cover - model/ is part of the repository
        raise ScenarioError("model/ is needed for the expectations: %s" % exc) from None
    p = _patient(patient)
    lim = limits.kernel_limits(p)
    names = {
        "cap_full": lim.cap_full_ng_per_day, "cap_low": lim.cap_low_ng_per_day,
        "max_cycles": lim.max_cycles, "weight_g": lim.weight_g, "bsa_cm2": lim.bsa_cm2,
        "indication": lim.indication_code, "preservative_allowed": lim.preservative_allowed,
        "overdose_lockout_min": lim.overdose_lockout_min,
        "reinit_min": limits.REINIT_THRESHOLD_MIN, "new_cycle_min": limits.NEW_CYCLE_THRESHOLD_MIN,
        "step_window_min": limits.STEP_WINDOW_MIN, "min_per_day": limits.MIN_PER_DAY,
    }
    for hours, room in limits.BAG_ROOM_MIN.items():
        names["room_limit_min_%d" % hours] = room
        names["fridge_limit_min_%d" % hours] = limits.BAG_FRIDGE_MIN[hours]
    for n, days in enumerate(lim.treatment_free_days, 1):
        names["free_days_%d" % n] = days
    names.update(_WORDS)
    return names


_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv}
_COMPARE = re.compile(r"^\s*(==|!=|<=|>=|<|>)\s*(.+)$")
_CMP = {"==": operator.eq, "!=": operator.ne, "<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


def evaluate(expr: str | int, names: dict[str, int]) -> int:
    """Integer arithmetic (+ - * //) over names; nothing else is accepted."""
    if isinstance(expr, int):
        return expr

    def ev(node: ast.AST) -> int:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return int(node.value)
        if isinstance(node, ast.Name):
            if node.id not in names:
                raise ScenarioError("unknown name %r in %r" % (node.id, expr))
            return names[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return int(_BINOPS[type(node.op)](ev(node.left), ev(node.right)))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        raise ScenarioError("not an integer expression: %r" % expr)
    return ev(ast.parse(str(expr), mode="eval"))


def check_value(actual: int, spec: str | int, names: dict[str, int]) -> str | None:
    """None if `actual` meets `spec`, else what was expected."""
    op, expr = "==", spec
    if isinstance(spec, str):
        m = _COMPARE.match(spec)
        if m:
            op, expr = m.group(1), m.group(2)
    want = evaluate(expr, names)
    return None if _CMP[op](actual, want) else "%s %d (%s)" % (op, want, spec)


def minutes(text: str | int) -> int:
    """'7d', '5h', '30m', '1d12h' -> minutes."""
    if isinstance(text, int):
        return text
    parts = re.findall(r"(\d+)\s*([dhm])", text)
    if not parts or "".join(n + u for n, u in parts) != re.sub(r"\s", "", text):
        raise ScenarioError("bad duration %r (use e.g. 7d, 5h, 30m)" % text)
    return sum(int(n) * {"d": 1440, "h": 60, "m": 1}[u] for n, u in parts)


# ---------------------------------------------------------------- running

class _Run:
    def __init__(self, pump: Pump, sc: Scenario, result: Result, timeline: Timeline | None = None) -> None:
        self.pump, self.sc, self.result = pump, sc, result
        self.timeline = timeline
        self.names = model_names(sc.patient)
        self.patient_id = int(sc.patient.get("patient_id", PATIENT_ID))
        self.mark = 0

    def fail(self, i: int, step: dict[str, Any], msg: str) -> None:
        self.result.failures.append("step %d %s: %s" % (i + 1, json.dumps(step, sort_keys=True), msg))

    def expect_status(self, i: int, step: dict[str, Any], got: Status, want: str | int) -> None:
        want_code = want if isinstance(want, int) else status_code(want)
        if got != want_code:
            self.fail(i, step, "got %r, expected %s" % (got, Status(want_code).name))

    def command(self, i: int, step: dict[str, Any]) -> None:
        p, name = self.pump, step["do"]
        if name == "setup":
            st = p.setup(self.patient_id, self.names["indication"], self.names["weight_g"], self.names["bsa_cm2"])
        elif name == "bag":
            args = self.bag_args(step)
            st = p.bag(*args)
            if step.get("expect") == "model":
                return self.expect_model_bag(i, step, st, args)
        elif name in _NO_ARG:
            st = getattr(p, name)()
        elif name == "stop":
            st = p.stop(_STOPS[step.get("reason", "clinician")])
        elif name == "ack":
            st = p.ack(_ACKS[step["what"]])
        elif name == "ack_alarm":
            bits = step.get("bits", "all")
            st = p.ack_alarm(255 if bits == "all" else sum(_ALARMS[b] for b in bits))
        elif name == "reaction":
            st = p.reaction(_REACTIONS[step["kind"]], int(step["grade"]))
        elif name == "decide":
            st = p.decide(int(step["discontinue"]))
        else:
            raise ScenarioError("unknown command %r" % name)
        self.expect_status(i, step, st, step.get("expect", "OK"))

    def bag_args(self, step: dict[str, Any]) -> list[int]:
        hours = int(step["hours"])
        ng_per_day = evaluate(step["ng_per_day"], self.names)
        preservative = step.get("preservative", 1 if hours >= 72 else 0)   # L2.5-durations
        return [int(step.get("patient_id", self.patient_id)), ng_per_day * hours // 24,
                int(step.get("volume_ml", DEFAULT_VOLUME_ML)) * 1000, hours, int(preservative),
                minutes(step.get("room", 0)), minutes(step.get("fridge", 0))]

    def expect_model_bag(self, i: int, step: dict[str, Any], got: Status, args: list[int]) -> None:
        """The pump must accept exactly the bags model/ accepts, and cite the model's clause otherwise."""
        from blinpump.model.errors import ModelError
        from blinpump.model.orders import BagOrder, validate_bag
        s = self.pump.status()
        patient = _patient(self.sc.patient)
        order = BagOrder(args[1] / 1000, args[2] / 1000, args[3], bool(args[4]), args[5] / 60, args[6] / 60)
        try:
            validate_bag(patient, order, max(s["cycle"], 1), s["cycle_run_min"] // 1440 + 1)
        except ModelError as err:
            if got.ok or err.clause not in codes.clause(int(got)).split("/"):
                self.fail(i, step, "model refuses (%s), pump said %r" % (err, got))
            return
        if not got.ok:
            self.fail(i, step, "model accepts the bag, pump said %r" % got)

    def check(self, i: int, step: dict[str, Any]) -> None:
        s = self.pump.status()
        for name, spec in step["check"].items():
            if name in ("alarm_on", "alarm_off"):
                for a in spec:
                    on = bool(s["alarm"] & _ALARMS[a])
                    if on != (name == "alarm_on"):
                        self.fail(i, step, "alarm %s is %s (alarm=%d)" % (a, "on" if on else "off", s["alarm"]))
                continue
            if name not in s:
                raise ScenarioError("no status field %r" % name)
            problem = check_value(s[name], spec, dict(self.names))
            if problem:
                self.fail(i, step, "%s = %d, expected %s" % (name, s[name], problem))

    def events(self, i: int, step: dict[str, Any]) -> None:
        evs = [e for e in self.pump.events(self.mark) if e["code"] != journal.EV_COMMAND]
        if evs:
            self.mark = evs[-1]["seq"] + 1
        got = [EVENT_NAMES.get(e["code"], str(e["code"])) for e in evs]
        if "events" in step:
            want = list(step["events"])
            it = iter(got)
            if not all(w in it for w in want):            # an ordered subsequence
                self.fail(i, step, "events %s, expected %s in this order" % (got, want))
        for bad in step.get("no_events", []):
            if bad in got:
                self.fail(i, step, "event %s happened (events %s)" % (bad, got))

    def step(self, i: int, step: dict[str, Any]) -> None:
        p = self.pump
        if "do" in step:
            self.command(i, step)
        elif "advance" in step:
            n = minutes(step["advance"])
            try:
                if self.timeline is not None and step.get("expect") != "rebooted":
                    left = n                # the same minute ticks, sampled every chunk_min
                    while left > 0:
                        chunk = min(left, self.timeline.chunk_min)
                        p.advance(chunk)
                        left -= chunk
                        if left:
                            self.timeline.sample(p)
                else:
                    p.advance(n)
                if step.get("expect") == "rebooted":
                    self.fail(i, step, "the board did not reboot")
            except BoardRebooted:
                if step.get("expect") != "rebooted":
                    raise
                p.hello()
            self.result.sim_min += n
        elif "fault" in step:
            value = step.get("value", 0)
            if "outage" in step:
                value = -1 if step["outage"] == "unknown" else minutes(step["outage"])
            if "after_bytes" in step:
                value = int(step["after_bytes"])
            self.expect_status(i, step, p.inject_fault(step["fault"], value), step.get("expect", "OK"))
        elif "check" in step:
            self.check(i, step)
        elif "events" in step or "no_events" in step:
            self.events(i, step)
        elif "save" in step:
            s = p.status()
            for name, fld in step["save"].items():
                self.names[name] = s[fld]
        else:
            raise ScenarioError("unknown step %r" % step)


def run(pump: Pump, sc: Scenario, reset: bool = True, timeline: Timeline | None = None) -> Result:
    """Run one scenario; a simulated board is reset to a fresh pump first. With a timeline
    (hil.plot.Timeline), STATUS is also sampled before the first step, after every step and
    every timeline.chunk_min minutes of a long advance (the same simulated minutes either way)."""
    result = Result(sc)
    t0 = time.monotonic()
    try:
        run = _Run(pump, sc, result, timeline)
        if reset:
            if pump.info.get("build") == "sim":
                pump.reset()
            elif pump.status()["mode"] != k.MODE_NO_PATIENT:
                raise ScenarioError("the pump has a patient and is not a simulation build: "
                                    "scenarios need a fresh pump")
        if timeline is not None:
            timeline.sample(pump)
        for i, step in enumerate(sc.steps):
            run.step(i, step)
            result.steps_run = i + 1
            if timeline is not None:
                timeline.sample(pump)
    except (ScenarioError, PumpError, BoardRebooted, KeyError, ValueError) as exc:
        result.failures.append("step %d: %s: %s" % (result.steps_run + 1, type(exc).__name__, exc))
    result.wall_s = time.monotonic() - t0
    return result


def run_all(pump: Pump, scenarios: list[Scenario], timelines: dict[str, Timeline] | None = None) -> list[Result]:
    """Run each scenario; with a `timelines` dict, also record a hil.plot.Timeline per scenario id."""
    if timelines is None:
        return [run(pump, sc) for sc in scenarios]
    from blinpump.hil.plot import Timeline
    results = []
    for sc in scenarios:
        timelines[sc.id] = Timeline()
        results.append(run(pump, sc, timeline=timelines[sc.id]))
    return results


# ---------------------------------------------------------------- a whole course

def run_course(pump: Pump, indication: str = "rr", weight_kg: float = 70.0, bsa_m2: float | None = None,
               bag_hours: int = 168, cycles: int | None = None) -> dict[str, Any]:
    """Plan a course with model.planner and give it over serial in fast-forward (all of it, or
    its first `cycles` cycles), treatment-free intervals included.

    Returns what was planned and what the pump recorded. Bags are `bag_hours` long at the
    planned daily dose; every cycle start and the R/R step-up are acknowledged (L2-premed).
    OK means the pump recorded exactly the planned dose and is where the plan says: the course
    done (L2.x-course), or the cycle after the last one given.
    """
    from blinpump.model.planner import plan_course
    spec = {"indication": indication, "weight_kg": weight_kg, "bsa_m2": bsa_m2}
    patient = _patient(spec)
    names = model_names(spec)
    course = plan_course(patient, cycles)
    if pump.info.get("build") == "sim":
        pump.reset()
    t0 = time.monotonic()
    st = pump.setup(PATIENT_ID, names["indication"], names["weight_g"], names["bsa_cm2"])
    if not st.ok:
        raise ScenarioError("setup refused: %r" % st)
    planned_ng = 0
    days_per_bag = bag_hours // 24
    for cyc in course.cycles:
        for dose in cyc.doses:
            day = dose.first_day
            while day <= dose.last_day:
                days = min(days_per_bag, dose.last_day - day + 1)
                hours = days * 24
                st = pump.bag(PATIENT_ID, dose.ng_per_day * days, DEFAULT_VOLUME_ML * 1000, hours,
                              1 if hours >= 72 else 0, 0, 0)
                pump.ack(k.ACK_PREMED)
                pump.ack(k.ACK_SUPERVISION)
                st2 = pump.start()
                if not (st.ok and st2.ok):
                    raise ScenarioError("cycle %d day %d: bag %r, start %r" % (cyc.number, day, st, st2))
                pump.advance(days * 1440)
                planned_ng += dose.ng_per_day * days
                day += days
        pump.advance(cyc.treatment_free_days * 1440)
    s = pump.status()
    return {"indication": indication, "weight_kg": weight_kg, "cycles": len(course.cycles),
            "days": sum(c.infusion_days + c.treatment_free_days for c in course.cycles),
            "planned_ng": planned_ng, "course_ng": s["course_ng"], "phase": s["phase"],
            "cycle": s["cycle"], "wall_s": time.monotonic() - t0,
            "ok": s["course_ng"] == planned_ng and (
                s["phase"] == k.PHASE_DONE if cycles is None else s["cycle"] == cycles + 1)}


# ---------------------------------------------------------------- reports

def table(results: list[Result]) -> str:
    rows = [("result", "scenario", "clauses", "steps", "sim days", "wall s")]
    for r in results:
        rows.append(("PASS" if r.ok else "FAIL", r.scenario.id, " ".join(r.scenario.clauses),
                     "%d/%d" % (r.steps_run, len(r.scenario.steps)), "%.1f" % (r.sim_min / 1440),
                     "%.2f" % r.wall_s))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    for r in results:
        for f in r.failures:
            lines.append("  %s: %s" % (r.scenario.id, f))
    return "\n".join(lines)


def write_junit(results: list[Result], path: str | Path, suite: str = "blinpump.hil") -> None:
    failures = sum(not r.ok for r in results)
    total = sum(r.wall_s for r in results)
    out = ['<?xml version="1.0" encoding="utf-8"?>',
           '<testsuite name=%s tests="%d" failures="%d" errors="0" time="%.3f">'
           % (quoteattr(suite), len(results), failures, total)]
    for r in results:
        out.append('  <testcase classname=%s name=%s time="%.3f">'
                   % (quoteattr("hil.scenarios"), quoteattr(r.scenario.test_id), r.wall_s))
        if not r.ok:
            msg = "\n".join(r.failures)
            out.append('    <failure message=%s>%s</failure>' % (quoteattr(r.failures[0]), _xml_text(msg)))
        out.append("  </testcase>")
    out.append("</testsuite>")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(out) + "\n")


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def event_code(name: str) -> int:
    return int(_EVENT_CODES[name])
