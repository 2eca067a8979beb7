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

A scenario is checked in full when it is loaded, before any pump is touched: its keys and their
types, every step's kind and arguments, names, statuses, alarms, events and status fields, and
every expression. A broken file raises ScenarioError naming the file, the field as a JSON path
with 0-based step indexes and the reason, e.g. `x.json: field=steps[3].advance: ...`. Bounds:
- a duration (advance, outage, room, fridge) is 0 to 400 days (MAX_DURATION_MIN): a course is at
  most 9 cycles of 84 days, and one step longer than 400 days is a typing slip (7000d for 70d);
- an integer, typed or in an expression, fits the pump's 32-bit frames (|n| < 2**31), and so
  does every argument sent; an expression is at most 200 characters and 32 operators deep, its
  values never beyond 2**62, and a division by zero is an error, not a crash.
"""
from __future__ import annotations

import ast
import json
import keyword
import operator
import os
import queue
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

from blinpump.firmware import codes, journal
from blinpump.firmware import kernel as k
from blinpump.firmware import protocol as P
from blinpump.hil.client import EVENT_NAMES, FAULT_KINDS, BoardRebooted, LinkError, Pump, PumpError, Status, status_code

if TYPE_CHECKING:
    from blinpump.hil.plot import Timeline

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
PATIENT_ID = 4242
# EXT-rates: a bag is prepared with an overfill (it primes the line); by default a scenario's bag
# holds 9/8 of what it infuses (a 24 h bag: 270 mL for 240 mL infused at 10 mL/h)
OVERFILL_NUM, OVERFILL_DEN = 9, 8

_WORDS = {"no_patient": k.MODE_NO_PATIENT, "stopped": k.MODE_STOPPED, "running": k.MODE_RUNNING,
          "infusion": k.PHASE_INFUSION, "free": k.PHASE_FREE, "done": k.PHASE_DONE}
_ALARMS = {n[3:]: v for n, v in vars(k).items() if n.startswith("AL_")}
_STOPS = {n[5:].lower(): v for n, v in vars(k).items() if n.startswith("STOP_")}
_REACTIONS = {n[3:].lower(): v for n, v in vars(k).items() if n.startswith("RX_") and n != "RX_NONE"}
_ACKS = {"premed": k.ACK_PREMED, "supervision": k.ACK_SUPERVISION}
_EVENT_CODES = {v: c for c, v in EVENT_NAMES.items()}
_NO_ARG = ("start", "overdose", "flush", "remove_bag", "clear_fault", "end_therapy")
_SCALES = {"ctcae": k.SCALE_CTCAE, "astct": k.SCALE_ASTCT}

MAX_DURATION_MIN = 400 * 1440   # one advance, outage, room or fridge time: at most 400 days
INT32_MIN, INT32_MAX = -2 ** 31, 2 ** 31 - 1    # what a frame carries (docs/protocol.md)
MAX_EXPR_CHARS = 200
MAX_EXPR_DEPTH = 32
MAX_VALUE = 2 ** 62             # no intermediate value of an expression goes beyond this
_MAX_DURATION_CHARS = 32
# the arguments each command step takes besides "do" and "expect" (Runner.command)
_COMMAND_KEYS: dict[str, tuple[str, ...]] = {
    "setup": (), "bag": ("ng_per_day", "hours", "preservative", "patient_id", "volume_ml", "rate_ml_per_h",
                         "room", "fridge", "bag_id"),
    "stop": ("reason",), "ack": ("what",), "ack_alarm": ("bits",), "reaction": ("kind", "grade", "scale"),
    "resolved": ("kind",), "decide": ("discontinue",), "cycle_decision": ("new_cycle",),
    "update_patient": ("weight_kg", "bsa_m2"), **{name: () for name in _NO_ARG}}
_STEP_KEYS = {"do": None, "advance": ("advance", "expect"),
              "fault": ("fault", "outage", "after_bytes", "value", "expect"), "check": ("check",), "events": ("events", "no_events"), "no_events": ("events", "no_events"),
              "save": ("save",)}
_SCENARIO_KEYS = ("id", "title", "clauses", "patient", "steps")
_PATIENT_KEYS = ("indication", "weight_kg", "bsa_m2", "patient_id")


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
    board: str = ""                 # the board it ran on, when several run at once (run_boards)

    @property
    def ok(self) -> bool:
        return not self.failures


class ScenarioError(Exception):
    """A scenario that cannot be run as written. Raised by load() naming the file and the field
    (`x.json: field=steps[3].advance: ...`), and while running for what only the pump can show."""


def _bad(path: Path | str | None, field: str, message: str) -> ScenarioError:
    where = "%s: " % path if path else ""
    return ScenarioError("%sfield=%s: %s" % (where, field, " ".join(message.split())))


def load(path: str | Path) -> Scenario:
    """Read and check a scenario file; ScenarioError (file, field, reason) if it is broken."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise _bad(path, "file", "cannot read it (%s)" % (exc.strerror or exc)) from None
    except (ValueError, RecursionError) as exc:     # not UTF-8, not JSON, nested beyond the parser
        raise _bad(path, "file", "not a JSON scenario (%s)" % (str(exc).splitlines()[0] if str(exc)
                                                                 else type(exc).__name__)) from None
    if not isinstance(data, dict):
        raise _bad(path, "file", "holds %s, not a scenario object {id, title, clauses, patient, steps}"
                   % _json_type(data))
    for key in _SCENARIO_KEYS:
        if key not in data:
            raise _bad(path, key, "missing")
    for key in data:
        if key not in _SCENARIO_KEYS:
            raise _bad(path, _short(key), "unknown key (a scenario has %s)" % ", ".join(_SCENARIO_KEYS))
    for key in ("id", "title"):
        if not isinstance(data[key], str) or not data[key].strip():
            raise _bad(path, key, "%s is not a non-empty string" % _show(data[key]))
    clauses = data["clauses"]
    if not isinstance(clauses, list) or not clauses:
        raise _bad(path, "clauses", "%s is not a non-empty list of clause IDs (LABEL.md)" % _show(clauses))
    for i, c in enumerate(clauses):
        if not isinstance(c, str) or not c.strip() or c != c.strip():
            raise _bad(path, "clauses[%d]" % i, "%s is not a clause ID (LABEL.md)" % _show(c))
    sc = Scenario(data["id"], data["title"], list(clauses), data["patient"], data["steps"], path)
    validate(sc)
    return sc


