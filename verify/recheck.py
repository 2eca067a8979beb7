"""A second, independent solver (cvc5) confirms the proof obligations: `blinpump prove --recheck`.

Every PROVED verdict rests on queries Z3 answered unsat (verify/obligations.py). Each is written
as an SMT-LIB 2.6 benchmark (the logic set, no Z3 option or tactic) and read back by cvc5 through
its own parser, in a fresh solver, with a deterministic resource limit (cvc5's `rlimit-per`, not a
time-out: the same commit gets the same verdict on an idle and on a loaded machine). Its answer:

- unsat: confirmed;
- sat: a DISAGREEMENT between the two solvers (one of them, or the export, is wrong): the property
  is not confirmed, and `prove` exits 1;
- unknown (the resource limit, or a file cvc5 cannot read): not rechecked, with the reason. The
  proof stands on Z3's answer, but the property is listed as not rechecked.

A property is confirmed when every obligation it rests on is: the strengthening's, the
translation's (both shared by every property of the same transition relation) and its own.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

from .engine import PROVED, ProofRun
from .obligations import Exporter, ProofObligation

# cvc5 resource units of one obligation. The largest obligation of the landed kernel takes about
# 1.5 million (the product's strengthening step of `tick`, a few seconds here); this is 13 times that.
CVC5_RLIMIT = 20_000_000

CONFIRMED, DISAGREEMENT, NOT_RECHECKED = "confirmed", "disagreement", "not rechecked"


def missing() -> str | None:
    """Why cvc5 cannot be used here, or None."""
    try:
        import cvc5  # noqa: F401
    except ImportError as exc:
        return "needs the package cvc5 (pip install -r requirements.lock): %s" % exc
    return None


def version() -> str:
    import cvc5
    return "cvc5 %s" % getattr(cvc5, "__version__", "?")


def check_text(text: str, name: str = "obligation", rlimit: int = CVC5_RLIMIT) -> dict[str, Any]:
    """cvc5's answer to one SMT-LIB benchmark: {"answer": "unsat"|"sat"|"unknown", "reason",
    "units", "seconds"}. A file it cannot read is unknown, with cvc5's message as the reason."""
    import cvc5
    t0 = time.time()
    tm = cvc5.TermManager()
    solver = cvc5.Solver(tm)
    solver.setOption("rlimit-per", str(rlimit))
    solver.setOption("strict-parsing", "true")     # standard SMT-LIB only: what another solver would read
    symbols = cvc5.SymbolManager(tm)
    parser = cvc5.InputParser(solver, symbols)
    answer, reason = "unknown", "no (check-sat) in the file"
    try:
        parser.setStringInput(cvc5.InputLanguage.SMT_LIB_2_6, text, name)
        while True:
            cmd = parser.nextCommand()
            if cmd.isNull():
                break
            if cmd.getCommandName() != "check-sat":
                cmd.invoke(solver, symbols)
                continue
            r = solver.checkSat()
            if r.isUnsat():
                answer, reason = "unsat", ""
            elif r.isSat():
                answer, reason = "sat", "cvc5 found a model"
            else:
                why = r.getUnknownExplanation()
                answer = "unknown"
                reason = ("resource limit of %d cvc5 units (rlimit-per)" % rlimit
                          if why == cvc5.UnknownExplanation.RESOURCEOUT else "cvc5: %s" % why)
    except Exception as exc:            # cvc5's parser and API errors (RuntimeError), whatever their type
        answer, reason = "unknown", "cvc5 could not read it: %s" % " ".join(str(exc).split())
    units = None
    try:
        units = int(solver.getStatistics()["resource::resourceUnitsUsed"]["value"])
    except (KeyError, TypeError, ValueError, RuntimeError):
        pass
    return {"answer": answer, "reason": reason, "units": units, "seconds": round(time.time() - t0, 3)}


