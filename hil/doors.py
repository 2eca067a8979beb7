"""Every door of the command line, walked with bad input (the issue "Never a traceback").

Each row of DOORS is one bad input given to one `blinpump` subcommand, run as a user runs it:
`python -m blinpump ARGS...` in a subprocess, in a folder of its own. A door passes when

- the exit status is the expected one: 2 for a bad invocation or bad input, 1 for a failed
  check or scenario, 0 where nothing is wrong to say (stdout closed by its reader);
- stderr holds no Python traceback;
- stderr is one line (argparse's own errors: its usage line(s), then one `prog: error:` line)
  that names the field (the option, or the JSON key/step as `steps[3].advance`) and, where a
  label rule refused the input, its clause ID (LABEL.md);
- a path the door must not touch (a file where `sim --link` was pointed) is still there.

    from blinpump.hil import doors
    tried, tracebacks = doors.walk_doors()          # what bench/hardening.py reports

In the arguments, `{tmp}` is the door's own folder, which holds a regular file `afile`, a folder
`adir`, a valid key file `keys.json` and the door's own files; `{pty}` is a pseudo-terminal
nobody answers on (opened for the run; a silent port costs bench BOOT_WAIT_S, about 5 s).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TIMEOUT_S = 30.0            # a door that hangs fails; the slowest (a silent port) takes about 5 s
BENCH_KEY = "00" * 32       # a syntactically valid key file for the doors that need one


@dataclass(frozen=True)
class Door:
    name: str                           # the test id
    argv: tuple[str, ...]               # after `blinpump`
    code: int                           # the expected exit status
    field: str                          # must appear in stderr ("" with code 0: stderr must be empty)
    clause: str = ""                    # a label clause ID that must appear in stderr
    files: tuple[tuple[str, str], ...] = ()     # (name in {tmp}, text) written before the run
    links: tuple[tuple[str, str], ...] = ()     # (name in {tmp}, target) symbolic links made before
    keeps: tuple[str, ...] = ()         # names in {tmp} that must still exist afterwards
    stdout_closed: bool = False         # the reader of stdout has gone before the command writes


@dataclass
class Outcome:
    door: Door
    returncode: int | None              # None: timed out
    stdout: str
    stderr: str
    problems: list[str] = field(default_factory=list)

    @property
    def traceback(self) -> bool:
        return "Traceback (most recent call last)" in self.stderr

    @property
    def ok(self) -> bool:
        return not self.problems


# ---------------------------------------------------------------- the table

def _doc(doc: dict[str, Any], top: dict[str, Any]) -> str:
    for key, value in top.items():
        if value is _DROP:
            del doc[key]
        else:
            doc[key] = value
    return json.dumps(doc)


def _scenario(*steps: Any, **top: Any) -> str:
    """A scenario file: a valid one (a set-up, then `steps`), top-level keys replaced (_DROP: removed)."""
    return _doc({"id": "door", "title": "a door", "clauses": ["EXT-pump"],
                 "patient": {"indication": "mrd", "weight_kg": 70}, "steps": [{"do": "setup"}, *steps]}, top)


_DROP = object()
_SETUP = {"entry": "setup", "args": {"patient_id": 1, "indication": 1, "weight_g": 70000, "bsa_cm2": 0,
                                     "course_cycles": 0}}


def _trace(*steps: Any, **top: Any) -> str:
    """A trace file: a valid one (property rate-cap, `steps` or a set-up), keys replaced (_DROP: removed)."""
    return _doc({"kernel": "firmware/kernel.py", "property": "rate-cap", "kind": "bmc", "initial": {},
                 "steps": list(steps) or [_SETUP]}, top)


def _setup_with(**args: Any) -> dict[str, Any]:
    return {"entry": "setup", "args": dict(_SETUP["args"], **args)}


def _bench_file(name: str, text: str, field_: str, clause: str = "") -> Door:
    return Door("bench-" + name, ("bench", "{tmp}/s.json"), 2, field_, clause, files=(("s.json", text),))


def _step(name: str, step: Any, field_: str, clause: str = "") -> Door:
    return _bench_file(name, _scenario(step), field_, clause)


def _replay(name: str, text: str, field_: str, *extra: str) -> Door:
    return Door("replay-" + name, ("replay", "{tmp}/t.json") + extra, 2, field_, files=(("t.json", text),))


# the landed kernel with one more entry point, which no command of any board reaches
_KERNEL_WITH_WARP = ((Path(__file__).resolve().parent.parent / "firmware" / "kernel.py").read_text()
                     + '\n\ndef warp(s):\n    """Not a command of any board."""\n    return OK\n')

_PLAN = ("plan", "--indication", "rr")
_CHILD = _PLAN + ("--weight-kg", "30")

DOORS: tuple[Door, ...] = (
    # ---- blinpump itself
    Door("no-subcommand", (), 2, "SUBCOMMAND"),
    Door("unknown-subcommand", ("frobnicate",), 2, "SUBCOMMAND"),

    # ---- plan: repeated options, numbers, the pump's BSA range, a closed stdout
    Door("plan-weight-twice", _PLAN + ("--weight-kg", "70", "--weight-kg", "80"), 2, "weight_kg", "L2-weight-45"),
    Door("plan-indication-twice", ("plan", "--indication", "rr", "--indication", "mrd", "--weight-kg", "70"),
         2, "indication", "L1"),
    Door("plan-bsa-twice", _CHILD + ("--bsa-m2", "1.0", "--bsa-m2", "1.2"), 2, "bsa_m2", "L2-dose-28"),
    Door("plan-cycles-twice", _PLAN + ("--weight-kg", "70", "--cycles", "1", "--cycles", "2"), 2, "cycles"),
    Door("plan-bsa-0.01", _CHILD + ("--bsa-m2", "0.01"), 2, "bsa_m2", "L2-dose-28"),
    Door("plan-bsa-below-kernel-min", _CHILD + ("--bsa-m2", "0.0499"), 2, "bsa_m2", "L2-dose-28"),
    Door("plan-bsa-3.6", _CHILD + ("--bsa-m2", "3.6"), 2, "bsa_m2", "L2-dose-28"),
    Door("plan-bsa-nan", _CHILD + ("--bsa-m2", "nan"), 2, "bsa_m2", "L2-dose-28"),
    Door("plan-bsa-zero", _CHILD + ("--bsa-m2", "0"), 2, "bsa_m2", "L2-dose-28"),
    Door("plan-weight-negative", _PLAN + ("--weight-kg=-70",), 2, "weight_kg", "L2-weight-45"),
    Door("plan-weight-nan", _PLAN + ("--weight-kg", "nan"), 2, "weight_kg", "L2-weight-45"),
    Door("plan-weight-inf", _PLAN + ("--weight-kg", "inf"), 2, "weight_kg", "L2-weight-45"),
    Door("plan-weight-1e400", _PLAN + ("--weight-kg", "1e400"), 2, "weight_kg", "L2-weight-45"),
    Door("plan-weight-word", _PLAN + ("--weight-kg", "seventy"), 2, "weight_kg", "L2-weight-45"),
    Door("plan-weight-empty", _PLAN + ("--weight-kg", ""), 2, "weight_kg", "L2-weight-45"),
    Door("plan-cycles-fraction", _PLAN + ("--weight-kg", "70", "--cycles", "1.5"), 2, "cycles", "L2.2-course"),
    Door("plan-cycles-huge", _PLAN + ("--weight-kg", "70", "--cycles", "9" * 30), 2, "cycles", "L2.2-course"),
    Door("plan-age-nan", _PLAN + ("--weight-kg", "70", "--age-years", "nan"), 2, "age_years", "L1"),
    Door("plan-height-negative", _CHILD + ("--height-cm=-1",), 2, "height_cm", "L2-dose-28"),
    Door("plan-stdout-closed", _PLAN + ("--weight-kg", "70"), 0, "", stdout_closed=True),
    Door("plan-json-stdout-closed", _PLAN + ("--weight-kg", "70", "--json"), 0, "", stdout_closed=True),
    Door("label-stdout-closed", ("label",), 0, "", stdout_closed=True),

    # ---- prove: options checked before any proof starts
    Door("prove-depth-negative", ("prove", "--depth=-1"), 2, "--depth"),
    Door("prove-depth-zero", ("prove", "--depth", "0"), 2, "--depth"),
    Door("prove-depth-million", ("prove", "--depth", "1000000"), 2, "--depth"),
    Door("prove-depth-word", ("prove", "--depth", "ten"), 2, "--depth"),
    Door("prove-witness-depth-negative", ("prove", "--witness-depth=-1"), 2, "--witness-depth"),
    Door("prove-witness-depth-million", ("prove", "--witness-depth", "1000000"), 2, "--witness-depth"),
    Door("prove-witness-depth-word", ("prove", "--witness-depth", "six"), 2, "--witness-depth"),
    Door("prove-max-k-zero", ("prove", "--max-k", "0"), 2, "--max-k"),
    Door("prove-max-k-negative", ("prove", "--max-k=-2"), 2, "--max-k"),
    Door("prove-budget-negative", ("prove", "--bmc-budget=-1"), 2, "--bmc-budget"),
    Door("prove-budget-zero", ("prove", "--bmc-budget", "0"), 2, "--bmc-budget"),
    Door("prove-budget-nan", ("prove", "--bmc-budget", "nan"), 2, "--bmc-budget"),
    Door("prove-budget-inf", ("prove", "--bmc-budget", "inf"), 2, "--bmc-budget"),
    Door("prove-max-mutants-zero", ("prove", "--mutants", "--max-mutants", "0"), 2, "--max-mutants"),
    Door("prove-max-mutants-negative", ("prove", "--mutants", "--max-mutants=-5"), 2, "--max-mutants"),
    Door("prove-workers-word", ("prove", "--mutants", "--workers", "two"), 2, "--workers"),
    Door("prove-workers-zero", ("prove", "--mutants", "--workers", "0"), 2, "--workers"),
    Door("prove-workers-too-many", ("prove", "--workers", "257"), 2, "--workers"),
    Door("prove-results-a-dir", ("prove", "--mutants", "--results", "{tmp}/adir"), 2, "--results"),
    Door("prove-results-under-a-file", ("prove", "--mutants", "--results", "{tmp}/afile/r.jsonl"), 2, "--results"),
    Door("prove-resume-without-results", ("prove", "--mutants", "--resume"), 2, "--resume"),
    Door("prove-resume-not-results", ("prove", "--mutants", "--results", "{tmp}/notes.jsonl", "--resume"), 2,
         "--results", files=(("notes.jsonl", "not verdicts\n"),)),
    Door("prove-scheduler-not-an-address", ("prove", "--mutants", "--scheduler", "localhost"), 2, "--scheduler"),
    Door("prove-scheduler-port-word", ("prove", "--mutants", "--scheduler", "tcp://localhost:port"), 2,
         "--scheduler"),
    Door("prove-scheduler-with-workers", ("prove", "--mutants", "--scheduler", "tcp://localhost:8786",
                                          "--workers", "2"), 2, "--workers"),
    # nobody listens there: unreachable (or, without the package distributed, not available)
    Door("prove-scheduler-unreachable", ("prove", "--mutants", "--scheduler", "tcp://127.0.0.1:9"), 2,
         "--scheduler"),
    Door("prove-traces-a-file", ("prove", "--traces", "{tmp}/afile"), 2, "--traces"),
    Door("prove-traces-under-a-file", ("prove", "--traces", "{tmp}/afile/traces"), 2, "--traces"),
    Door("prove-report-under-a-file", ("prove", "--report", "{tmp}/afile/r.md"), 2, "--report"),
    Door("prove-report-a-dir", ("prove", "--report", "{tmp}/adir"), 2, "--report"),
    Door("prove-junit-under-a-file", ("prove", "--junit", "{tmp}/afile/j.xml"), 2, "--junit"),
    Door("prove-junit-a-dir", ("prove", "--junit", "{tmp}/adir"), 2, "--junit"),
    Door("prove-kernel-missing", ("prove", "--kernel", "{tmp}/missing.py"), 2, "--kernel"),
    Door("prove-property-unknown", ("prove", "--property", "no-such"), 2, "--property"),
    Door("prove-smt-dir-without-recheck", ("prove", "--smt-dir", "{tmp}/smt"), 2, "--smt-dir"),
    Door("prove-smt-dir-a-file", ("prove", "--recheck", "--smt-dir", "{tmp}/afile"), 2, "--smt-dir"),
    Door("prove-smt-dir-under-a-file", ("prove", "--recheck", "--smt-dir", "{tmp}/afile/smt"), 2, "--smt-dir"),
    Door("prove-smt-dir-empty", ("prove", "--recheck", "--smt-dir", ""), 2, "--smt-dir"),
    Door("prove-recheck-with-a-value", ("prove", "--recheck=yes"), 2, "--recheck"),
    Door("prove-dependencies-with-a-value", ("prove", "--dependencies=all"), 2, "--dependencies"),

    # ---- replay: a trace's every field
    Door("replay-missing-file", ("replay", "{tmp}/missing.json"), 2, "trace"),
    _replay("not-json", "{not json", "trace"),
    _replay("null", "null", "trace"),
    _replay("list", "[]", "trace"),
    _replay("nested", "[" * 100000, "trace"),
    _replay("empty-object", "{}", "kernel"),
    _replay("no-steps", _trace(steps=_DROP), "steps"),
    _replay("steps-not-list", _trace(steps={"0": _SETUP}), "steps"),
    _replay("step-not-object", _trace(steps=["setup"]), "steps[0]"),
    _replay("initial-float", _trace(initial={"mode": 1.5}), "initial.mode"),
    _replay("initial-string", _trace(initial={"mode": "1"}), "initial.mode"),
    _replay("initial-bool", _trace(initial={"mode": True}), "initial.mode"),
    _replay("initial-null", _trace(initial={"mode": None}), "initial.mode"),
    _replay("initial-2**40", _trace(initial={"now_min": 2 ** 40}), "initial.now_min"),
    _replay("initial-out-of-range", _trace(initial={"mode": 7}), "initial.mode"),
    _replay("initial-unknown-field", _trace(initial={"nonsense": 0}), "initial.nonsense"),
    _replay("initial-not-object", _trace(initial=[0]), "initial"),
    _replay("arg-float", _trace(_setup_with(weight_g=70000.5)), "steps[0].args.weight_g"),
    _replay("arg-bool", _trace(_setup_with(indication=True)), "steps[0].args.indication"),
    _replay("arg-null", _trace(_setup_with(bsa_cm2=None)), "steps[0].args.bsa_cm2"),
    _replay("arg-string", _trace(_setup_with(patient_id="1")), "steps[0].args.patient_id"),
    _replay("arg-2**40", _trace(_setup_with(weight_g=2 ** 40)), "steps[0].args.weight_g"),
    _replay("arg-missing", _trace({"entry": "setup", "args": {"patient_id": 1, "indication": 1, "weight_g": 70000}}),
            "steps[0].args.bsa_cm2"),
    _replay("arg-extra", _trace(_setup_with(colour=1)), "steps[0].args.colour"),
    _replay("entry-unknown", _trace({"entry": "launch", "args": {}}), "steps[0].entry"),
    _replay("entry-private", _trace({"entry": "_lock", "args": {"kind": 1}}), "steps[0].entry"),
    _replay("entry-not-string", _trace({"entry": 3, "args": {}}), "steps[0].entry"),
    _replay("property-unknown", _trace(property="no-such"), "property"),
    _replay("kind-unknown", _trace(kind="guess"), "kind"),
    _replay("kernel-missing", _trace(kernel="no/such/kernel.py"), "kernel"),
    _replay("kernel-not-a-kernel", _trace(), "--kernel", "--kernel", "{tmp}/afile"),

    # ---- replay over serial: the port, the keys, the board, and steps no board can be given
    _replay("serial-port-empty", _trace(), "--port", "--runtime", "serial", "--port", ""),
    _replay("serial-port-missing-device", _trace(), "--port", "--runtime", "serial", "--port", "/dev/nonexistent"),
    _replay("serial-port-silent-pty", _trace(), "--port", "--runtime", "serial", "--port", "{pty}"),
    _replay("serial-port-a-file", _trace(), "--port", "--runtime", "serial", "--port", "{tmp}/afile"),
    _replay("serial-port-bad-url", _trace(), "--port", "--runtime", "serial", "--port", "bogus://x"),
    _replay("serial-port-without-serial", _trace(), "--port", "--port", "/dev/nonexistent"),
    _replay("serial-keys-missing", _trace(), "--keys", "--runtime", "serial", "--keys", "{tmp}/missing.json"),
    _replay("serial-keys-not-keys", _trace(), "--keys", "--runtime", "serial", "--keys", "{tmp}/afile"),
    _replay("serial-sim-runtime-with-port", _trace(), "--sim-runtime", "--runtime", "serial", "--sim-runtime",
            "micropython", "--port", "/dev/nonexistent"),
    _replay("serial-sim-runtime-unknown", _trace(), "--sim-runtime", "--runtime", "serial", "--sim-runtime", "jvm"),
    _replay("serial-kernel-not-in-subset", _trace(kernel="afile"), "kernel", "--runtime", "serial"),
    _replay("serial-induction-step", _trace(kind="induction-step"), "kind", "--runtime", "serial"),
    _replay("serial-initial-not-fresh", _trace(initial={"now_min": 5}), "initial.now_min", "--runtime", "serial"),
    _replay("serial-outage-below-unknown", _trace(_SETUP, {"entry": "power_up", "args": {"outage_min": -2}}),
            "steps[1].entry", "--runtime", "serial"),
    Door("replay-serial-entry-no-board-has", ("replay", "{tmp}/t.json", "--runtime", "serial"), 2, "steps[1].entry",
         files=(("t.json", _trace(_SETUP, {"entry": "warp", "args": {}}, kernel="kernel.py")),
                ("kernel.py", _KERNEL_WITH_WARP))),

    # ---- bench: the port, the keys, the outputs
    Door("bench-port-empty", ("bench", "--port", ""), 2, "--port"),
    Door("bench-port-missing-device", ("bench", "--port", "/dev/nonexistent", "flush-refused"), 2, "--port"),
    Door("bench-port-silent-pty", ("bench", "--port", "{pty}", "flush-refused"), 2, "--port"),
    Door("bench-port-dev-null", ("bench", "--port", "/dev/null", "flush-refused"), 2, "--port"),
    Door("bench-port-a-file", ("bench", "--port", "{tmp}/afile", "flush-refused"), 2, "--port"),
    Door("bench-port-a-dir", ("bench", "--port", "{tmp}/adir", "flush-refused"), 2, "--port"),
    Door("bench-port-bad-url", ("bench", "--port", "bogus://x", "flush-refused"), 2, "--port"),
    Door("bench-keys-missing", ("bench", "--keys", "{tmp}/missing.json", "flush-refused"), 2, "--keys"),
    Door("bench-keys-a-dir", ("bench", "--keys", "{tmp}/adir", "flush-refused"), 2, "--keys"),
    Door("bench-keys-not-keys", ("bench", "--keys", "{tmp}/afile", "flush-refused"), 2, "--keys"),
    Door("bench-junit-under-a-file", ("bench", "--junit", "{tmp}/afile/j.xml", "flush-refused"), 2, "--junit"),
    Door("bench-plot-a-dir", ("bench", "--plot", "{tmp}/adir", "flush-refused"), 2, "--plot"),
    Door("bench-port-twice", ("bench", "--port", "/dev/nonexistent", "--port", "/dev/nonexistent"), 2, "--port"),
    Door("bench-boards-zero", ("bench", "--boards", "0"), 2, "--boards"),
    Door("bench-boards-with-port", ("bench", "--boards", "2", "--port", "/dev/nonexistent"), 2, "--boards"),
    Door("bench-results-under-a-file", ("bench", "--results", "{tmp}/afile/r.json", "flush-refused"), 2, "--results"),
    Door("bench-log-dir-a-file", ("bench", "--log-dir", "{tmp}/afile", "flush-refused"), 2, "--log-dir"),
    Door("bench-no-such-scenario", ("bench", "no-such-scenario"), 2, "SCENARIO"),
    Door("bench-scenario-file-missing", ("bench", "{tmp}/missing.json"), 2, "missing.json"),
    Door("bench-scenario-before-port", ("bench", "--port", "/dev/nonexistent", "{tmp}/s.json"), 2, "steps[1].advance",
         files=(("s.json", _scenario({"advance": "-1m"})),)),

    # ---- bench: a scenario file, checked in full before the pump is touched
    _bench_file("not-json", "{not json", "file"),
    _bench_file("null", "null", "file"),
    _bench_file("list", "[]", "file"),
    _bench_file("nested", "[" * 100000, "file"),
    _bench_file("empty-object", "{}", "id"),
    _bench_file("no-steps", _scenario(steps=_DROP), "steps"),
    _bench_file("steps-not-list", _scenario(steps=5), "steps"),
    _bench_file("step-not-object", _scenario(steps=[1]), "steps[0]"),
    _bench_file("clauses-a-string", _scenario(clauses="L1"), "clauses"),
    _bench_file("unknown-top-key", _scenario(stpes=[]), "stpes"),
    _bench_file("patient-indication", _scenario(patient={"indication": "all", "weight_kg": 70}),
                "patient.indication", "L1"),
    _bench_file("patient-weight-word", _scenario(patient={"indication": "rr", "weight_kg": "heavy"}),
                "patient.weight_kg"),
    _bench_file("patient-no-weight", _scenario(patient={"indication": "rr"}), "patient.weight_kg"),
    _bench_file("patient-weight-negative", _scenario(patient={"indication": "rr", "weight_kg": -70}),
                "patient.weight_kg", "L2-weight-45"),
    _bench_file("patient-bsa-below-kernel", _scenario(patient={"indication": "rr", "weight_kg": 30, "bsa_m2": 0.01}),
                "patient.bsa_m2", "L2-dose-28"),
    _step("unknown-kind", {"jump": 1}, "steps[1]"),
    _step("two-kinds", {"do": "start", "advance": "1h"}, "steps[1]"),
    _step("unknown-command", {"do": "teleport"}, "steps[1].do"),
    _step("unknown-step-key", {"do": "start", "expct": "OK"}, "steps[1].expct"),
    _step("unknown-status", {"do": "start", "expect": "E_NOPE"}, "steps[1].expect"),
    _step("advance-negative", {"advance": -5}, "steps[1].advance"),
    _step("advance-negative-text", {"advance": "-5m"}, "steps[1].advance"),
    _step("advance-unbounded", {"advance": "100000000d"}, "steps[1].advance"),
    _step("advance-401-days", {"advance": "401d"}, "steps[1].advance"),
    _step("advance-not-a-duration", {"advance": "soon"}, "steps[1].advance"),
    _step("advance-float", {"advance": 1.5}, "steps[1].advance"),
    _step("advance-bool", {"advance": True}, "steps[1].advance"),
    _step("advance-null", {"advance": None}, "steps[1].advance"),
    _step("advance-huge-digits", {"advance": "9" * 5000 + "d"}, "steps[1].advance"),
    _step("check-true-division", {"check": {"course_ng": "1/0"}}, "steps[1].check.course_ng"),
    _step("check-division-by-zero", {"check": {"course_ng": "1//0"}}, "steps[1].check.course_ng"),
    _step("check-division-by-zero-name", {"check": {"course_ng": "cap_full // (cap_low - cap_low)"}},
          "steps[1].check.course_ng"),
    _step("check-power", {"check": {"course_ng": "10**400"}}, "steps[1].check.course_ng"),
    _step("check-huge-literal", {"check": {"course_ng": "1" + "0" * 50}}, "steps[1].check.course_ng"),
    _step("check-huge-json-int", {"check": {"course_ng": 10 ** 30}}, "steps[1].check.course_ng"),
    _step("check-overflowing-product", {"check": {"course_ng": "2000000000 * 2000000000 * 2000000000"}},
          "steps[1].check.course_ng"),
    _step("check-deeply-nested", {"check": {"course_ng": "-(" * 60 + "1" + ")" * 60}}, "steps[1].check.course_ng"),
    _step("check-too-long", {"check": {"course_ng": "(" * 1000 + "1" + ")" * 1000}}, "steps[1].check.course_ng"),
    _step("check-unknown-name", {"check": {"course_ng": "cap_huge"}}, "steps[1].check.course_ng"),
    _step("check-call", {"check": {"course_ng": "__import__('os')"}}, "steps[1].check.course_ng"),
    _step("check-unknown-field", {"check": {"nonsense": 1}}, "steps[1].check.nonsense"),
    _step("check-list-spec", {"check": {"mode": [1]}}, "steps[1].check.mode"),
    _step("check-bool-spec", {"check": {"mode": True}}, "steps[1].check.mode"),
    _step("check-unknown-alarm", {"check": {"alarm_on": ["NOPE"]}}, "steps[1].check.alarm_on[0]"),
    _step("check-not-object", {"check": ["mode"]}, "steps[1].check"),
    _step("events-a-string", {"events": "STOP"}, "steps[1].events"),
    _step("events-unknown", {"events": ["NOPE"]}, "steps[1].events[0]"),
    _step("events-unhashable", {"no_events": [["STOP"]]}, "steps[1].no_events[0]"),
    _step("save-unknown-field", {"save": {"x": "nofield"}}, "steps[1].save.x"),
    _step("save-bad-name", {"save": {"1x": "course_ng"}}, "steps[1].save.1x"),
    _step("bag-hours-word", {"do": "bag", "ng_per_day": "cap_full", "hours": "many"}, "steps[1].hours"),
    _step("bag-hours-fraction", {"do": "bag", "ng_per_day": "cap_full", "hours": 24.5}, "steps[1].hours"),
    _step("bag-hours-huge", {"do": "bag", "ng_per_day": "cap_full", "hours": 10 ** 12}, "steps[1].hours"),
    _step("bag-dose-list", {"do": "bag", "ng_per_day": [1], "hours": 24}, "steps[1].ng_per_day"),
    _step("bag-no-hours", {"do": "bag", "ng_per_day": "cap_full"}, "steps[1].hours"),
    _step("bag-room-unbounded", {"do": "bag", "ng_per_day": "cap_full", "hours": 24, "room": "100000000d"},
          "steps[1].room"),
    _step("bag-preservative-2", {"do": "bag", "ng_per_day": "cap_full", "hours": 24, "preservative": 2},
          "steps[1].preservative"),
    _step("reaction-grade-word", {"do": "reaction", "kind": "crs", "grade": "three"}, "steps[1].grade"),
    _step("reaction-unknown-kind", {"do": "reaction", "kind": "rash", "grade": 3}, "steps[1].kind"),
    _step("reaction-kind-unhashable", {"do": "reaction", "kind": ["crs"], "grade": 3}, "steps[1].kind"),
    _step("reaction-unknown-scale", {"do": "reaction", "kind": "icans", "grade": 2, "scale": "who"}, "steps[1].scale"),
    _step("resolved-no-kind", {"do": "resolved"}, "steps[1].kind"),
    _step("cycle-decision-missing", {"do": "cycle_decision"}, "steps[1].new_cycle"),
    _step("update-patient-negative-weight", {"do": "update_patient", "weight_kg": -3}, "steps[1].weight_kg"),
    _step("bag-rate-word", {"do": "bag", "ng_per_day": "cap_full", "hours": 24, "rate_ml_per_h": "ten"},
          "steps[1].rate_ml_per_h"),
    _step("ack-unknown", {"do": "ack", "what": "coffee"}, "steps[1].what"),
    _step("stop-unknown-reason", {"do": "stop", "reason": "lunch"}, "steps[1].reason"),
    _step("fault-unknown", {"fault": "meteor"}, "steps[1].fault"),
    _step("fault-outage-word", {"fault": "power_cut", "outage": "soon"}, "steps[1].outage"),
    _step("fault-after-bytes-negative", {"fault": "power_cut_write", "after_bytes": -1}, "steps[1].after_bytes"),

    # ---- keys: outputs that cannot be written, keys that cannot be read
    Door("keys-no-action", ("keys",), 2, "action"),
    Door("keys-new-under-a-file", ("keys", "new", "--out", "{tmp}/afile/k.json"), 2, "--out"),
    Door("keys-new-a-dir", ("keys", "new", "--out", "{tmp}/adir", "--force"), 2, "--out"),
    Door("keys-new-empty", ("keys", "new", "--out", ""), 2, "--out"),
    Door("keys-new-exists", ("keys", "new", "--out", "{tmp}/afile"), 2, "--out", keeps=("afile",)),
    Door("keys-new-unknown-role", ("keys", "new", "--out", "{tmp}/k.json", "--roles", "nurse"), 2, "--roles"),
    Door("keys-export-under-a-file", ("keys", "export", "--keys", "{tmp}/keys.json", "--out", "{tmp}/afile/keys.bin"),
         2, "--out"),
    Door("keys-export-a-dir", ("keys", "export", "--keys", "{tmp}/keys.json", "--out", "{tmp}/adir"), 2, "--out"),
    Door("keys-export-keys-missing", ("keys", "export", "--keys", "{tmp}/missing.json", "--out", "{tmp}/keys.bin"),
         2, "--keys"),
    Door("keys-provision-port-empty", ("keys", "provision", "--port", "", "--keys", "{tmp}/keys.json", "--dry-run"),
         2, "--port"),

    # ---- demo: outputs and the course
    Door("demo-out-a-file", ("demo", "--out", "{tmp}/afile", "--no-prove"), 2, "--out"),
    Door("demo-out-under-a-file", ("demo", "--out", "{tmp}/afile/demo", "--no-prove"), 2, "--out"),
    Door("demo-course-cycles-zero", ("demo", "--out", "{tmp}/demo", "--course-cycles", "0", "--no-prove"),
         2, "--course-cycles", "L2.2-course"),
    Door("demo-course-cycles-ten", ("demo", "--out", "{tmp}/demo", "--course-cycles", "10", "--no-prove"),
         2, "--course-cycles", "L2.2-course"),
    Door("demo-runtime-unknown", ("demo", "--out", "{tmp}/demo", "--runtime", "jvm", "--no-prove"), 2, "--runtime"),

    # ---- sim: --link never replaces what is not its own
    Door("sim-link-a-file", ("sim", "--link", "{tmp}/afile"), 2, "--link", keeps=("afile",)),
    Door("sim-link-a-dir", ("sim", "--link", "{tmp}/adir"), 2, "--link", keeps=("adir",)),
    Door("sim-link-someone-elses-link", ("sim", "--link", "{tmp}/other"), 2, "--link",
         links=(("other", "{tmp}/afile"),), keeps=("other", "afile")),
    Door("sim-link-stale-link", ("sim", "--link", "{tmp}/stale"), 2, "--link",
         links=(("stale", "/dev/pts/999999"),), keeps=("stale",)),
    Door("sim-link-under-a-file", ("sim", "--link", "{tmp}/afile/pump0"), 2, "--link"),
    Door("sim-link-empty", ("sim", "--link", ""), 2, "--link"),

    # ---- flash
    Door("flash-no-port", ("flash",), 2, "--port"),
    Door("flash-port-twice", ("flash", "--port", "{pty}", "--port", "{pty}", "--dry-run"), 2, "--port"),
    Door("flash-pump-keys-empty", ("flash", "--port", "{pty}", "--pump-keys", "", "--dry-run"), 2, "--pump-keys"),
    Door("keys-provision-keys-twice", ("keys", "provision", "--port", "{pty}", "--keys", "{tmp}/keys.json",
                                       "--keys", "{tmp}/keys.json", "--dry-run"), 2, "--keys"),
    Door("sim-runtime-twice", ("sim", "--runtime", "cpython", "--runtime", "unix"), 2, "--runtime"),
    Door("bench-keys-twice", ("bench", "--keys", "sim", "--keys", "sim", "flush-refused"), 2, "--keys"),
    Door("flash-port-empty", ("flash", "--port", "", "--dry-run"), 2, "--port"),
    Door("flash-pump-keys-missing", ("flash", "--port", "{pty}", "--pump-keys", "{tmp}/missing.json"),
         2, "--pump-keys"),
    Door("keys-provision-pump-keys-missing", ("keys", "provision", "--port", "{pty}", "--keys", "{tmp}/keys.json",
                                              "--pump-keys", "{tmp}/missing.json"), 2, "--pump-keys"),
)


# ---------------------------------------------------------------- running a door

def _prepare(door: Door, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "afile").write_text("not a pump, not a key file, not a kernel\n")
    (folder / "adir").mkdir(exist_ok=True)
    (folder / "keys.json").write_text(json.dumps({"bench": BENCH_KEY}))
    for name, text in door.files:
        (folder / name).write_text(text)
    for name, target in door.links:
        os.symlink(target.replace("{tmp}", str(folder)), folder / name)


def run_door(door: Door, folder: str | os.PathLike[str], timeout_s: float = TIMEOUT_S,
             env: dict[str, str] | None = None) -> Outcome:
    """Run one door in `folder` (made and filled here) and judge it."""
    work = Path(folder)
    _prepare(door, work)
    fds: list[int] = []
    try:
        argv = [a.replace("{tmp}", str(work)) for a in door.argv]
        if any("{pty}" in a for a in argv):
            master, slave = os.openpty()        # kept open, and never read: a port that is silent
            fds += [master, slave]
            argv = [a.replace("{pty}", os.ttyname(slave)) for a in argv]
        stdout: int = subprocess.PIPE
        if door.stdout_closed:
            r, w = os.pipe()
            os.close(r)                         # the reader has gone before a byte is written
            fds.append(w)
            stdout = w
        try:
            proc = subprocess.run([sys.executable, "-m", "blinpump", *argv], cwd=work, stdin=subprocess.DEVNULL,
                                  stdout=stdout, stderr=subprocess.PIPE, timeout=timeout_s, env=env)
            out = Outcome(door, proc.returncode, (proc.stdout or b"").decode("utf-8", "replace"),
                          proc.stderr.decode("utf-8", "replace"))
        except subprocess.TimeoutExpired as exc:
            out = Outcome(door, None, "", (exc.stderr or b"").decode("utf-8", "replace"))
    finally:
        for fd in fds:
            os.close(fd)
    out.problems = judge(door, out, work)
    return out


def one_error_line(stderr: str) -> bool:
    """One line; or argparse's usage (first line, then indented continuation lines) and its error line."""
    lines = stderr.strip().splitlines()
    if len(lines) == 1:
        return True
    return (len(lines) >= 2 and lines[0].startswith("usage:") and ": error: " in lines[-1]
            and all(line.startswith(" ") for line in lines[1:-1]))


