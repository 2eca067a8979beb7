"""Mutation adequacy: mutants of the kernel's source are caught by the proofs; equivalent
mutants are recognised; the random-testing baseline finds no violation on the landed kernel."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from hypo import examples

from blinpump.verify.mutants import equivalent, generate, prove_quick, sample
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
    assert set(ops) == {"CMP", "CONST", "RMIF", "RMRET", "ANDOR", "RMSET"}
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
    assert res["caught"] and res["by"] in ("reinit", "kernel-invariant")


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
    import io
    import json
    from contextlib import redirect_stderr, redirect_stdout

    from blinpump.verify import cli
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(io.StringIO()):
        rc = cli.prove_main(["--property", "patient", "--mutants", "--max-mutants", "2", "--json", "--quiet"])
    assert rc == 0
    doc = json.loads(out.getvalue())
    m = doc["mutants"]
    assert m["total"] == 2 and m["caught"] + len(m["survivors"]) == 2
    assert m["generated"] > 500 and m["seconds"] > 0
