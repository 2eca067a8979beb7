"""Mutation adequacy: mutants of the kernel's source are caught by the proofs; equivalent
mutants are recognised; the random-testing baseline finds no violation on the landed kernel.
The campaign runs in parallel, streams its verdicts to a results file and resumes from it."""
from __future__ import annotations

import io
import json
import sys
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from hypo import examples

from blinpump.verify import cli
from blinpump.verify import mutants as mutants_mod
from blinpump.verify.mutants import (OPERATORS, equivalent, generate, generate_all, kernel_sha256, prove_quick,
                                     run_campaign, sample)
from blinpump.verify.randomtest import campaign
from blinpump.verify.subset import load_kernel

REPO = Path(__file__).resolve().parent.parent
KERNEL = REPO / "firmware" / "kernel.py"
SOURCE = KERNEL.read_text()


def _mutant(desc: str):
    found = [m for m in generate(SOURCE) if m.description == desc]
    assert len(found) == 1, (desc, len(found))
    return found[0]


def _write(tmp_path: Path, m) -> Path:
    p = tmp_path / ("mutant%d.py" % m.id)
    p.write_bytes(m.apply(SOURCE.encode()))
    return p


def test_mutants_cover_every_operator_and_stay_in_the_subset(tmp_path):
    muts = generate(SOURCE)
    ops = Counter(m.operator for m in muts)
    assert set(ops) == set(OPERATORS)
    assert len(muts) > 500
    # edits keep the file's layout: line numbers are the landed kernel's
    for m in sample(muts, 60):
        text = m.apply(SOURCE.encode()).decode()
        assert len(text.splitlines()) == len(SOURCE.splitlines())
        p = tmp_path / "k.py"
        p.write_text(text)
        load_kernel(p)  # raises if a mutant left the subset
    # the invariant and the initial state are never mutated
    inv_line = next(i for i, line in enumerate(SOURCE.splitlines(), 1) if line.startswith("def invariant"))
    assert all(m.line < inv_line for m in muts)


def test_L2_dose_28_mutant_sample_is_caught(tmp_path):
    for desc in ("setup: removed 's.indication = indication'",
                 "_order_ng_per_day: removed 'return (drug_ng * (RATE_24H_UL_PER_H * 24) + volume_ul - 1) // volu...'",
                 "CAP_FULL_NG_PER_DAY = 28001 (was 28000)",
                 "start: removed 'if s.locked == 1'"):
        res = prove_quick(str(_write(tmp_path, _mutant(desc))))
        assert res["valid"] and res["caught"], (desc, res)


def test_L2_reinit_4h_mutant_of_the_4h_constant_is_caught(tmp_path):
    res = prove_quick(str(_write(tmp_path, _mutant("REINIT_MIN = 241 (was 240)"))))
    assert res["caught"] and res["by"] in ("label-relation", "label-exact", "reinit", "kernel-invariant")


def test_L2_5_min_weight_equivalent_mutant_is_recognised(tmp_path):
    """Bag durations are 24, 48, 72, 96 or 168 h (the kernel's invariant), so 'longer than 2881
    minutes' picks the same preservative bags as 'longer than 2880': nothing observable changes."""
    m = _mutant("update_patient: literal 2880 -> 2881")
    assert equivalent(str(KERNEL), str(_write(tmp_path, m)))
    m2 = _mutant("STOP_BAG_EXPIRED = 7 (was 6)")
    assert not equivalent(str(KERNEL), str(_write(tmp_path, m2)))


def test_L2_dose_28_random_testing_finds_no_violation_on_the_landed_kernel():
    """A fixed number of examples from a fixed seed (not a time budget): the same sequences on
    every machine, however loaded."""
    n = examples(25)
    r = campaign(str(KERNEL), examples=n, seed=1)
    assert not r["caught"], (r["violations"], r["steps"])
    assert r["examples"] == n


