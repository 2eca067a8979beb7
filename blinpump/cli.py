"""The `blinpump` console script: one entry point, one subcommand per tool.

Each subcommand lives with the package it belongs to and is imported lazily, so
`blinpump plan` does not pay for importing Z3 and `blinpump prove` does not need pyserial.
"""
from __future__ import annotations

import importlib
import sys

# subcommand -> (module, function, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "plan": ("blinpump.model.cli", "plan_main", "plan a course for a patient (label Tables 1-3)"),
    "label": ("blinpump.model.cli", "label_main", "print the label as a table of clause IDs and numbers"),
    "prove": ("blinpump.verify.cli", "prove_main", "prove the kernel's safety properties with Z3"),
    "replay": ("blinpump.verify.cli", "replay_main", "replay a counterexample trace against the kernel"),
    "sim": ("blinpump.hil.cli", "sim_main", "start a simulated board behind a pseudo-terminal"),
    "bench": ("blinpump.hil.cli", "bench_main", "run scenarios against a pump over serial"),
    "demo": ("blinpump.hil.cli", "demo_main", "plan, prove, and run the standard scenarios on a simulated board"),
    "build": ("blinpump.hil.build", "main", "compile the firmware to .mpy (--production: no simulation commands)"),
    "flash": ("blinpump.hil.cli", "flash_main", "compile the production build, deploy it with mpremote, compare hashes"),
    "keys": ("blinpump.hil.cli", "keys_main", "make and provision the keys of authenticated commands"),
}


def _usage() -> str:
    lines = ["usage: blinpump SUBCOMMAND [options]", "", "subcommands:"]
    for name, (_, _, text) in SUBCOMMANDS.items():
        lines.append("  %-8s %s" % (name, text))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0 if args else 2
    name = args.pop(0)
    if name not in SUBCOMMANDS:
        print("blinpump: unknown subcommand %r\n%s" % (name, _usage()), file=sys.stderr)
        return 2
    module, func, _ = SUBCOMMANDS[name]
    entry = getattr(importlib.import_module(module), func)
    return int(entry(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