def _json_type(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(v), type(v).__name__)


def _show(v: Any) -> str:
    """A JSON value for a message, cut short."""
    try:
        text = json.dumps(v)
    except (TypeError, ValueError):
        text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _short(key: str) -> str:
    return key if len(key) <= 40 else key[:37] + "..."


def standard(names: list[str] | None = None) -> list[Scenario]:
    """The standard library (hil/scenarios/*.json), or those whose id, file stem or clause is named."""
    found = [load(p) for p in sorted(SCENARIO_DIR.glob("*.json"))]
    if not names:
        return found
    out = []
    for name in names:
        if Path(name).suffix == ".json" and (os.path.lexists(name) or os.sep in name):
            out.append(load(name))      # a file by path (load names it if it cannot be read)
            continue
        hits = [s for s in found if name in (s.id, s.path.stem if s.path else "") or name in s.clauses]
        if not hits:
            raise _bad(None, "SCENARIO", "no scenario %r (have: %s)" % (name, ", ".join(s.id for s in found)))
        out.extend(h for h in hits if h not in out)
    return out


# ---------------------------------------------------------------- names from model/

def enforced_clauses() -> list[str]:
    """The clause references in the kernel's source (firmware/kernel.py): IDs, and families as
    cited (`L2.6-bag-*`, `L2.x-course`), in model.label's one pattern of a clause reference."""
    from blinpump.model.label import CLAUSE_REF
    src = (Path(k.__file__).resolve().parent / "kernel.py").read_text()
    return sorted({m.group(1) for m in CLAUSE_REF.finditer(src)})


def clauses_without_scenario(scs: list[Scenario]) -> list[str]:
    """The kernel's clause references that no scenario of `scs` names (a family is covered by any
    of its members)."""
    from blinpump.model.label import clause_members
    named = sorted({c for sc in scs for c in sc.clauses})
    return [c for c in enforced_clauses() if not set(clause_members(c, named)) & set(named)]


def listing(scs: list[Scenario]) -> str:
    """`blinpump bench --list`: each scenario's id, clauses, steps and what it checks."""
    rows = ["%-28s %-5s %-52s %s" % ("scenario", "steps", "clauses", "what it checks")]
    for sc in scs:
        rows.append("%-28s %-5d %-52s %s" % (sc.id, len(sc.steps), " ".join(sc.clauses), sc.title))
    missing = clauses_without_scenario(standard())
    rows.append("%d scenarios; clauses the kernel enforces without a standard scenario: %s"
                % (len(scs), ", ".join(missing) or "none"))
    return "\n".join(rows)


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
        # L2.3-course: the site's count goes to set-up for consolidation; MRD+ and R/R send 0
        "course_cycles": lim.max_cycles if p.indication == "consolidation" else 0,
    }
    for hours, room in limits.BAG_ROOM_MIN.items():
        names["rate_ul_per_h_%d" % hours] = table_rate_ul_per_h(hours)     # EXT-rates: the labelled rate
        names["room_limit_min_%d" % hours] = room
        names["fridge_limit_min_%d" % hours] = limits.BAG_FRIDGE_MIN[hours]
    for n, days in enumerate(lim.treatment_free_days, 1):
        names["free_days_%d" % n] = days
    names.update(_WORDS)
    # the kernel's status names, for a check of `start_status` (what START would answer now)
    names.update({entry[0]: code for code, entry in codes.STATUS.items() if entry[0].startswith("E_")})
    return names


