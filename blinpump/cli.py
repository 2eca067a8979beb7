"""The `blinpump` console script: one entry point, one subcommand per tool.

Each subcommand lives with the package it belongs to and is imported lazily, so
`blinpump plan` does not pay for importing Z3 and `blinpump prove` does not need pyserial.

Exit status, for every subcommand: 0 done, 1 a check or scenario failed, 2 a bad invocation or
bad input (one line on stderr naming the option or field, and the label clause where one applies;
never a traceback). When the reader of stdout goes away (`blinpump plan ... | head -c 10`), the
command stops quietly with status 0, as many Unix tools do: the reader chose to stop reading.
"""
from __future__ import annotations

import importlib
import os
import select
import sys
from typing import Callable

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


def stdout_closed() -> bool:
    """True if nobody reads our stdout any more (a pipe whose reader has gone)."""
    try:
        fd = sys.__stdout__.fileno() if sys.__stdout__ else 1
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(ev & select.POLLERR for _, ev in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def run_quietly_on_closed_stdout(entry: Callable[[list[str]], "int | None"], args: list[str]) -> int:
    """entry(args) as an exit status; a closed stdout (reader gone) ends it quietly with 0.

    A BrokenPipeError from anything else (a child's pipe, a socket) is not ours to hide."""
    try:
        rc = int(entry(args) or 0)
        sys.stdout.flush()
    except BrokenPipeError:
        if not stdout_closed():
            raise
        # whatever is still buffered goes nowhere, and the interpreter's last flush cannot fail
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0
    return rc


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if not args:
        print("blinpump: error: field=SUBCOMMAND: missing; one of %s (blinpump --help)"
              % ", ".join(SUBCOMMANDS), file=sys.stderr)
        return 2
    name = args.pop(0)
    if name not in SUBCOMMANDS:
        print("blinpump: error: field=SUBCOMMAND: unknown subcommand %r; one of %s (blinpump --help)"
              % (name, ", ".join(SUBCOMMANDS)), file=sys.stderr)
        return 2
    module, func, _ = SUBCOMMANDS[name]
    entry = getattr(importlib.import_module(module), func)
    return run_quietly_on_closed_stdout(entry, args)


if __name__ == "__main__":
    sys.exit(main())
