"""Every property is PROVED (unbounded, k-induction) on the landed kernel; the CLI, the JSON,
the JUnit XML and the assurance report say so, clause by clause."""
from __future__ import annotations

import hashlib
import io
import json
import xml.etree.ElementTree as ET
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from blinpump.verify import cli
from blinpump.verify.engine import PROVED, prove
from blinpump.verify.properties import PROPERTIES, S, by_id
from blinpump.verify.replay import load_module
from blinpump.verify.report import covering_tests, junit, markdown, parse_label, pytest_form
from blinpump.verify.subset import load_kernel

REPO = Path(__file__).resolve().parent.parent
KERNEL = REPO / "firmware" / "kernel.py"


@pytest.fixture(scope="module")
def landed():
    # as `blinpump prove` runs it: the observer's properties in a second process
    return prove(KERNEL, depth=4, display_path="firmware/kernel.py", vacuity=True, workers=2)


def _status(run, pid):
    return {r.id: r for r in run.properties}[pid]


def test_landed_kernel_all_properties_proved(landed):
    assert [r.id for r in landed.properties] == [p.id for p in PROPERTIES]
    bad = [(r.id, r.status, r.detail) for r in landed.properties if r.status != PROVED]
    assert not bad
    assert landed.all_proved
    assert not landed.dropped  # the stated invariant holds initially and is inductive as written
    assert landed.kernel_sha256 == hashlib.sha256(KERNEL.read_bytes()).hexdigest()


def test_L2_5_errors_landed_kernel_is_exact_against_the_label_observer(landed):
    """label-relation: the relational invariant is inductive as written (nothing dropped);
    label-exact and the per-clause exact properties are proved over the product."""
    for pid in ("label-relation", "label-exact", "exact-overdose-12h", "exact-reinit-4h", "exact-bag", "exact-holds"):
        assert _status(landed, pid).status == PROVED, pid
    assert "inductive" in _status(landed, "label-relation").detail
    assert not [d for d in landed.dropped if d.get("owner") in ("relation", "observer")]


def test_two_processes_give_the_verdicts_and_vacuity_of_one(landed):
    ids = ["rate-cap", "label-exact", "exact-cycle"]
    one = prove(KERNEL, by_id(ids), depth=4, display_path="firmware/kernel.py", vacuity=True, workers=1)
    assert [r.id for r in one.properties] == ids
    both = {r.id: r.status for r in landed.properties}
    assert {r.id: r.status for r in one.properties} == {i: both[i] for i in ids}
    guards = {v.property: [(g.check, g.guard, g.satisfiable) for g in v.guards] for v in landed.vacuity}
    assert {v.property: [(g.check, g.guard, g.satisfiable) for g in v.guards] for v in one.vacuity} == {
        i: guards[i] for i in ids}


def test_L2_5_errors_landed_proofs_have_no_vacuous_case(landed):
    assert {v.property for v in landed.vacuity} == {p.id for p in PROPERTIES}
    guards = [g for v in landed.vacuity for g in v.guards]
    assert len(guards) > 150 and all(g.satisfiable for g in guards)
    assert all(v.premise_satisfiable for v in landed.vacuity)
    # most guarded cases happen on a random therapy from the initial state
    assert sum(1 for g in guards if g.witness_depth == 0) > len(guards) // 2
    assert all(r.engine == "k-induction" and r.k == 1 for r in landed.properties)


@pytest.mark.parametrize("pid, clause", [
    ("rate-cap", "L2-dose-28"), ("rate-cap", "L2.2-step"), ("rate-cap", "L2.4-restart-9"),
    ("daily-cap", "EXT-no-flush"), ("constant-rate", "L2-constant-rate"), ("reinit", "L2-reinit-4h"),
    ("reinit", "L2-premed"), ("step-restart", "L2.2-step"), ("bag-limits", "L2.5-durations"),
    ("bag-limits", "L2.5-min-weight"), ("bag-limits", "L2.6-bag-7d"), ("cycles", "L2-cycle-42"),
    ("cycles", "L2.2-cycle-84"), ("cycles", "L2.4-new-cycle"), ("lockout", "L2.4-crs-4"),
    ("lockout", "EXT-overdose-12h"), ("patient", "L2-weight-45"), ("stop-commands", "EXT-pump"),
    ("delivery", "L2.5-errors"), ("clock-fault", "L2-reinit-4h"), ("clock-fault", "L2.6-bag-24-48"),
    ("clock-fault", "L2.6-bag-7d"), ("unknown-outage", "L2-reinit-4h"), ("unknown-outage", "L2.6-bag-72-96"),
    ("interruption-count", "L2-reinit-4h"), ("interruption-count", "L2-premed"), ("totals-monotone", "L2.5-errors"),
    ("totals-monotone", "L2-dose-28"), ("fault-latch", "EXT-pump"),
])
def test_clause_is_covered_by_a_proved_property(landed, pid, clause):
    assert clause in by_id([pid])[0].clauses
    assert _status(landed, pid).status == PROVED