_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv}
_COMPARE = re.compile(r"^\s*(==|!=|<=|>=|<|>)\s*(.+)$")
_CMP = {"==": operator.eq, "!=": operator.ne, "<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


def _literal(v: Any, what: str = "integer") -> int:
    """v if it is a JSON integer a frame can carry (true, 1.0 and "1" are not)."""
    if type(v) is not int:
        raise ScenarioError("%s is not an %s" % (_show(v), what))
    if not INT32_MIN <= v <= INT32_MAX:
        raise ScenarioError("%s is out of range [%d, %d]" % (_show(v), INT32_MIN, INT32_MAX))
    return v


def _parse(expr: str) -> ast.AST:
    if len(expr) > MAX_EXPR_CHARS:
        raise ScenarioError("expression longer than %d characters" % MAX_EXPR_CHARS)
    try:
        return ast.parse(expr, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise ScenarioError("not an integer expression: %s (%s)" % (_show(expr), getattr(exc, "msg", None)
                                                                    or type(exc).__name__)) from None


def _names(tree: ast.AST, expr: str, known: set[str] | dict[str, int]) -> set[str]:
    """The names an expression uses; ScenarioError if it is not integer arithmetic (+ - * //)
    over integer literals and known names, at most MAX_EXPR_DEPTH deep."""
    used: set[str] = set()

    def walk(node: ast.AST, depth: int) -> None:
        if depth > MAX_EXPR_DEPTH:
            raise ScenarioError("expression nested deeper than %d: %s" % (MAX_EXPR_DEPTH, _show(expr)))
        if isinstance(node, ast.Expression):
            walk(node.body, depth)
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            _literal(node.value)
        elif isinstance(node, ast.Name):
            if node.id not in known:
                raise ScenarioError("unknown name %r in %s" % (node.id, _show(expr)))
            used.add(node.id)
        elif isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            walk(node.left, depth + 1)
            walk(node.right, depth + 1)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            walk(node.operand, depth + 1)
        else:
            raise ScenarioError("not an integer expression (+ - * // over integers and names): %s" % _show(expr))
    walk(tree, 0)
    return used


def _value(tree: ast.AST, expr: str, names: dict[str, int]) -> int:
    def ev(node: ast.AST) -> int:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant):
            return int(node.value)
        if isinstance(node, ast.Name):
            v = names[node.id]
        elif isinstance(node, ast.BinOp):
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.FloorDiv) and right == 0:
                raise ScenarioError("division by zero in %s" % _show(expr))
            v = int(_BINOPS[type(node.op)](left, right))
        else:
            v = -ev(node.operand)       # type: ignore[attr-defined]   (_names allows nothing else)
        if abs(v) > MAX_VALUE:
            raise ScenarioError("value beyond 2**62 in %s" % _show(expr))
        return int(v)
    return ev(tree)


def evaluate(expr: str | int, names: dict[str, int]) -> int:
    """Integer arithmetic (+ - * //) over names; nothing else is accepted (ScenarioError)."""
    if not isinstance(expr, str):
        return _literal(expr, "integer expression")
    tree = _parse(expr)
    _names(tree, expr, names)
    return _value(tree, expr, names)


def _split_spec(spec: Any) -> tuple[str, str | int]:
    if isinstance(spec, str):
        m = _COMPARE.match(spec)
        if m:
            return m.group(1), m.group(2)
    return "==", spec


def check_value(actual: int, spec: str | int, names: dict[str, int]) -> str | None:
    """None if `actual` meets `spec`, else what was expected."""
    op, expr = _split_spec(spec)
    want = evaluate(expr, names)
    return None if _CMP[op](actual, want) else "%s %d (%s)" % (op, want, spec)


