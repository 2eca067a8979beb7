"""One name in site-packages (DESIGN.md, "Layout"): installing blinpump adds `blinpump` and
nothing else at the top level, so a bench with its own `firmware/` or `model/` package never
gets blinpump's kernel mixed into its imports; the firmware imports itself relatively, so its
package name on a board is free."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FOLDERS = ("firmware", "model", "hil", "verify")
HOST_CODE = ("blinpump", "model", "hil", "verify", "bench", "fuzz", "tools", "tests")


def _imports(path: Path) -> list[tuple[int, str, int]]:
    """(line, module, level) of every import statement in a file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            out.append((node.lineno, node.module or "", node.level))
        elif isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name, 0) for alias in node.names)
    return out


def test_host_code_never_imports_the_folders_as_top_level_names() -> None:
    offenders = []
    for top in HOST_CODE:
        for path in sorted((REPO / top).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel.startswith("tests/mpy/"):
                continue            # runs on MicroPython too: imports through tests/mpy/fw.py
            for line, module, level in _imports(path):
                if level == 0 and module.split(".")[0] in FOLDERS:
                    offenders.append("%s:%d imports %s" % (rel, line, module))
    assert not offenders, "\n".join(offenders)


def test_firmware_imports_itself_relatively() -> None:
    offenders = []
    for path in sorted((REPO / "firmware").glob("*.py")):
        for line, module, level in _imports(path):
            if level == 0 and module.split(".")[0] in FOLDERS + ("blinpump",):
                offenders.append("firmware/%s:%d imports %s" % (path.name, line, module))
    assert not offenders, "\n".join(offenders)


def test_a_bench_package_named_firmware_is_not_mixed_with_blinpumps(tmp_path: Path) -> None:
    """The bench's own `firmware` and `model` packages stay the bench's, with blinpump's client,
    verifier and planner imported beside them."""
    for name in ("firmware", "model", "hil", "verify"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("OWNER = 'bench'\n")
    script = textwrap.dedent("""
        import sys
        sys.path.insert(0, %r)
        import blinpump.hil.client, blinpump.hil.scenarios, blinpump.verify.engine, blinpump.model
        import firmware, model, hil, verify
        from blinpump.firmware import kernel
        assert firmware.OWNER == model.OWNER == hil.OWNER == verify.OWNER == "bench"
        assert not hasattr(firmware, "kernel"), "blinpump's kernel leaked into the bench's firmware"
        assert kernel.__name__ == "blinpump.firmware.kernel", kernel.__name__
        print("separate")
    """ % str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "separate"


def test_the_wheel_installs_one_top_level_name(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                           "--disable-pip-version-check", "-w", str(tmp_path), str(REPO)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("blinpump-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        tops = {n.split("/")[0] for n in names}
        entry_points = zf.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert {t for t in tops if not t.endswith(".dist-info")} == {"blinpump"}
    for folder in FOLDERS:
        assert "blinpump/%s/__init__.py" % folder in names
    assert "blinpump/firmware/kernel.py" in names and "blinpump/hil/mpy_board.mjs" in names
    assert any(n.startswith("blinpump/hil/scenarios/") and n.endswith(".json") for n in names)
    assert "blinpump = blinpump.cli:main" in entry_points
    assert "blinpump.hil.pytest_plugin = blinpump.hil.pytest_plugin" in entry_points   # named as pytest-xdist names its


def test_every_test_file_that_uses_z3_runs_in_the_z3_group() -> None:
    """`make test` runs two processes; the files that build Z3 terms share one (tests/conftest.py)."""
    from groups import Z3_FILES
    here = Path(__file__).resolve().parent
    users = {p.name for p in here.glob("test_*.py")
             if re.search(r"^\s*(import z3|from blinpump\.verify|from blinpump import verify)", p.read_text(), re.M)}
    assert users <= Z3_FILES, sorted(users - Z3_FILES)
