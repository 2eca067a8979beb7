"""The assurance report (Markdown) and JUnit XML of a proof run.

For every clause ID of the label (LABEL.md tables, plus the IDs the kernel's comments cite)
the report lists the properties that cover it with their status, the kernel lines whose
comments cite it, and the tests whose names carry it in pytest form (`L2.2-step` ->
`L2_2_step`); then the clauses nothing covers yet. It names the kernel's SHA-256. With
`prove --recheck` each property shows the second solver's verdict, with `--dependencies` the
kernel lines its proof rests on (linked).
"""
from __future__ import annotations

import ast
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..model.label import CLAUSE_REF, clause_members
from .engine import PROVED, ProofRun
from .properties import PROPERTIES
from .subset import Kernel

REPO = Path(__file__).resolve().parent.parent

# explicit clause IDs, wildcard forms (L2.4-*, L2.6-bag-*) and the L2.x-course family
_CLAUSE = CLAUSE_REF


@dataclass
class Clause:
    id: str
    text: str
    source: str            # "LABEL.md" or "kernel"


def find_label(repo: Path = REPO) -> Path | None:
    """LABEL.md lives next to the repository: ../shared/LABEL.md from the repo root."""
    for cand in (repo.parent / "shared" / "LABEL.md", repo / "LABEL.md", repo / "docs" / "LABEL.md"):
        if cand.is_file():
            return cand
    return None


def parse_label(path: Path) -> list[Clause]:
    out: list[Clause] = []
    seen: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if not cells or cells[0] in ("ID", "") or set(cells[0]) <= set("-: "):
            continue
        cid = cells[0]
        if not _CLAUSE.fullmatch(cid) or cid in seen:
            continue
        seen.add(cid)
        out.append(Clause(cid, " | ".join(cells[1:]), "LABEL.md"))
    return out


def expand(ref: str, known: list[str]) -> list[str]:
    """A clause reference as written in a comment -> the clause IDs it names."""
    return clause_members(ref, known)


def kernel_citations(kernel: Kernel, known: list[str]) -> dict[str, list[int]]:
    """clause ID -> kernel lines whose comments cite it."""
    out: dict[str, list[int]] = {}
    for line, text in sorted(kernel.comments.items()):
        for m in _CLAUSE.finditer(text):
            for cid in expand(m.group(1), known):
                out.setdefault(cid, [])
                if line not in out[cid]:
                    out[cid].append(line)
    return out


def pytest_form(cid: str) -> str:
    return re.sub(r"[.\-]", "_", cid)