def test_cli_prove_with_mutants_reports_caught_and_survivors():
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(io.StringIO()):
        rc = cli.prove_main(["--property", "patient", "--mutants", "--max-mutants", "2", "--json", "--quiet"])
    assert rc == 0
    doc = json.loads(out.getvalue())
    m = doc["mutants"]
    assert m["total"] == 2 and m["caught"] + len(m["survivors"]) == 2
    assert m["mutants_total"] == 2 and m["mutants_caught_verifier"] + m["mutants_equivalent"] + m["mutants_survived"] == 2
    assert m["generated"] > 500 and m["seconds"] > 0


NEW_OPERATORS = ("UNIT", "DEDENT", "SWAP", "NOCLEAR", "NEIGHBOUR")


def test_new_operators_make_unique_mutants_in_the_subset_with_the_line_count_kept(tmp_path):
    kept, rejected = generate_all(SOURCE)
    ops = Counter(m.operator for m in kept)
    assert all(ops[op] >= 1 for op in NEW_OPERATORS), ops
    everything = kept + [m for m, _ in rejected]
    # a resumed campaign finds a mutant by its description: each one names a single edit
    assert len({m.description for m in everything}) == len(everything)
    assert len({m.id for m in everything}) == len(everything)
    lines = SOURCE.count("\n")
    assert all(m.apply(SOURCE.encode()).decode().count("\n") == lines for m in everything)
    new = [m for m in kept if m.operator in NEW_OPERATORS]
    for m in sample(new, 25):
        p = tmp_path / "k.py"
        p.write_bytes(m.apply(SOURCE.encode()))
        load_kernel(p)                      # raises if a mutant left the subset
    # the subset's rejections are counted with their reason, never made silently
    assert all(m.operator in NEW_OPERATORS and why for m, why in rejected)
    # the same source gives the same edits in the same order
    assert [m.description for m in mutants_mod._unique(mutants_mod._edits(SOURCE))] == [
        m.description for m in sorted(everything, key=lambda m: m.id)]


def _text(desc: str) -> tuple[str, str]:
    """The landed and the mutated lines of a mutant (where they differ)."""
    m = _mutant(desc)
    old = SOURCE.splitlines()
    new = m.apply(SOURCE.encode()).decode().splitlines()
    diff = [i for i in range(len(old)) if old[i] != new[i]]
    return "\n".join(old[i] for i in diff), "\n".join(new[i] for i in diff)


def test_new_operators_make_the_bugs_firmware_engineers_make():
    by_desc = {m.description: m for m in generate(SOURCE)}
    # UNIT: the 4 h of L2-reinit-4h written in hours, the daily cap in mcg; codes have no unit,
    # and a conversion factor is not a quantity
    assert _text("REINIT_MIN = 4 (was 240: in hours, not minutes)")[1].startswith("REINIT_MIN = 4 ")
    assert "CAP_FULL_NG_PER_DAY = 28 (was 28000: in mcg, not ng)" in by_desc
    assert "FREE_SHORT_MIN = 14 (was 20160: in days, not minutes)" in by_desc
    assert "RATE_7D_UL_PER_H = 10 (was 600: per minute, not per hour)" in by_desc
    units = [m.description for m in by_desc.values() if m.operator == "UNIT"]
    assert not [d for d in units if d.startswith(("E_", "OK ", "MODE_", "STOP_", "AL_", "RX_", "MIN_PER_"))]
    # DEDENT: the step dose's premedication recorded whether or not it was needed
    old, new = _text("start: 's.step_premed_done = 1' moved out of 'if s.indication == IND_RR and s.step_premed_done =...'")
    assert old == "        s.step_premed_done = 1" and new == "    s.step_premed_done = 1"
    # SWAP: arguments and operands, bracketed where precedence needs it
    assert _text("reaction: swapped 'kind' and 'grade' in _open_hold(...)")[1].strip() == "_open_hold(s, grade, kind)"
    old, new = _text("_order_ng_per_day: swapped the operands of '-' in drug_ng * (RATE_7D_UL_PER_H * 24) + volume_ul - 1")
    assert new.strip() == "return (1 - (drug_ng * (RATE_7D_UL_PER_H * 24) + volume_ul)) // volume_ul"
    assert not [d for d in by_desc if d.startswith("setup:") and "'==' in" in d and "swapped" in d]
    # NOCLEAR takes the clearing assignments, RMSET the others: no edit is made twice
    assert "_unload_bag: removed 's.booked_min = -1' (not cleared)" in by_desc
    assert "_unload_bag: removed 's.booked_min = -1'" not in by_desc
    spans = Counter((m.start, m.end, m.replacement) for m in by_desc.values())
    assert max(spans.values()) == 1
    # NEIGHBOUR: the nearest constants of the same unit on either side, with another value
    assert "_update_interruption: REINIT_MIN -> RESTART_LOW_MIN (240 -> 10080)" in by_desc
    assert "_update_interruption: REINIT_MIN -> PREMED_WINDOW_MIN (240 -> 60)" in by_desc


