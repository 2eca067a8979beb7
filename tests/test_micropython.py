"""The firmware's tests on real MicroPython, and the pipeline that runs them.

Every tests/mpy/test_*.py runs here under the official WebAssembly MicroPython (Node.js),
against the firmware compiled by mpy-cross: the .mpy bytes a board would get. The same files
also run on CPython, collected by pytest directly. Needs `node` and `npm ci` (see README);
without them these tests fail, saying so, rather than skip.
"""
from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from blinpump.hil import build, micropython

REPO = Path(__file__).resolve().parent.parent
MPY_TESTS = sorted((REPO / "tests" / "mpy").glob("test_*.py"))
# Modules that act when imported (a board's entry point); every other one must import cleanly.
ENTRY_POINTS = {"firmware.main"}


def defined_tests(path: Path) -> int:
    """Tests a file defines, counted the way MicroPython's unittest finds them: `test*`
    methods of TestCase classes (inherited ones from classes in the same file included)
    plus module-level `test*` functions."""
    tree = ast.parse(path.read_text(), str(path))
    classes: dict[str, tuple[list[str], set[str]]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            bases = [b.id if isinstance(b, ast.Name) else b.attr if isinstance(b, ast.Attribute) else ""
                     for b in node.bases]
            own = {f.name for f in node.body
                   if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and f.name.startswith("test")}
            classes[node.name] = (bases, own)

    def tests_of(name: str, seen: frozenset[str] = frozenset()) -> set[str] | None:
        """The test names of class `name`, or None if it is not a TestCase."""
        bases, own = classes[name]
        found: set[str] = set(own)
        is_case = False
        for base in bases:
            if base == "TestCase":
                is_case = True
            elif base in classes and base not in seen:
                inherited = tests_of(base, seen | {name})
                if inherited is not None:
                    is_case = True
                    found |= inherited
        return found if is_case else None

    count = sum(len(t) for t in (tests_of(n) for n in classes) if t is not None)
    count += sum(1 for node in tree.body
                 if isinstance(node, ast.FunctionDef) and node.name.startswith("test"))
    return count


def test_firmware_compiles_to_mpy() -> None:
    compiled = build.compile_firmware()
    modules = {c.module for c in compiled}
    assert "firmware" in modules
    sources = build.firmware_sources()
    assert len(compiled) == len(sources)
    for c in compiled:
        data = c.mpy_path.read_bytes()
        assert c.size_bytes == len(data) > 0
        assert data[:2] == b"M\x06", "%s is not an .mpy v6 file" % c.mpy_path
    assert build.mpy_total_bytes() == sum(c.size_bytes for c in compiled)


def test_build_is_incremental_and_drops_removed_modules(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "firmware").mkdir(parents=True)
    (src / "firmware" / "__init__.py").write_text("")
    (src / "firmware" / "a.py").write_text("X = 1\n")
    out = tmp_path / "out"
    first = {c.module: c for c in build.compile_firmware(out, src_root=src)}
    assert set(first) == {"firmware", "firmware.a"}
    stamp = first["firmware.a"].mpy_path.stat().st_mtime_ns

    build.compile_firmware(out, src_root=src)                  # nothing changed: no rewrite
    assert first["firmware.a"].mpy_path.stat().st_mtime_ns == stamp

    (src / "firmware" / "a.py").write_text("X = 2\nY = 3\n")
    later = stamp + 10**9
    os.utime(src / "firmware" / "a.py", ns=(later, later))
    again = {c.module: c for c in build.compile_firmware(out, src_root=src)}
    assert again["firmware.a"].mpy_path.stat().st_mtime_ns != stamp

    (src / "firmware" / "a.py").unlink()
    assert [c.module for c in build.compile_firmware(out, src_root=src)] == ["firmware"]
    assert not (out / "firmware" / "a.mpy").exists()


def test_compile_error_names_the_file(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "firmware").mkdir(parents=True)
    (src / "firmware" / "__init__.py").write_text("")
    (src / "firmware" / "broken.py").write_text("def f(:\n")
    with pytest.raises(build.CompileError, match="firmware/broken.py"):
        build.compile_firmware(tmp_path / "out", src_root=src)


def test_firmware_tests_pass_on_micropython() -> None:
    assert MPY_TESTS, "no tests/mpy/test_*.py files"
    result = micropython.run_unittests(MPY_TESTS)
    expected = {p.name: defined_tests(p) for p in MPY_TESTS}
    assert result.failed == 0, result.output
    assert result.passed > 0, result.output
    assert result.ran == sum(expected.values()), (
        "MicroPython ran %d tests, the files define %d (%s): a module or class was skipped "
        "or not found\n%s" % (result.ran, sum(expected.values()), expected, result.output))


def test_firmware_is_imported_from_mpy_files() -> None:
    modules = [c.module for c in build.compile_firmware() if c.module not in ENTRY_POINTS]
    code = "\n".join([
        "import os",
        "print('LISTING', sorted(os.listdir('/firmware')))",
        "for name in %r:" % (modules,),
        "    module = __import__(name)",
        "    for part in name.split('.')[1:]:",
        "        module = getattr(module, part)",
        "    print('FILE', name, module.__file__)",
    ])
    rc, out = micropython.run_script(code)
    assert rc == 0, out
    files = dict(line.split()[1:] for line in out.splitlines() if line.startswith("FILE "))
    assert set(files) == set(modules), out
    for name, where in files.items():
        assert where.endswith(".mpy"), "%s was imported from %s, not from its .mpy" % (name, where)
    listing = next(line for line in out.splitlines() if line.startswith("LISTING "))
    assert ".py'" not in listing, "firmware sources leaked into the runtime: " + listing


def test_a_failing_test_fails_the_run(tmp_path: Path) -> None:
    bad = tmp_path / "test_deliberately_bad.py"
    bad.write_text(
        "import unittest\n"
        "class TestBad(unittest.TestCase):\n"
        "    def test_passes(self):\n"
        "        self.assertEqual(1, 1)\n"
        "    def test_fails(self):\n"
        "        self.assertEqual(1, 2)\n"
        "    def test_errors(self):\n"
        "        raise ValueError('deliberate')\n"
    )
    unimportable = tmp_path / "test_deliberately_unimportable.py"
    unimportable.write_text("import no_such_module_here\n")
    result = micropython.run_unittests([bad, unimportable])
    assert (result.passed, result.failed) == (1, 3), result.output
    assert result.returncode != 0 and not result.ok
    assert "AssertionError" in result.output and "ValueError: deliberate" in result.output
    assert "cannot import test_deliberately_unimportable" in result.output
    assert result.output.rstrip().splitlines()[-1] == "1 passed, 3 failed"


def test_script_exit_status_and_output() -> None:
    rc, out = micropython.run_script("print('line')\nprint('no newline', end='')\n")
    assert (rc, out) == (0, "line\nno newline")
    rc, out = micropython.run_script("def f():\n    raise ValueError('boom')\nf()\n")
    assert rc == 1
    assert "ValueError: boom" in out and ", line 2, in f" in out, out
    rc, out = micropython.run_script("import sys\nsys.exit(3)\n")
    assert rc == 3


def test_script_from_a_file(tmp_path: Path) -> None:
    script = tmp_path / "hello.py"
    script.write_text("import sys\nprint(sys.implementation.name, __name__)\n")
    assert micropython.run_script(script) == (0, "micropython __main__\n")
    assert micropython.run_script(str(script)) == (0, "micropython __main__\n")


def test_missing_runtime_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(micropython, "RUNTIME_ENTRY", tmp_path / "missing" / "micropython.mjs")
    assert not micropython.runtime_available()
    with pytest.raises(micropython.MicroPythonUnavailable, match="npm ci"):
        micropython.run_script("pass")


def test_firmware_typecheck_uses_micropython_stubs(tmp_path: Path) -> None:
    """tools/typecheck's firmware run knows MicroPython's time.ticks_* and machine, and
    rejects CPython-only APIs and modules."""
    from mypy import api

    from tools import typecheck

    pkg = tmp_path / "firmware"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "ok.py").write_text(
        "import time\n"
        "import machine\n"
        "from micropython import const\n"
        "N = const(3)\n"
        "def elapsed(a: int) -> int:\n"
        "    return time.ticks_diff(time.ticks_ms(), a) + N\n"
        "def led() -> None:\n"
        "    machine.Pin(25, machine.Pin.OUT).value(1)\n")
    (pkg / "bad.py").write_text(
        "import time\n"
        "import zlib\n"
        "def now() -> float:\n"
        "    return time.monotonic()\n")
    config = typecheck.write_firmware_config(typecheck.build_micropython_typeshed(),
                                             tmp_path / "mypy.ini", tmp_path / "cache")
    stdout, stderr, status = api.run(["--config-file", str(config), str(pkg)])
    assert status == 1, stdout + stderr
    errors = [line for line in stdout.splitlines() if ": error:" in line]
    assert all("bad.py" in line for line in errors), stdout
    assert any('"zlib"' in line for line in errors), stdout
    assert any('"monotonic"' in line for line in errors), stdout
