"""Bugs planted in a copy of the landed kernel, as an engineer would make them (shared by the
tests of the verifier: tests/test_verify_planted.py, tests/test_kernel_vs_observer.py)."""
from __future__ import annotations

from pathlib import Path

KERNEL = Path(__file__).resolve().parent.parent / "firmware" / "kernel.py"


def plant(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of firmware/kernel.py in tmp_path with the one occurrence of `old` made `new`."""
    src = KERNEL.read_text()
    assert src.count(old) == 1, old
    p = tmp_path / "kernel.py"
    p.write_text(src.replace(old, new))
    return p