# one planted bug per new operator, each caught within seconds (bmc depth 0)
PLANTED = (
    "FREE_SHORT_MIN = 14 (was 20160: in days, not minutes)",                     # L2-cycle-42
    "tick: 's.day_cap_ng = 0' moved out of 'if s.day_min >= MIN_PER_DAY'",      # L2-dose-28
    "_deliver_minute: swapped the operands of '>' in s.day_ng + dose_ng > s.day_cap_ng",
    "_stop_motor: removed 's.motor_ul_per_h = 0' (not cleared)",
    "_set_body: CAP_STEP_NG_PER_DAY -> CAP_FULL_NG_PER_DAY (9000 -> 28000) (line 496)",
)


@pytest.fixture(scope="module")
def planted_campaign(tmp_path_factory):
    """The planted mutants proved by 2 local worker processes, streamed to a results file; and a
    mutant the subset rejected when it was made."""
    results = tmp_path_factory.mktemp("campaign") / "results.jsonl"
    kept, rejected = generate_all(SOURCE)
    muts = [_mutant(d) for d in PLANTED]
    summary = run_campaign(SOURCE, muts, rejected=rejected[:1], workers=2, results=results)
    return summary, results, rejected[:1]


def test_L2_dose_28_planted_mutants_of_each_new_operator_are_caught_by_two_workers(planted_campaign):
    summary, results, rejected = planted_campaign
    assert {r["operator"] for r in summary["results"]} == set(NEW_OPERATORS)
    assert summary["mutants_total"] == 6 and summary["mutants_run"] == 5
    assert summary["mutants_caught_verifier"] == 5, summary["results"]
    assert summary["mutants_rejected"] == 1 and summary["mutants_survived"] == summary["mutants_equivalent"] == 0
    assert summary["per_operator"]["DEDENT"] == {"total": 2, "caught": 1, "equivalent": 0, "survived": 0,
                                                 "rejected": 1, "error": 0}
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["record"] for r in lines] == ["mutant"] * 6 + ["summary"]
    sha = kernel_sha256(SOURCE)
    for r in lines[:-1]:
        assert r["kernel_sha256"] == sha
        assert {"id", "operator", "line", "description", "verdict", "seconds"} <= set(r)
    assert lines[-1]["mutants_caught_verifier"] == 5 and lines[-1]["mutants_rejected"] == 1