def verdict(answers: list[dict[str, Any]]) -> dict[str, Any]:
    """A property's verdict from the answers to the obligations it rests on."""
    sat = [a for a in answers if a["answer"] == "sat"]
    unknown = [a for a in answers if a["answer"] == "unknown"]
    status = DISAGREEMENT if sat else NOT_RECHECKED if unknown else CONFIRMED
    return {"solver": "cvc5", "verdict": status, "obligations": len(answers),
            "confirmed": sum(1 for a in answers if a["answer"] == "unsat"),
            "disagreements": [a["file"] for a in sat],
            "not_rechecked": [{"file": a["file"], "reason": a["reason"]} for a in unknown]}


def recheck(run: ProofRun, smt_dir: str | Path, rlimit: int | None = None,
            progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Write every obligation of every PROVED property to smt_dir (once each, with index.json),
    check each with cvc5 (rlimit units each, default CVC5_RLIMIT), and set `recheck` on each
    PROVED result and on the run (the summary)."""
    t0 = time.time()
    rlimit = CVC5_RLIMIT if rlimit is None else rlimit
    say = progress or (lambda msg: None)
    out = Path(smt_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, ProofObligation] = {}
    users: dict[str, list[str]] = {}
    for r in run.properties:
        if r.status != PROVED:
            continue
        for ob in run.obligations.get(r.id, []):
            files.setdefault(ob.file_name, ob)
            users.setdefault(ob.file_name, []).append(r.id)
    answers: dict[str, dict[str, Any]] = {}
    export = Exporter()
    for i, (name, ob) in enumerate(sorted(files.items()), 1):
        text = export.smtlib(ob, run.kernel, run.kernel_sha256)
        (out / name).write_text(text)
        a = check_text(text, name, rlimit)
        a["file"] = name
        answers[name] = a
        if a["answer"] != "unsat" or i % 50 == 0 or i == len(files):
            say("cvc5 [%d/%d] %s: %s%s" % (i, len(files), name, a["answer"], " (%s)" % a["reason"] if a["reason"] else ""))
    for r in run.properties:
        if r.status == PROVED:
            r.recheck = verdict([answers[ob.file_name] for ob in run.obligations.get(r.id, [])])
    proved = [r for r in run.properties if r.recheck is not None]
    summary = {
        "solver": version(), "rlimit_per_obligation": rlimit, "smt_dir": str(out),
        "obligations": len(answers),
        "confirmed": sum(1 for a in answers.values() if a["answer"] == "unsat"),
        "disagreements": sorted(n for n, a in answers.items() if a["answer"] == "sat"),
        "not_rechecked": [{"file": n, "reason": a["reason"]} for n, a in sorted(answers.items())
                          if a["answer"] == "unknown"],
        "properties_confirmed": [r.id for r in proved if r.recheck["verdict"] == CONFIRMED],  # type: ignore[index]
        "properties_disagreement": [r.id for r in proved if r.recheck["verdict"] == DISAGREEMENT],  # type: ignore[index]
        "properties_not_rechecked": [r.id for r in proved if r.recheck["verdict"] == NOT_RECHECKED],  # type: ignore[index]
        "seconds": round(time.time() - t0, 3),
    }
    index = {"kernel": run.kernel, "kernel_sha256": run.kernel_sha256, "solver": summary["solver"],
             "rlimit_per_obligation": rlimit,
             "obligations": [{"file": n, "scope": files[n].scope, "group": files[n].group, "name": files[n].name,
                              "properties": users[n], "cvc5": answers[n]["answer"], "reason": answers[n]["reason"]}
                             for n in sorted(files)]}
    (out / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    run.recheck = summary
    return summary


def describe(rc: dict[str, Any] | None) -> str:
    """One property's verdict in a few words (the text output and the report)."""
    if rc is None:
        return "-"
    if rc["verdict"] == CONFIRMED:
        return "confirmed %d/%d" % (rc["confirmed"], rc["obligations"])
    if rc["verdict"] == DISAGREEMENT:
        return "DISAGREEMENT: %d of %d obligations sat for cvc5 (%s)" % (
            len(rc["disagreements"]), rc["obligations"], ", ".join(rc["disagreements"][:3]))
    first = rc["not_rechecked"][0]
    return "not rechecked: %d of %d undecided (%s: %s)" % (len(rc["not_rechecked"]), rc["obligations"],
                                                            first["file"], first["reason"])
