"""A second solver confirms the proofs (`blinpump prove --recheck`), and each proof names the
kernel lines it rests on (`--dependencies`).

cvc5 rechecks every proof obligation of two cheap properties of the landed kernel; a wrong
obligation is a disagreement (exit 1), an undecided one leaves the property "not rechecked"; the
SMT-LIB files are standard (cvc5 reads them with strict parsing, no Z3-only command). The
dependency lines of fault-latch include start's fault check and leave out ack_alarm."""
from __future__ import annotations

import ast
import io
import json
import re
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import z3

from blinpump.verify import cli, engine, recheck
from blinpump.verify.obligations import STANDARD_COMMANDS, ObligationLog, ProofObligation, commands, smtlib
from blinpump.verify.properties import by_id
from blinpump.verify.subset import load_kernel

REPO = Path(__file__).resolve().parent.parent
KERNEL = REPO / "firmware" / "kernel.py"


def _prove(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.prove_main(["--depth", "1", "--quiet", *argv])
    return code, out.getvalue(), err.getvalue()


def _kernel_line(function: str, text: str) -> int:
    """The line of the statement starting with `text` inside `function` of the kernel."""
    lines = KERNEL.read_text().splitlines()
    tree = ast.parse(KERNEL.read_text())
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
    found = [i for i in range(fn.lineno, fn.end_lineno + 1) if lines[i - 1].strip().startswith(text)]
    assert len(found) == 1, (function, text, found)
    return found[0]


@pytest.fixture(scope="module")
def rechecked(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict, str, Path]:
    smt = tmp_path_factory.mktemp("smt")
    code, out, err = _prove("--property", "fault-latch", "--property", "exact-overdose-12h", "--recheck",
                            "--smt-dir", str(smt), "--json")
    return code, json.loads(out), err, smt


def test_cvc5_confirms_every_obligation_of_the_landed_kernel(rechecked):
    code, doc, err, smt = rechecked
    assert code == 0, err
    assert "DISAGREEMENT" not in err
    summary = doc["recheck"]
    assert summary["solver"].startswith("cvc5 ")
    assert summary["obligations"] == summary["confirmed"] > 0
    assert summary["disagreements"] == [] and summary["not_rechecked"] == []
    for p in doc["properties"]:
        assert p["status"] == "proved"
        rc = p["recheck"]
        assert rc["verdict"] == recheck.CONFIRMED
        # the strengthening (one per entry point), the translation and its own step per entry point
        assert rc["obligations"] == rc["confirmed"] >= 3 * 16
    index = json.loads((smt / "index.json").read_text())
    names = {o["file"] for o in index["obligations"]}
    assert len(names) == summary["obligations"]
    assert {"kernel.fault-latch.step-k1-entry-tick.smt2", "product.exact-overdose-12h.step-k1-entry-start.smt2",
            "kernel.strengthening.step-entry-tick.smt2", "product.translation.obligations-entry-tick.smt2"} <= names
    assert all(o["cvc5"] == "unsat" for o in index["obligations"])


def test_obligation_files_are_standard_smtlib(rechecked):
    _, doc, _, smt = rechecked
    files = sorted(smt.glob("*.smt2"))
    assert len(files) == doc["recheck"]["obligations"]
    logics = set()
    for f in files:
        text = f.read_text()
        cmds = commands(text)
        assert set(cmds) <= STANDARD_COMMANDS, (f.name, set(cmds) - STANDARD_COMMANDS)
        assert cmds[:2] == ["set-info", "set-logic"] and cmds[-2:] == ["check-sat", "exit"], f.name
        assert cmds.count("check-sat") == 1
        for z3_only in ("check-sat-using", "set-option", "rlimit", "(push", "(pop", "(get-"):
            assert z3_only not in text, (f.name, z3_only)
        logics.add(text.split("(set-logic ", 1)[1].split(")", 1)[0])
    # the order's division by a bag volume (and every div/mod) makes some of them nonlinear
    assert logics == {"QF_LIA", "QF_NIA"}
    divs = [f.read_text() for f in files if "(div " in f.read_text()]
    assert divs and all("(set-logic QF_NIA)" in t for t in divs)
    bag = divs[0]
    # read back by cvc5 with strict parsing: standard SMT-LIB, and still unsat
    assert recheck.check_text(bag, "bag")["answer"] == "unsat"


def test_a_satisfiable_obligation_is_a_disagreement():
    x = z3.Int("pre.cap_ng_per_day")
    sat = ProofObligation("kernel", "rate-cap", "step k=1 entry tick", [x > 28000, x < 28005])
    text = smtlib(sat)
    assert commands(text) == ["set-info", "set-logic", "declare-fun", "assert", "assert", "check-sat", "exit"]
    assert recheck.check_text(text)["answer"] == "sat"
    unsat = ProofObligation("kernel", "rate-cap", "x", [x > 28000, x < 28001])
    assert recheck.check_text(smtlib(unsat))["answer"] == "unsat"
    v = recheck.verdict([{"file": "a", "answer": "unsat", "reason": ""},
                         {"file": "b", "answer": "sat", "reason": "cvc5 found a model"}])
    assert v["verdict"] == recheck.DISAGREEMENT and v["disagreements"] == ["b"] and v["confirmed"] == 1


def test_prove_exits_1_and_says_so_on_a_disagreement(monkeypatch, tmp_path):
    """A wrong obligation slipped into fault-latch's (one whose formula has a model): the command
    says DISAGREEMENT on stderr, in the JSON and in the report, and exits 1 though Z3 proved it."""
    real = ObligationLog.rested_on

    def with_a_wrong_one(self, props, results):
        out = real(self, props, results)
        if "fault-latch" in out:
            fault = z3.Int("pre.fault")
            out["fault-latch"].append(ProofObligation(self.scope, "fault-latch", "wrong step", [fault == 1]))
        return out
    monkeypatch.setattr(ObligationLog, "rested_on", with_a_wrong_one)
    report = tmp_path / "report.md"
    code, out, err = _prove("--property", "fault-latch", "--recheck", "--smt-dir", str(tmp_path / "smt"),
                            "--json", "--report", str(report))
    assert code == 1
    assert "DISAGREEMENT" in err and "kernel.fault-latch.wrong-step.smt2" in err
    doc = json.loads(out)
    (p,) = doc["properties"]
    assert p["status"] == "proved"          # Z3's verdict, not confirmed by cvc5
    assert p["recheck"]["verdict"] == recheck.DISAGREEMENT
    assert p["recheck"]["disagreements"] == ["kernel.fault-latch.wrong-step.smt2"]
    assert doc["recheck"]["disagreements"] == ["kernel.fault-latch.wrong-step.smt2"]
    md = report.read_text()
    assert "second solver (cvc5)" in md and "**DISAGREEMENT** (1 of" in md


def test_an_undecided_obligation_leaves_the_property_not_rechecked(monkeypatch, tmp_path):
    """cvc5 out of resource units: the proof stands (exit 0), the property is listed as not
    rechecked, and stderr says so; the temporary folder is kept for a look."""
    monkeypatch.setattr(recheck, "CVC5_RLIMIT", 50)
    code, out, err = _prove("--property", "fault-latch", "--recheck")
    assert code == 0
    assert "warning" in err and "not rechecked: fault-latch" in err
    lines = out.splitlines()
    row = next(line for line in lines if line.strip().startswith("fault-latch"))
    assert "cvc5: not rechecked" in row and "resource limit" in row
    assert " 0 not rechecked" not in lines[-1] and "SMT-LIB files in" in lines[-1]
    kept = Path(lines[-1].split("SMT-LIB files in ", 1)[1])
    assert (kept / "index.json").is_file()


def test_recheck_without_cvc5_is_a_usage_error(monkeypatch):
    monkeypatch.setattr(recheck, "missing", lambda: "needs the package cvc5")
    code, out, err = _prove("--recheck")
    assert code == 2 and out == ""
    assert err.strip() == "blinpump prove: error: field=--recheck: needs the package cvc5"


def test_fault_latch_depends_on_starts_fault_check_not_on_ack_alarm(tmp_path):
    report = tmp_path / "report.md"
    code, out, err = _prove("--property", "fault-latch", "--dependencies", "--json", "--report", str(report))
    assert code == 0, err
    (p,) = json.loads(out)["properties"]
    dep = p["depends_on"]
    assert dep["file"] == "firmware/kernel.py"
    lines = dep["lines"]
    assert lines == sorted(lines) and all(isinstance(n, int) for n in lines)
    check = _kernel_line("start", "if s.fault == 1:")
    assert check in lines and check + 1 in lines            # the check and its refusal (return E_FAULT)
    for text in ("keep = keep | AL_LOCKED", "s.alarm = (s.alarm & (255 - bits))"):
        assert _kernel_line("ack_alarm", text) not in lines
    md = report.read_text()
    assert "depends on kernel lines (%d): " % len(lines) in md
    # ranges of lines, each linking to the kernel: [687-689](../kernel.py#L687-L689)
    links = re.findall(r"\[(\d+)(?:-(\d+))?\]\(([^)#]+)#L(\d+)(?:-L(\d+))?\)", md)
    assert sum(int(b or a) - int(a) + 1 for a, b, _, _, _ in links) == len(lines)
    assert any(int(a) <= check <= int(b or a) for a, b, _, _, _ in links)
    assert all(a == la and b == lb for a, b, _, la, lb in links)
    assert {(tmp_path / path).resolve() for _, _, path, _, _ in links} == {KERNEL.resolve()}


def test_a_proof_at_k2_rests_on_its_chain_and_its_base_case(monkeypatch):
    """The landed kernel needs k = 1 only: pretend the k = 1 step failed, and the proof at k = 2
    rests on the chain's step per entry point and on the BMC base case of depth 1, not on k = 1."""
    real = engine.Engine.check_induction
    monkeypatch.setattr(engine.Engine, "check_induction",
                        lambda self, p, k: ("sat", None) if k == 1 else real(self, p, k))
    run = engine.prove(KERNEL, by_id(["fault-latch"]), depth=2, record_obligations=True)
    (r,) = run.properties
    assert (r.status, r.k) == ("proved", 2)
    obligations = {o.name: o for o in run.obligations["fault-latch"] if o.group == "fault-latch"}
    entries = load_kernel(KERNEL).entries
    assert set(obligations) == {"step k=2 entry %s" % e for e in entries} | {"base depth 1"}
    for name in ("base depth 1", "step k=2 entry start"):
        assert recheck.check_text(smtlib(obligations[name]), name)["answer"] == "unsat"