def collect_test_names(tests_dir: Path) -> list[tuple[str, str]]:
    """(file relative to the repo, test function name) for every test function under tests/."""
    out: list[tuple[str, str]] = []
    if not tests_dir.is_dir():
        return out
    for path in sorted(tests_dir.rglob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
                try:
                    rel = str(path.relative_to(tests_dir.parent))
                except ValueError:
                    rel = str(path)
                out.append((rel, node.name))
    return out


def covering_tests(cid: str, names: list[tuple[str, str]]) -> list[str]:
    form = pytest_form(cid)
    pat = re.compile(r"(?:^|_)" + re.escape(form) + r"(?:_|$)")
    return ["%s::%s" % (f, n) for f, n in names if pat.search(n)]


def clauses_for(kernel: Kernel, label: Path | None) -> list[Clause]:
    clauses = parse_label(label) if label else []
    known = [c.id for c in clauses]
    for line, text in sorted(kernel.comments.items()):
        for m in _CLAUSE.finditer(text):
            ref = m.group(1)
            if ref.endswith("-*") or ".x-" in ref:
                continue
            if ref not in known:
                known.append(ref)
                clauses.append(Clause(ref, "(cited by the kernel; not in LABEL.md)" if label else "(cited by the kernel)", "kernel"))
    for p in PROPERTIES:
        for cid in p.clauses:
            if cid not in known:
                known.append(cid)
                clauses.append(Clause(cid, "(named by a property; not in LABEL.md)", "property"))
    return clauses


def _second_solver(r: Any, rechecked: bool) -> str:
    if not rechecked:
        return "not run"
    if r.recheck is None:
        return "-"
    from .recheck import CONFIRMED, DISAGREEMENT
    v = r.recheck
    if v["verdict"] == CONFIRMED:
        return "confirmed %d/%d" % (v["confirmed"], v["obligations"])
    if v["verdict"] == DISAGREEMENT:
        return "**DISAGREEMENT** (%d of %d sat)" % (len(v["disagreements"]), v["obligations"])
    return "not rechecked (%d of %d undecided)" % (len(v["not_rechecked"]), v["obligations"])


def _dependency_links(dep: dict[str, Any], kernel: Kernel, link: str) -> str:
    """'depends on kernel lines: [512](k.py#L512), [690-702](k.py#L690-L702)'."""
    if dep["lines"] is None:
        return "kernel lines it depends on: not analysed (%s)" % dep.get("note", "")
    from .dependencies import ranges
    spans = ["[%d](%s#L%d)" % (a, link, a) if a == b else "[%d-%d](%s#L%d-L%d)" % (a, b, link, a, b)
             for a, b in ranges(dep["lines"], kernel)]
    return "depends on kernel lines (%d): %s" % (len(dep["lines"]), ", ".join(spans) or "none")


def markdown(run: ProofRun, kernel: Kernel, label: Path | None = None, tests_dir: Path | None = None,
             mutants: dict[str, Any] | None = None, kernel_link: str | None = None) -> str:
    """kernel_link: the kernel's path as seen from the report's folder, for the line links
    (default: its path in the repository)."""
    label = label if label is not None else find_label()
    link = (kernel_link or run.kernel).replace(os.sep, "/")
    rechecked = run.recheck is not None
    tests_dir = tests_dir or (REPO / "tests")
    clauses = clauses_for(kernel, label)
    known = [c.id for c in clauses]
    cites = kernel_citations(kernel, known)
    names = collect_test_names(tests_dir)
    status = {r.id: r for r in run.properties}
    lines = [
        "# Assurance report: BLINCYTO pump safety kernel",
        "",
        "- kernel: `%s`" % run.kernel,
        "- kernel SHA-256: `%s`" % run.kernel_sha256,
        "- label: `%s`" % (label if label else "LABEL.md not found: clause IDs taken from the kernel's comments"),
        "- verifier: k-induction with the kernel's stated invariant (Houdini-checked) and field ranges; "
        "BMC to depth %d for counterexamples" % run.depth,
        "- result: **%s** (%d of %d properties proved, %.1f s)" % (
            "ALL PROVED" if run.all_proved else "NOT ALL PROVED",
            sum(1 for r in run.properties if r.status == PROVED), len(run.properties), run.seconds),
    ]
    if run.recheck is not None:
        s = run.recheck
        lines.append("- second solver: %s, %d of %d proof obligations confirmed unsat, %d disagreement(s), "
                     "%d not rechecked (%.1f s, at most %d cvc5 resource units each)" % (
                         s["solver"], s["confirmed"], s["obligations"], len(s["disagreements"]),
                         len(s["not_rechecked"]), s["seconds"], s["rlimit_per_obligation"]))
    lines += [
        "",
        "## Properties",
        "",
        "| ID | status | engine | k | seconds | second solver (cvc5) | clauses | trace |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in run.properties:
        lines.append("| %s | %s | %s | %s | %.2f | %s | %s | %s |" % (
            r.id, r.status.upper(), r.engine, r.k if r.k is not None else "", r.seconds,
            _second_solver(r, rechecked), ", ".join(r.clauses) or "-", "`%s`" % r.trace if r.trace else ""))
    lines.append("")
    for r in run.properties:
        lines.append("- **%s**: %s" % (r.id, r.statement))
        if r.depends_on is not None:
            lines.append("  - %s" % _dependency_links(r.depends_on, kernel, link))
        if r.recheck is not None and r.recheck["disagreements"]:
            lines.append("  - DISAGREEMENT: cvc5 finds satisfiable: %s" % ", ".join(
                "`%s`" % f for f in r.recheck["disagreements"]))
        if r.recheck is not None and r.recheck["not_rechecked"]:
            lines.append("  - not rechecked: %s" % "; ".join(
                "`%s` (%s)" % (u["file"], u["reason"]) for u in r.recheck["not_rechecked"]))
        if r.status != PROVED:
            lines.append("  - %s: %s" % (r.status.upper(), r.detail))
            for c in r.failing_checks:
                lines.append("  - failing check: %s" % c)
    if run.dropped:
        lines += ["", "Invariant candidates dropped by Houdini (not inductive or false initially):", ""]
        for d in run.dropped:
            lines.append("- line %d: `%s` (%s)" % (d["line"], d["text"], d["reason"]))
    lines += ["", "## Clauses", "",
              "| clause | properties | kernel lines | tests |",
              "| --- | --- | --- | --- |"]
    uncovered = []
    for c in clauses:
        props = [p for p in PROPERTIES if c.id in p.clauses and p.id in status]
        ptxt = ", ".join("%s (%s)" % (p.id, status[p.id].status) for p in props) or "-"
        ktxt = ", ".join(str(n) for n in cites.get(c.id, [])) or "-"
        tlist = covering_tests(c.id, names)
        ttxt = "<br>".join("`%s`" % t for t in tlist)
        lines.append("| %s | %s | %s | %s |" % (c.id, ptxt, ktxt, ttxt or "-"))
        if not props:
            uncovered.append((c, cites.get(c.id, []), tlist))
    lines += ["", "## Clauses no property covers yet", ""]
    if not uncovered:
        lines.append("None.")
    for c, kl, tl in uncovered:
        extra = []
        if kl:
            extra.append("kernel lines %s" % ", ".join(map(str, kl)))
        if tl:
            extra.append("%d test(s)" % len(tl))
        lines.append("- %s: %s%s" % (c.id, c.text, (" (" + "; ".join(extra) + ")") if extra else " (no kernel line, no test)"))
    lines += observer_section(run) + vacuity_section(run)
    if mutants:
        lines += ["", "## Mutation adequacy", "",
                  "- mutants: %d, caught by the verifier: %d (falsified %d, not proved %d), survivors: %d, "
                  "equivalent (proved behaviour-identical on reachable states): %d" % (
                      mutants["total"], mutants["caught"], mutants.get("falsified", 0), mutants.get("unknown", 0),
                      len(mutants["survivors"]), mutants.get("equivalent", 0)),
                  "- seconds: %.1f" % mutants["seconds"]]
        if mutants["survivors"]:
            lines += ["", "Survivors (review list):", ""]
            for s in mutants["survivors"]:
                lines.append("- line %d: %s%s" % (s["line"], s["description"], " (equivalent)" if s.get("equivalent") else ""))
    lines.append("")
    return "\n".join(lines)


def observer_section(run: ProofRun) -> list[str]:
    """The relational invariant that ties the kernel's state to the label observer's (verify/relation.py)."""
    if not any(r.id == "label-relation" for r in run.properties):
        return []
    from .relation import RELATION
    rel = next(r for r in run.properties if r.id == "label-relation")
    out = ["", "## The kernel against the label observer", "",
           "The label observer (`model/observer.py`) runs beside the kernel on the same inputs. The relational "
           "invariant below, with the observer's own invariant and field ranges, is **%s** (%s); from it the "
           "exact properties (label-exact and the per-clause exact-*) are proved." % (rel.status.upper(), rel.detail),
           ""]
    out += ["- `%s`" % text for text, _ in RELATION]
    return out


def vacuity_section(run: ProofRun) -> list[str]:
    if not run.vacuity:
        return []
    out = ["", "## Vacuity", "",
           "Every guarded case (`guard -> ...`) of every proved property: reached on a random therapy from the "
           "initial state, reached by BMC within the witness depth, or only shown satisfiable after some input from "
           "a state satisfying the strengthening; none may be never true.", "",
           "| property | premise | guarded cases | reached from the initial state | vacuous |",
           "| --- | --- | --- | --- | --- |"]
    for v in run.vacuity:
        reached = sum(1 for g in v.guards if g.witness_depth is not None)
        out.append("| %s | %s | %d | %d | %d |" % (v.property, "satisfiable" if v.premise_satisfiable else "**NEVER TRUE**",
                                                  len(v.guards), reached, len(v.vacuous)))
    return out


def junit(run: ProofRun) -> str:
    failed = [r for r in run.properties if r.status != PROVED or (r.recheck is not None and r.recheck["disagreements"])]
    suite = ET.Element("testsuite", name="blinpump.prove", tests=str(len(run.properties)),
                       failures=str(len(failed)), errors="0",
                       time="%.3f" % run.seconds)
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="kernel", value=run.kernel)
    ET.SubElement(props, "property", name="kernel_sha256", value=run.kernel_sha256)
    for r in run.properties:
        case = ET.SubElement(suite, "testcase", classname="blinpump.prove", name=r.id, time="%.3f" % r.seconds)
        if r.status != PROVED:
            f = ET.SubElement(case, "failure", type=r.status, message="%s: %s" % (r.status.upper(), r.detail[:200]))
            f.text = "\n".join([r.statement, r.detail] + ["failing check: %s" % c for c in r.failing_checks]
                               + (["trace: %s" % r.trace] if r.trace else []))
        elif r.recheck is not None and r.recheck["disagreements"]:      # prove --recheck: cvc5 found a model
            f = ET.SubElement(case, "failure", type="disagreement",
                              message="DISAGREEMENT: cvc5 finds %d proof obligation(s) satisfiable" % len(
                                  r.recheck["disagreements"]))
            f.text = "\n".join(r.recheck["disagreements"])
    return ET.tostring(suite, encoding="unicode")
