"""Type-check the project with mypy: `python -m tools.typecheck` from the repository root.

Two runs, each against the standard library its code really runs on:

1. model/ with `--strict` against CPython's typeshed (mypy's own), under the [tool.mypy]
   settings of pyproject.toml. Desktop code.
2. firmware/ against MicroPython's standard library: the stubs of the pinned packages
   micropython-stdlib-stubs (a reduced typeshed `stdlib/`) and micropython-rp2-rpi_pico-stubs
   (the rp2 port's modules: time with ticks_ms/ticks_diff, machine, gc, micropython, ...).
   Laid out as micropython-stubs documents for mypy (`pip install --target typings`, then
   custom_typeshed_dir = mypy_path = typings), except that the port's modules are merged into
   the custom typeshed's stdlib/ and listed in its VERSIONS: they are the target's standard
   library, so mypy looks nowhere else for them and does not report errors inside the stubs.
   Site-packages are off: a firmware import of a CPython-only module (zlib, typing, serial)
   is an error. The firmware is not annotated throughout, so this run is not --strict; it
   checks the bodies of unannotated functions (check_untyped_defs) and flags `type: ignore`
   comments that MicroPython's stubs make unnecessary. The generated stub tree and the mypy
   config used are under build/typings/ (`mypy --config-file build/typings/mypy-firmware.ini
   firmware` repeats the run by hand).

A half whose code does not exist yet is skipped with a note. Exit status 1 on any error.
"""
from __future__ import annotations

import importlib.metadata
import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TYPINGS_ROOT = REPO / "build" / "typings"
MICROPYTHON_TYPESHED = TYPINGS_ROOT / "micropython-rp2"
FIRMWARE_CONFIG = TYPINGS_ROOT / "mypy-firmware.ini"
STDLIB_STUBS = "micropython-stdlib-stubs"
PORT_STUBS = "micropython-rp2-rpi_pico-stubs"

FIRMWARE_SETTINGS = {
    "python_version": "3.11",
    "no_site_packages": "True",
    "check_untyped_defs": "True",
    "warn_unused_ignores": "True",
    "warn_redundant_casts": "True",
    "strict_equality": "True",
    "extra_checks": "True",
    # the MicroPython manifest is run by MicroPython's build tools, with their functions in scope
    "exclude": "firmware/manifest[.]py$",
}


def _has_python(directory: Path) -> bool:
    return directory.is_dir() and any(directory.rglob("*.py"))


def _stub_files(dist_name: str) -> list[tuple[str, Path]]:
    """(path inside the distribution, installed file) for the stub files of a distribution."""
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise SystemExit("typecheck: %s is not installed (pip install -r requirements.lock)"
                         % dist_name) from None
    files = []
    for f in dist.files or ():
        rel = f.as_posix()
        top = rel.split("/", 1)[0]
        if top.endswith(".dist-info") or "__pycache__" in rel or top == "__builtins__.pyi":
            continue            # __builtins__.pyi is for pyright; MicroPython code imports const
        files.append((rel, Path(str(dist.locate_file(f)))))
    return files


def build_micropython_typeshed(dest: Path = MICROPYTHON_TYPESHED) -> Path:
    """Assemble the custom typeshed for the firmware (rebuilt when the stub versions change)."""
    versions = ["%s==%s" % (d, importlib.metadata.version(d)) for d in (STDLIB_STUBS, PORT_STUBS)]
    stamp = dest / ".versions"
    if stamp.is_file() and stamp.read_text().split() == versions:
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    extra_modules: set[str] = set()

    def place(rel: str, src: Path) -> None:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)

    for rel, src in _stub_files(STDLIB_STUBS):
        if rel.split("/", 1)[0] in ("stdlib", "stubs"):
            place(rel, src)                     # the reduced typeshed, as it is
        else:
            place("stdlib/" + rel, src)         # _mpy_shed: helpers the stubs import
            extra_modules.add(rel.split("/", 1)[0].split(".")[0])
    for rel, src in _stub_files(PORT_STUBS):     # the port's modules win over stdlib ones
        place("stdlib/" + rel, src)
        extra_modules.add(rel.split("/", 1)[0].split(".")[0])

    versions_file = dest / "stdlib" / "VERSIONS"
    listed = {line.split(":", 1)[0].strip() for line in versions_file.read_text().splitlines()
              if ":" in line and not line.lstrip().startswith("#")}
    with versions_file.open("a") as fh:
        fh.write("\n# MicroPython rp2 port modules (added by tools/typecheck.py)\n")
        for module in sorted(extra_modules - listed):
            fh.write("%s: 3.0-\n" % module)
    stamp.write_text("\n".join(versions) + "\n")
    return dest


def write_firmware_config(typeshed: Path, config: Path = FIRMWARE_CONFIG,
                          cache_dir: Path = REPO / ".mypy_cache" / "micropython") -> Path:
    """Write the mypy config of the firmware run (its own cache: the typeshed differs)."""
    lines = ["# Generated by tools/typecheck.py: mypy settings for firmware/ on MicroPython.",
             "[mypy]",
             "custom_typeshed_dir = %s" % typeshed,
             "cache_dir = %s" % cache_dir]
    lines += ["%s = %s" % item for item in FIRMWARE_SETTINGS.items()]
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("\n".join(lines) + "\n")
    return config


def _mypy(title: str, args: list[str]) -> bool:
    from mypy import api
    print("== " + title)
    print("   mypy " + " ".join(args), flush=True)
    stdout, stderr, status = api.run(args)
    for text in (stdout, stderr):
        if text.strip():
            print("\n".join("   " + line for line in text.rstrip().splitlines()))
    return status == 0


def check_model() -> bool | None:
    if not _has_python(REPO / "model"):
        print("== model/: no Python files yet, skipped")
        return None
    return _mypy("model/ --strict against CPython's typeshed (pyproject.toml [tool.mypy])",
                 ["--config-file", "pyproject.toml", "--strict", "model"])


def check_firmware() -> bool | None:
    if not _has_python(REPO / "firmware"):
        print("== firmware/: no Python files yet, skipped")
        return None
    config = write_firmware_config(build_micropython_typeshed())
    return _mypy("firmware/ against MicroPython's stubs (%s, %s)" % (STDLIB_STUBS, PORT_STUBS),
                 ["--config-file", os.path.relpath(config), "firmware"])


def main() -> int:
    os.chdir(REPO)
    results = {"model": check_model(), "firmware": check_firmware()}
    failed = [name for name, ok in results.items() if ok is False]
    checked = [name for name, ok in results.items() if ok is not None]
    if failed:
        print("typecheck: errors in %s" % ", ".join(failed))
        return 1
    print("typecheck: %s clean" % (", ".join(checked) if checked else "nothing to check"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