def judge(door: Door, out: Outcome, folder: Path) -> list[str]:
    """What is wrong with how the door answered (empty: nothing)."""
    problems = []
    if out.returncode is None:
        return ["no answer within the timeout (a hang)"]
    if out.traceback:
        problems.append("a Python traceback on stderr")
    if out.returncode != door.code:
        problems.append("exit status %d, expected %d" % (out.returncode, door.code))
    if door.code == 0:
        if out.stderr.strip():
            problems.append("stderr is not empty")
    else:
        if not one_error_line(out.stderr):
            problems.append("stderr is not one error line (%d lines)" % len(out.stderr.strip().splitlines()))
        if door.field and door.field not in out.stderr:
            problems.append("stderr does not name the field %r" % door.field)
        if door.clause and door.clause not in out.stderr:
            problems.append("stderr does not cite the clause %s" % door.clause)
    for name in door.keeps:
        if not os.path.lexists(folder / name):
            problems.append("%s was removed" % name)
    for name, target in door.links:
        path = folder / name
        if path.is_symlink() and os.readlink(path) != target.replace("{tmp}", str(folder)):
            problems.append("the link %s was changed" % name)
    return problems


def walk(doors: tuple[Door, ...] = DOORS, jobs: int | None = None,
         root: str | os.PathLike[str] | None = None) -> list[Outcome]:
    """Run every door (in parallel, each in its own folder under `root` or a temporary one)."""
    jobs = jobs or min(16, max(4, 4 * (os.cpu_count() or 1)))
    with tempfile.TemporaryDirectory(prefix="blinpump-doors-") as tmp:
        base = Path(root) if root is not None else Path(tmp)
        # the doors share compiled bytecode in a cache of their own (not in the repository), so
        # that each of them does not compile the package again: half the time of a door
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            return list(pool.map(lambda ix: run_door(ix[1], base / ("%03d" % ix[0]), env=env), enumerate(doors)))


def summary(outcomes: list[Outcome]) -> tuple[int, int]:
    """(bad_inputs_tried, tracebacks)."""
    return len(outcomes), sum(o.traceback for o in outcomes)


def walk_doors(doors: tuple[Door, ...] = DOORS, jobs: int | None = None) -> tuple[int, int]:
    """Walk every door; (bad_inputs_tried, tracebacks) for a benchmark (bench/hardening.py)."""
    return summary(walk(doors, jobs))


def main(argv: list[str] | None = None) -> int:
    """`python -m blinpump.hil.doors`: walk the doors, print the ones that answered badly."""
    outcomes = walk()
    for o in outcomes:
        if o.problems:
            last = o.stderr.strip().splitlines()[-1:] or [""]
            print("%-36s %s | %s" % (o.door.name, "; ".join(o.problems), last[0][:160]))
    tried, tracebacks = summary(outcomes)
    bad = sum(not o.ok for o in outcomes)
    print("bad_inputs_tried %d, tracebacks %d, doors answering badly %d" % (tried, tracebacks, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