def test_campaign_resumes_from_its_results_file(planted_campaign, tmp_path):
    summary, results, rejected = planted_campaign
    lines = results.read_text().splitlines()
    mutant_lines = [line for line in lines if json.loads(line)["record"] == "mutant"]
    rejected_line = next(line for line in mutant_lines if json.loads(line)["verdict"] == "rejected")
    proved = [line for line in mutant_lines if line != rejected_line]
    other_kernel = dict(json.loads(rejected_line), kernel_sha256="0" * 64)
    # a verdict for another kernel does not count; a last line cut short by a stop is dropped
    f = tmp_path / "results.jsonl"
    f.write_text("\n".join(proved + [json.dumps(other_kernel)]) + "\n" + rejected_line[:40])
    said: list[str] = []
    again = run_campaign(SOURCE, [_mutant(d) for d in PLANTED], rejected=rejected, workers=2, results=f,
                         resume=True, progress=said.append)
    assert again["mutants_run"] == 0 and again["mutants_resumed"] == 5
    assert said[0] == "resuming: 5 of 6 mutants have a verdict in %s" % f
    assert [(r["id"], r["verdict"]) for r in again["results"]] == [(r["id"], r["verdict"]) for r in summary["results"]]
    records = [json.loads(line) for line in f.read_text().splitlines()]   # every line whole again
    assert [r["verdict"] for r in records if r["record"] == "mutant"][-1] == "rejected"
    assert records[-1]["record"] == "summary" and records[-1]["mutants_caught_verifier"] == 5


def _prove_error(argv: list[str]) -> str:
    """Run `blinpump prove` expecting a usage error: exit 2 and one line on stderr, no traceback."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            rc = cli.prove_main(argv)
        except SystemExit as exc:           # argparse's own errors
            rc = exc.code
    assert rc == 2, (argv, rc, err.getvalue())
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and out.getvalue() == "", (argv, err.getvalue(), out.getvalue())
    return lines[0]


def test_cli_campaign_options_are_refused_in_one_line(tmp_path, monkeypatch):
    not_results = tmp_path / "notes.jsonl"
    not_results.write_text("these are not verdicts\n")
    a_file = tmp_path / "file"
    a_file.write_text("")
    for argv, option in (
            (["--mutants", "--workers", "two"], "--workers"),
            (["--mutants", "--workers", "0"], "--workers"),
            (["--mutants", "--workers", "100000"], "--workers"),
            (["--workers", "0"], "--workers"),
            (["--mutants", "--resume"], "--resume"),
            (["--mutants", "--results", str(not_results), "--resume"], "--results"),
            (["--mutants", "--results", str(tmp_path), "--resume"], "--results"),
            (["--mutants", "--results", str(a_file / "results.jsonl")], "--results"),
            (["--mutants", "--scheduler", "localhost:8786"], "--scheduler"),
            (["--mutants", "--scheduler", "tcp://localhost:notaport"], "--scheduler"),
            (["--mutants", "--scheduler", "tcp://localhost:8786", "--workers", "2"], "--workers")):
        assert "field=%s:" % option in _prove_error(argv), argv
    # a scheduler that does not answer (or the package is not installed): checked before any proof
    monkeypatch.setattr(mutants_mod, "CONNECT_TIMEOUT_S", 1)
    line = _prove_error(["--mutants", "--scheduler", "tcp://127.0.0.1:9"])
    assert "field=--scheduler:" in line and ("cannot reach" in line or "distributed" in line), line
    monkeypatch.setitem(sys.modules, "distributed", None)     # as if it were not installed
    line = _prove_error(["--mutants", "--scheduler", "tcp://127.0.0.1:9"])
    assert "field=--scheduler: needs the 'distributed' package" in line, line


def test_houdini_checks_first_the_entry_points_that_run_the_edit_and_gives_the_same_verdict(tmp_path):
    from blinpump.verify.mutants import entries_reaching
    k = load_kernel(str(KERNEL))
    clear = k.functions["_clear_patient"].node.lineno + 2
    assert entries_reaching(k, clear) == ("end_therapy",)
    reinit = entries_reaching(k, k.constant_lines["REINIT_MIN"])     # a module constant: who names it
    assert "start" in reinit and "tick" in reinit and "ack_alarm" not in reinit
    m = next(m for m in generate(SOURCE) if m.description.startswith("_clear_patient: removed 's.bsa_cm2"))
    assert entries_reaching(k, m.line) == ("end_therapy",)
    path = str(_write(tmp_path, m))
    plain, hinted = prove_quick(path), prove_quick(path, line=m.line)
    assert plain["caught"] and (plain["by"], plain["status"]) == (hinted["by"], hinted["status"])