def minutes(text: str | int) -> int:
    """'7d', '5h', '30m', '1d12h' (or an integer of minutes) -> minutes, 0 to MAX_DURATION_MIN."""
    if type(text) is int:
        n = text
    elif isinstance(text, str) and len(text) <= _MAX_DURATION_CHARS:
        parts = re.findall(r"(\d+)\s*([dhm])", text)
        if not parts or "".join(n + u for n, u in parts) != re.sub(r"\s", "", text):
            raise ScenarioError("bad duration %s (use e.g. 7d, 5h, 30m)" % _show(text))
        n = sum(int(v) * {"d": 1440, "h": 60, "m": 1}[u] for v, u in parts)
    else:
        raise ScenarioError("bad duration %s (use e.g. 7d, 5h, 30m)" % _show(text))
    if n < 0:
        raise ScenarioError("negative duration %s" % _show(text))
    if n > MAX_DURATION_MIN:
        raise ScenarioError("duration %s is more than 400 days" % _show(text))
    return n


# ---------------------------------------------------------------- checking a whole scenario

def validate(sc: Scenario) -> None:
    """Check every part of a scenario that can be checked without a pump; ScenarioError naming
    the file and the field otherwise. Names saved by a save step are known from that step on;
    an expression over model names only is also evaluated (a division by zero shows here)."""
    path = sc.path
    names = _check_patient(sc.patient, path)
    model = set(names)
    saved: set[str] = set()
    if not isinstance(sc.steps, list) or not sc.steps:
        raise _bad(path, "steps", "%s is not a non-empty list of steps" % _show(sc.steps))
    for i, step in enumerate(sc.steps):
        _check_step(step, "steps[%d]" % i, names, model, saved, path)


def _check_patient(patient: Any, path: Path | None) -> dict[str, int]:
    if not isinstance(patient, dict):
        raise _bad(path, "patient", "%s is not an object {indication, weight_kg, bsa_m2}" % _show(patient))
    for key in patient:
        if key not in _PATIENT_KEYS:
            raise _bad(path, "patient.%s" % _short(key), "unknown key (a patient has %s)" % ", ".join(_PATIENT_KEYS))
    for key in ("indication", "weight_kg"):
        if key not in patient:
            raise _bad(path, "patient.%s" % key, "missing")
    if not isinstance(patient["indication"], str):
        raise _bad(path, "patient.indication", "%s is not a string (mrd, rr, consolidation)"
                   % _show(patient["indication"]))
    for key in ("weight_kg", "bsa_m2"):
        v = patient.get(key)
        if (v is not None or key == "weight_kg") and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise _bad(path, "patient.%s" % key, "%s is not a number" % _show(v))
    if "patient_id" in patient:
        try:
            pid = _literal(patient["patient_id"])
        except ScenarioError as exc:
            raise _bad(path, "patient.patient_id", str(exc)) from None
        if not 0 <= pid <= 1000000000:
            raise _bad(path, "patient.patient_id", "%d is not in [0, 1000000000]" % pid)
    from blinpump.model.errors import ModelError
    try:
        return model_names(patient)
    except ModelError as err:
        raise ScenarioError("%s: field=patient.%s clause=%s: %s" % (path, err.field, err.clause, err.message)) from None
    except OverflowError as exc:                    # a JSON integer of 400 digits as a weight
        raise _bad(path, "patient", str(exc)) from None