def test_L2_dose_28_rate_cap_proved(landed):
    assert _status(landed, "rate-cap").status == PROVED
    assert _status(landed, "daily-cap").status == PROVED


def test_L2_reinit_4h_and_L2_premed_proved(landed):
    assert _status(landed, "reinit").status == PROVED


def test_L2_reinit_4h_clock_properties_proved(landed):
    """Clock faults, unknown outages, interruption counting, the record and the fault latch
    (tests/test_clock_faults.py drives the controller's side)."""
    for pid in ("clock-fault", "unknown-outage", "interruption-count", "totals-monotone", "fault-latch"):
        assert _status(landed, pid).status == PROVED, pid


def test_L2_4_neuro_3_lockout_proved(landed):
    assert _status(landed, "lockout").status == PROVED


def test_kernel_invariant_holds_in_the_initial_state_on_cpython():
    mod = load_module(KERNEL)
    assert mod.invariant(mod.State())


def test_properties_hold_in_the_initial_state():
    k = load_kernel(KERNEL)
    for p in PROPERTIES:
        assert not p.failing_state(S(k.initial)), p.id


def test_every_property_has_an_id_statement_and_clauses_from_the_label(shared_label):
    """Needs ../shared/LABEL.md beside the checkout (fails, naming it, when absent)."""
    ids = {c.id for c in parse_label(shared_label)}
    for p in PROPERTIES:
        assert p.id and p.statement
        if p.special is None:
            assert p.clauses, p.id
        assert set(p.clauses) <= ids, (p.id, set(p.clauses) - ids)


def test_cli_prove_json_contract():
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = cli.prove_main(["--json", "--property", "patient", "--property", "reinit"])
    assert rc == 0
    doc = json.loads(out.getvalue())
    assert doc["kernel"] == "firmware/kernel.py"
    assert doc["kernel_sha256"] == hashlib.sha256(KERNEL.read_bytes()).hexdigest()
    assert isinstance(doc["seconds"], float)
    assert [p["id"] for p in doc["properties"]] == ["patient", "reinit"]
    for p in doc["properties"]:
        assert set(p) >= {"id", "clauses", "statement", "status", "engine", "k", "seconds", "trace"}
        assert p["status"] == "proved" and p["engine"] == "k-induction" and p["k"] == 1 and p["trace"] is None
    assert "[1/2] patient" in err.getvalue()  # progress on stderr


def test_cli_prove_rejects_out_of_subset_kernel_with_exit_2(tmp_path):
    p = tmp_path / "kernel.py"
    p.write_text(KERNEL.read_text().replace("    s.now_min = min(s.now_min + 1, COUNTER_MAX)\n",
                                            "    s.now_min = min(s.now_min + 1.0, COUNTER_MAX)\n", 1))
    err = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        rc = cli.prove_main(["--kernel", str(p), "--quiet"])
    assert rc == 2
    assert "%s:" % p in err.getvalue() and "float" in err.getvalue()


def test_report_names_sha_clauses_kernel_lines_and_tests(landed, shared_label):
    """Needs ../shared/LABEL.md beside the checkout (fails, naming it, when absent): the clauses no
    property covers come from the label."""
    k = load_kernel(KERNEL, "firmware/kernel.py")
    md = markdown(landed, k, label=shared_label)
    assert landed.kernel_sha256 in md
    assert "ALL PROVED" in md
    row = [line for line in md.splitlines() if line.startswith("| L2-reinit-4h |")][0]
    assert "reinit (proved)" in row
    assert "test_verify_proofs.py::test_L2_reinit_4h_and_L2_premed_proved" in row
    assert "## Clauses no property covers yet" in md
    assert "L2-it-prophylaxis" in md.split("## Clauses no property covers yet")[1]


def test_report_test_names_use_the_pytest_form_of_clause_ids():
    assert pytest_form("L2.2-step") == "L2_2_step"
    names = [("tests/x.py", "test_L2_2_step_low_cap"), ("tests/x.py", "test_L2_2_step_up"),
             ("tests/x.py", "test_L2_2_stepper"), ("tests/x.py", "test_XL2_2_step")]
    assert covering_tests("L2.2-step", names) == ["tests/x.py::test_L2_2_step_low_cap", "tests/x.py::test_L2_2_step_up"]


def test_junit_has_one_passing_testcase_per_property(landed):
    root = ET.fromstring(junit(landed))
    cases = root.findall("testcase")
    assert [c.get("name") for c in cases] == [p.id for p in PROPERTIES]
    assert root.get("failures") == "0"
    assert not root.findall(".//failure")
