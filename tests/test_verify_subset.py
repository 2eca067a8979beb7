"""The verifier's subset checker: the landed kernel is accepted; anything outside the subset is
rejected with file:line: reason (never skipped silently)."""
from __future__ import annotations

import random
import textwrap
from pathlib import Path

import pytest

from blinpump.verify.replay import load_module
from blinpump.verify.subset import SubsetError, load_kernel
from blinpump.verify.symexec import Translator, as_int

REPO = Path(__file__).resolve().parent.parent
KERNEL = REPO / "firmware" / "kernel.py"

HEADER = '''"""A tiny kernel."""
CAP = 28000


class State:
    def __init__(self):
        self.mode = 0       # [0, 2]
        self.rate = 0       # [0, 28000]
        self.alarm = 0      # [0, 255]


def _helper(s):
    return s.rate


'''


def _kernel(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "kernel.py"
    p.write_text(HEADER + textwrap.dedent(body))
    return p


def _errors(path: Path) -> list[tuple[str, int, str]]:
    with pytest.raises(SubsetError) as exc:
        load_kernel(path)
    return exc.value.errors


def _line_of(path: Path, needle: str) -> int:
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(needle)


def test_landed_kernel_is_in_the_subset():
    k = load_kernel(KERNEL)
    assert "tick" in k.entries and "start" in k.entries and "invariant" not in k.entries
    assert k.field("alarm").lo == 0 and k.field("alarm").hi == 255
    assert k.field("int_start_min").lo == -1


def test_subset_rejects_a_loop_with_file_line_and_reason(tmp_path):
    p = _kernel(tmp_path, """
        def tick(s):
            x = 0
            while x < 3:
                x = x + 1
            return x
        """)
    errs = _errors(p)
    line = _line_of(p, "while x < 3")
    assert (str(p), line) in [(f, n) for f, n, _ in errs]
    assert any("loop" in r for _, n, r in errs if n == line)
    assert ("%s:%d: loop" % (p, line)) in str(SubsetError(errs))


def test_subset_rejects_a_for_loop(tmp_path):
    p = _kernel(tmp_path, """
        def tick(s):
            for i in range(3):
                s.rate = i
            return 0
        """)
    assert any("loop" in r for _, _, r in _errors(p))


def test_subset_rejects_a_float(tmp_path):
    p = _kernel(tmp_path, """
        def tick(s):
            s.rate = s.rate * 1.5
            return 0
        """)
    errs = _errors(p)
    line = _line_of(p, "1.5")
    assert any(n == line and "float" in r for _, n, r in errs)


def test_subset_rejects_a_float_constant_and_true_division(tmp_path):
    p = _kernel(tmp_path, """
        HALF = 0.5


        def tick(s):
            s.rate = s.rate / 2
            return 0
        """)
    errs = _errors(p)
    assert any("float" in r and n == _line_of(p, "HALF = 0.5") for _, n, r in errs)
    assert any("true division" in r and n == _line_of(p, "s.rate / 2") for _, n, r in errs)


def test_subset_rejects_a_call_to_an_unknown_function(tmp_path):
    p = _kernel(tmp_path, """
        def tick(s):
            s.rate = abs(s.rate)
            print(s.rate)
            return 0
        """)
    errs = _errors(p)
    assert any("unknown function abs" in r and n == _line_of(p, "abs(s.rate)") for _, n, r in errs)
    assert any("unknown function print" in r and n == _line_of(p, "print(s.rate)") for _, n, r in errs)


def test_L2_dose_28_subset_rejects_a_product_of_two_variables(tmp_path):
    """A concentration times a rate is nonlinear: rejected (not over-approximated)."""
    p = _kernel(tmp_path, """
        def bag(s, drug_ng, volume_ul):
            s.rate = drug_ng * volume_ul
            return 0
        """)
    errs = _errors(p)
    assert any("product of two non-constant operands" in r and n == _line_of(p, "drug_ng * volume_ul")
               for _, n, r in errs)


def test_subset_accepts_a_constant_times_a_variable(tmp_path):
    p = _kernel(tmp_path, """
        def bag(s, drug_ng):
            s.rate = min(3 * drug_ng // 2, CAP)
            return 0
        """)
    k = load_kernel(p)
    assert k.entries == ["bag"]


def test_subset_rejects_division_by_a_variable_recursion_augassign_and_import(tmp_path):
    p = _kernel(tmp_path, """
        import os


        def _loop(s):
            _loop(s)


        def tick(s, d):
            s.rate = s.rate // d
            s.rate += 1
            _loop(s)
            return 0
        """)
    reasons = " | ".join(r for _, _, r in _errors(p))
    assert "import" in reasons
    assert "division by a positive constant" in reasons
    assert "augmented assignment" in reasons
    assert "recursion" in reasons


def test_subset_rejects_missing_range_comment_and_unknown_field(tmp_path):
    p = tmp_path / "kernel.py"
    p.write_text(textwrap.dedent('''
        class State:
            def __init__(self):
                self.mode = 0
                self.rate = 0       # [0, 10]


        def tick(s):
            s.speed = 1
            return 0
        '''))
    reasons = " | ".join("%d:%s" % (n, r) for _, n, r in _errors(p))
    assert "field mode has no '# [lo, hi]' range comment" in reasons
    assert "s.speed is not a field" in reasons


def test_subset_rejects_an_effectful_helper_inside_an_expression(tmp_path):
    p = _kernel(tmp_path, """
        def _bump(s):
            s.rate = s.rate + 1
            return s.rate


        def tick(s):
            x = _bump(s) + 1
            return x
        """)
    assert any("assigns state fields and is called inside an expression" in r for _, _, r in _errors(p))


def test_subset_rejects_an_entry_point_that_may_not_return_a_status(tmp_path):
    p = _kernel(tmp_path, """
        def tick(s):
            if s.mode == 1:
                return 0
            s.rate = 1
        """)
    assert any("may end without returning" in r for _, _, r in _errors(p))


def test_subset_rejects_a_loop_planted_in_the_landed_kernel(tmp_path):
    src = KERNEL.read_text()
    marker = "    s.now_min = min(s.now_min + 1, COUNTER_MAX)\n"
    assert marker in src
    p = tmp_path / "kernel.py"
    p.write_text(src.replace(marker, marker + "    for _ in range(2):\n        pass\n", 1))
    errs = _errors(p)
    line = _line_of(p, "for _ in range(2):")
    assert errs == [(str(p), line, "loop (for) is not in the verifiable subset")]


def test_translation_matches_cpython_on_random_sequences():
    """The translator, run on concrete values, computes exactly what CPython computes."""
    from blinpump.verify.randomtest import random_step, snapshot
    k = load_kernel(KERNEL)
    mod = load_module(KERNEL)
    tr = Translator(k)
    rng = random.Random(4)
    steps = 0
    for _ in range(120):
        s = mod.State()
        cur = snapshot(s, k.field_names)
        for _ in range(30):
            entry, args, repeat = random_step(rng, k)
            for _ in range(min(repeat, 3)):
                ret = getattr(mod, entry)(s, *[args[p] for p in k.entry_params(entry)])
                r = tr.run(entry, cur, args)
                nxt = snapshot(s, k.field_names)
                got = {f: as_int(v) for f, v in r.fields.items()}
                assert got == nxt, (entry, args, {f: (got[f], nxt[f]) for f in got if got[f] != nxt[f]})
                assert as_int(r.ret) == ret
                assert all(o.cond is not False for o in r.obligations)
                cur = nxt
                steps += 1
    assert steps > 3000