def _check_step(step: Any, where: str, names: dict[str, int], model: set[str], saved: set[str],
                path: Path | None) -> None:
    if not isinstance(step, dict):
        raise _bad(path, where, "%s is not a step object" % _show(step))
    kinds = [key for key in _STEP_KEYS if key in step and not (key == "no_events" and "events" in step)]
    if len(kinds) != 1:
        raise _bad(path, where, "%s: a step is exactly one of do, advance, fault, check, events/no_events, save"
                   % ("no kind" if not kinds else "several kinds (%s)" % ", ".join(kinds)))
    kind = kinds[0]

    def field(name: str) -> str:
        return "%s.%s" % (where, name)

    def sub(name: str, fn: Any, *args: Any) -> Any:
        """fn(*args), its ScenarioError named after the step's field `name`."""
        try:
            return fn(*args)
        except ScenarioError as exc:
            raise _bad(path, field(name), str(exc)) from None

    known = names.keys() | saved

    def expression(name: str, spec: Any, comparison: bool = False) -> None:
        op, expr = _split_spec(spec) if comparison else ("==", spec)
        if not isinstance(expr, str):
            sub(name, _literal, expr)
            return
        tree = sub(name, _parse, expr)
        used = sub(name, _names, tree, expr, known)
        if used <= model:
            sub(name, _value, tree, expr, names)

    allowed = _STEP_KEYS[kind]
    if kind == "do":
        command = step["do"]
        if not isinstance(command, str) or command not in _COMMAND_KEYS:
            raise _bad(path, field("do"), "unknown command %s (%s)" % (_show(command), ", ".join(_COMMAND_KEYS)))
        allowed = ("do", "expect") + _COMMAND_KEYS[command]
    for key in step:
        if key not in allowed:
            raise _bad(path, field(_short(key)), "unknown key for a %s step (%s)" % (kind, ", ".join(allowed)))
    if "expect" in step:
        want = step["expect"]
        if kind == "advance":
            if want != "rebooted":
                raise _bad(path, field("expect"), "%s: an advance expects only \"rebooted\"" % _show(want))
        elif not (want == "model" and step.get("do") == "bag"):
            if type(want) is int:
                if want not in codes.STATUS and want not in P.ERRORS:
                    raise _bad(path, field("expect"), "%d is not a status code" % want)
            elif not isinstance(want, str):
                raise _bad(path, field("expect"), "%s is not a status name" % _show(want))
            else:
                try:
                    status_code(want)
                except KeyError:
                    raise _bad(path, field("expect"), "unknown status %s (firmware/codes.py%s)"
                               % (_show(want), ", or \"model\"" if step.get("do") == "bag" else "")) from None

    if kind == "do":
        command = step["do"]
        if command == "bag":
            for key in ("ng_per_day", "hours"):
                if key not in step:
                    raise _bad(path, field(key), "missing (a bag needs ng_per_day and hours)")
            expression("ng_per_day", step["ng_per_day"])
            hours = sub("hours", _literal, step["hours"])
            if not 0 <= hours <= MAX_DURATION_MIN // 60:
                raise _bad(path, field("hours"), "%d is not in [0, %d]" % (hours, MAX_DURATION_MIN // 60))
            if "preservative" in step and (type(step["preservative"]) not in (int, bool)
                                           or step["preservative"] not in (0, 1)):
                raise _bad(path, field("preservative"), "%s is not 0, 1, true or false" % _show(step["preservative"]))
            if "patient_id" in step:
                sub("patient_id", _literal, step["patient_id"])
            for key in ("volume_ml", "rate_ml_per_h"):
                if key in step:
                    ml = step[key]
                    if type(ml) not in (int, float) or not 0 <= ml <= INT32_MAX // 1000:
                        raise _bad(path, field(key), "%s is not a number in [0, %d]" % (_show(ml), INT32_MAX // 1000))
            for key in ("room", "fridge"):
                if key in step:
                    sub(key, minutes, step[key])
            if "bag_id" in step and step["bag_id"] != "last":
                bag_id = sub("bag_id", _literal, step["bag_id"])
                if not 0 <= bag_id <= INT32_MAX:
                    raise _bad(path, field("bag_id"), "%d is not in [0, %d] (or \"last\")" % (bag_id, INT32_MAX))
        elif command == "stop" and "reason" in step and not _member(step["reason"], _STOPS):
            raise _bad(path, field("reason"), "unknown stop reason %s (%s)"
                       % (_show(step["reason"]), ", ".join(_STOPS)))
        elif command == "ack" and not _member(step.get("what"), _ACKS):
            raise _bad(path, field("what"), "%s is not one of %s" % (_show(step.get("what")), ", ".join(_ACKS)))
        elif command == "ack_alarm" and "bits" in step and step["bits"] != "all":
            _alarm_list(step["bits"], field("bits"), path)
        elif command == "reaction":
            if not _member(step.get("kind"), _REACTIONS):
                raise _bad(path, field("kind"), "%s is not one of %s"
                           % (_show(step.get("kind")), ", ".join(_REACTIONS)))
            if "grade" not in step:
                raise _bad(path, field("grade"), "missing")
            sub("grade", _literal, step["grade"])
            if "scale" in step and not _member(step["scale"], _SCALES):
                raise _bad(path, field("scale"), "%s is not one of %s" % (_show(step["scale"]), ", ".join(_SCALES)))
        elif command == "resolved":
            if not _member(step.get("kind"), _REACTIONS):
                raise _bad(path, field("kind"), "%s is not one of %s"
                           % (_show(step.get("kind")), ", ".join(_REACTIONS)))
        elif command == "cycle_decision":
            if "new_cycle" not in step:
                raise _bad(path, field("new_cycle"), "missing")
            sub("new_cycle", _literal, step["new_cycle"])
        elif command == "update_patient":
            if "weight_kg" not in step:
                raise _bad(path, field("weight_kg"), "missing")
            for key in ("weight_kg", "bsa_m2"):
                if key in step and (type(step[key]) not in (int, float) or not 0 <= step[key] <= 1000):
                    raise _bad(path, field(key), "%s is not a number in [0, 1000]" % _show(step[key]))
        elif command == "decide":
            if "discontinue" not in step:
                raise _bad(path, field("discontinue"), "missing")
            sub("discontinue", _literal, step["discontinue"])
    elif kind == "advance":
        sub("advance", minutes, step["advance"])
    elif kind == "fault":
        fault = step["fault"]
        if not (isinstance(fault, str) and fault in FAULT_KINDS) and type(fault) is not int:
            raise _bad(path, field("fault"), "unknown fault %s (%s)" % (_show(fault), ", ".join(FAULT_KINDS)))
        if type(fault) is int:
            sub("fault", _literal, fault)
        if "outage" in step and step["outage"] != "unknown":
            sub("outage", minutes, step["outage"])
        if "after_bytes" in step:
            n = sub("after_bytes", _literal, step["after_bytes"])
            if n < 0:
                raise _bad(path, field("after_bytes"), "%d is negative" % n)
        if "value" in step:
            sub("value", _literal, step["value"])
    elif kind == "check":
        spec = step["check"]
        if not isinstance(spec, dict) or not spec:
            raise _bad(path, field("check"), "%s is not an object {FIELD: SPEC}" % _show(spec))
        for name, want in spec.items():
            if name in ("alarm_on", "alarm_off"):
                _alarm_list(want, field("check.%s" % name), path)
            elif name not in P.STATUS_FIELDS:
                raise _bad(path, field("check.%s" % _short(name)),
                           "not a STATUS field (firmware/protocol.py STATUS_FIELDS)")
            else:
                expression("check.%s" % name, want, comparison=True)
    elif kind in ("events", "no_events"):
        for key in ("events", "no_events"):
            if key in step:
                evs = step[key]
                if not isinstance(evs, list):
                    raise _bad(path, field(key), "%s is not a list of event names" % _show(evs))
                for j, name in enumerate(evs):
                    if not _member(name, _EVENT_CODES):
                        raise _bad(path, field("%s[%d]" % (key, j)), "unknown event %s (%s)"
                                   % (_show(name), ", ".join(sorted(_EVENT_CODES))))
    elif kind == "save":
        spec = step["save"]
        if not isinstance(spec, dict) or not spec:
            raise _bad(path, field("save"), "%s is not an object {NAME: STATUS field}" % _show(spec))
        for name, fld in spec.items():
            if not name.isidentifier() or keyword.iskeyword(name) or len(name) > 40:
                raise _bad(path, field("save.%s" % _short(name)), "not a name an expression can use")
            if name in names:
                raise _bad(path, field("save.%s" % name), "would hide the model's %r" % name)
            if not isinstance(fld, str) or fld not in P.STATUS_FIELDS:
                raise _bad(path, field("save.%s" % name), "%s is not a STATUS field" % _show(fld))
            saved.add(name)


def _member(v: Any, table: dict[str, Any]) -> bool:
    return isinstance(v, str) and v in table


def _alarm_list(bits: Any, where: str, path: Path | None) -> None:
    if not isinstance(bits, list):
        raise _bad(path, where, "%s is not a list of alarm names" % _show(bits))
    for j, name in enumerate(bits):
        if not _member(name, _ALARMS):
            raise _bad(path, "%s[%d]" % (where, j), "unknown alarm %s (%s)" % (_show(name), ", ".join(_ALARMS)))


# ---------------------------------------------------------------- running

class _Run:
    def __init__(self, pump: Pump, sc: Scenario, result: Result, timeline: Timeline | None = None) -> None:
        self.pump, self.sc, self.result = pump, sc, result
        self.timeline = timeline
        self.names = model_names(sc.patient)
        self.patient_id = int(sc.patient.get("patient_id", PATIENT_ID))
        self.mark = 0
        self.last_bag_id = 0        # bag identities of this run: each order the next, unless given

    def fail(self, i: int, step: dict[str, Any], msg: str) -> None:
        self.result.failures.append("step %d %s: %s" % (i + 1, json.dumps(step, sort_keys=True), msg))

    def expect_status(self, i: int, step: dict[str, Any], got: Status, want: str | int) -> None:
        want_code = want if isinstance(want, int) else status_code(want)
        if got != want_code:
            self.fail(i, step, "got %r, expected %s" % (got, Status(want_code).name))

    def command(self, i: int, step: dict[str, Any]) -> None:
        p, name = self.pump, step["do"]
        if name == "setup":
            st = p.setup(self.patient_id, self.names["indication"], self.names["weight_g"], self.names["bsa_cm2"],
                         self.names["course_cycles"])
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
            st = p.reaction(_REACTIONS[step["kind"]], int(step["grade"]), _SCALES[step.get("scale", "ctcae")])
        elif name == "resolved":
            st = p.resolved(_REACTIONS[step["kind"]])
        elif name == "decide":
            st = p.decide(int(step["discontinue"]))
        elif name == "cycle_decision":
            st = p.cycle_decision(int(step["new_cycle"]))
        elif name == "update_patient":
            body = model_names({**self.sc.patient, "weight_kg": step["weight_kg"], "bsa_m2": step.get("bsa_m2")})
            st = p.update_patient(body["weight_g"], body["bsa_cm2"])
            if st.ok:
                self.names.update(body)     # the caps of the new values (L2-dose-28)
        else:
            raise ScenarioError("unknown command %r" % name)
        self.expect_status(i, step, st, step.get("expect", "OK"))

    def bag_args(self, step: dict[str, Any]) -> list[int]:
        hours = int(step["hours"])
        ng_per_day = evaluate(step["ng_per_day"], self.names)
        preservative = step.get("preservative", standard_preservative(hours))
        given = step.get("bag_id")
        bag_id = self.last_bag_id if given == "last" else self.last_bag_id + 1 if given is None else int(given)
        self.last_bag_id = max(self.last_bag_id, bag_id)
        rate_ul = round(step["rate_ml_per_h"] * 1000) if "rate_ml_per_h" in step else table_rate_ul_per_h(hours)
        volume_ul = round(step["volume_ml"] * 1000) if "volume_ml" in step else standard_volume_ul(hours, rate_ul)
        args = [int(step.get("patient_id", self.patient_id)), bag_id,
                prepared_drug_ng(ng_per_day, hours, volume_ul, rate_ul), volume_ul, rate_ul, hours,
                int(preservative), minutes(step.get("room", 0)), minutes(step.get("fridge", 0))]
        for name, v in zip(("patient_id", "bag_id", "drug_ng", "volume_ul", "rate_ul_per_h", "duration_h",
                            "preservative", "room_min", "fridge_min"), args):
            if not INT32_MIN <= v <= INT32_MAX:
                raise ScenarioError("bag %s %d does not fit a frame (32 bits)" % (name, v))
        return args

    def expect_model_bag(self, i: int, step: dict[str, Any], got: Status, args: list[int]) -> None:
        """The pump must accept exactly the bags model/ accepts, and cite the model's clause otherwise."""
        from blinpump.model.errors import ModelError
        from blinpump.model.orders import BagOrder, validate_bag
        s = self.pump.status()
        patient = _patient(self.sc.patient)
        order = BagOrder(args[2] / 1000, args[3] / 1000, args[4] / 1000, args[5], bool(args[6]), args[7] / 60,
                         args[8] / 60)
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
        simulated = pump.info.get("build") == "sim"
        if not simulated and needs_simulation(sc):
            # never start therapy on a pump for a scenario that cannot finish there
            raise ScenarioError("it needs a simulation build (time warp or fault injection: ADVANCE, "
                                "FAULT); this pump runs a %s build" % pump.info.get("build"))
        if reset:
            if simulated:
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
    if result.failures and pump.info.get("build") != "sim":
        _stop_if_infusing(pump, result)
    result.wall_s = time.monotonic() - t0
    return result


def _stop_if_infusing(pump: Pump, result: Result) -> None:
    """A failed scenario never leaves a pump infusing: a clinician's STOP (logged), said so."""
    try:
        if pump.status()["mode"] == k.MODE_RUNNING:
            st = pump.stop()
            result.failures.append("the pump was left infusing: stopped (STOP, logged): %r" % st)
    except (PumpError, BoardRebooted, LinkError) as exc:
        result.failures.append("the pump may be infusing: could not stop it: %s" % exc)


def needs_simulation(sc: Scenario) -> bool:
    """True if the scenario uses a simulation command (time warp or fault injection)."""
    return any("advance" in step or "fault" in step for step in sc.steps)


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


def run_boards(boards: list[tuple[str, Pump]], scs: list[Scenario],
               timelines: dict[str, Timeline] | None = None) -> list[Result]:
    """Each scenario once, on the next board that is free: one thread per board (the boards
    work at once; the host mostly waits on their serial lines). `boards` are (name, pump);
    the results come back in the order of `scs`, each with its board's name. A link that fails
    stops that board's thread and is raised once the others have finished."""
    if timelines is not None:
        from blinpump.hil.plot import Timeline
    todo: queue.Queue[tuple[int, Scenario]] = queue.Queue()
    for item in enumerate(scs):
        todo.put(item)
    results: list[Result | None] = [None] * len(scs)
    failed: list[BaseException] = []

    def work(name: str, pump: Pump) -> None:
        while not failed:
            try:
                i, sc = todo.get_nowait()
            except queue.Empty:
                return
            tl = None
            if timelines is not None:
                tl = timelines[sc.id] = Timeline()
            try:
                r = run(pump, sc, timeline=tl)
            except BaseException as exc:        # a link failure: the other boards finish theirs
                failed.append(exc)
                return
            r.board = name
            results[i] = r

    threads = [threading.Thread(target=work, args=b, name="board %s" % b[0], daemon=True) for b in boards]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failed:
        raise failed[0]
    return [r for r in results if r is not None]


def results_json(results: list[Result]) -> list[dict[str, Any]]:
    """`blinpump bench --results`: one object per scenario run."""
    return [{"scenario": r.scenario.id, "clauses": r.scenario.clauses, "board": r.board, "ok": r.ok,
             "failures": r.failures, "steps_run": r.steps_run, "steps": len(r.scenario.steps),
             "sim_min": r.sim_min, "wall_s": round(r.wall_s, 3)} for r in results]


# ---------------------------------------------------------------- bags as prepared

def table_rate_ul_per_h(hours: int) -> int:
    """EXT-rates: the site's rate for a bag of this duration (the model's table, in uL/h); 0 if none."""
    from blinpump.model.label import DEFAULT_EXT
    try:
        return int(DEFAULT_EXT.bag_rate_ml_per_h(hours) * 1000)
    except KeyError:
        return 0


def standard_volume_ul(hours: int, rate_ul_per_h: int | None = None) -> int:
    """A bag as a scenario prepares it: OVERFILL_NUM / OVERFILL_DEN of what it infuses at its rate
    (the table rate unless another is given)."""
    rate = table_rate_ul_per_h(hours) if rate_ul_per_h is None else rate_ul_per_h
    return rate * hours * OVERFILL_NUM // OVERFILL_DEN


def standard_preservative(hours: int) -> int:
    """L2.5-durations: 24 and 48 h bags are preservative-free, 72 h and longer have preservative."""
    return 1 if hours >= 72 else 0


def prepared_bag(ng_per_day: int, hours: int) -> tuple[int, int, int, int]:
    """(drug_ng, volume_ul, rate_ul_per_h, preservative) of a bag prepared for `ng_per_day` over
    `hours`: the site's rate, the standard overfill, its preservative (EXT-rates, L2.5-durations)."""
    rate = table_rate_ul_per_h(hours)
    volume = standard_volume_ul(hours)
    return prepared_drug_ng(ng_per_day, hours, volume, rate), volume, rate, standard_preservative(hours)


def prepared_drug_ng(ng_per_day: int, hours: int, volume_ul: int, rate_ul_per_h: int) -> int:
    """The drug to put in a bag of `volume_ul` so that it delivers `ng_per_day` at its rate: the
    daily dose times the bag volume over the volume infused per day (EXT-rates), rounded down (the
    pump rounds the daily rate up, so it records exactly ng_per_day)."""
    per_day_ul = rate_ul_per_h * 24
    if per_day_ul <= 0:
        return ng_per_day * hours // 24
    return ng_per_day * volume_ul // per_day_ul


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
    st = pump.setup(PATIENT_ID, names["indication"], names["weight_g"], names["bsa_cm2"], names["course_cycles"])
    if not st.ok:
        raise ScenarioError("setup refused: %r" % st)
    planned_ng = 0
    bag_id = 0                  # identities of the course's bags, increasing (pharmacy labels)
    days_per_bag = bag_hours // 24
    for cyc in course.cycles:
        for dose in cyc.doses:
            day = dose.first_day
            while day <= dose.last_day:
                days = min(days_per_bag, dose.last_day - day + 1)
                hours = days * 24
                bag_id += 1
                drug_ng, volume_ul, rate_ul, preservative = prepared_bag(dose.ng_per_day, hours)
                st = pump.bag(PATIENT_ID, bag_id, drug_ng, volume_ul, rate_ul, hours, preservative, 0, 0)
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
    several = len({r.board for r in results}) > 1
    rows = [("result", "scenario", "clauses", "steps", "sim days", "wall s") + (("board",) if several else ())]
    for r in results:
        rows.append(("PASS" if r.ok else "FAIL", r.scenario.id, " ".join(r.scenario.clauses),
                     "%d/%d" % (r.steps_run, len(r.scenario.steps)), "%.1f" % (r.sim_min / 1440),
                     "%.2f" % r.wall_s) + ((r.board,) if several else ()))
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
        # one merged report: each board is a class of its own when several ran
        classname = "hil.scenarios" + ("[%s]" % r.board if r.board else "")
        out.append('  <testcase classname=%s name=%s time="%.3f">'
                   % (quoteattr(classname), quoteattr(r.scenario.test_id), r.wall_s))
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
