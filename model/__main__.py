"""`python -m blinpump.model plan ...` and `python -m blinpump.model label`: the same commands as `blinpump plan|label`.

As with `blinpump`: bad input exits 2 with one line on stderr; a closed stdout (the reader went
away, `... | head -c 10`) ends the command quietly with status 0.
"""
from __future__ import annotations

import os
import sys

from .cli import label_main, plan_main

USAGE = "usage: python -m blinpump.model {plan,label} [options]"


def _dispatch(argv: list[str]) -> int:
    if argv and argv[0] == "plan":
        return plan_main(argv[1:])
    if argv and argv[0] == "label":
        return label_main(argv[1:])
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    print("python -m blinpump.model: error: field=command: %s; one of plan, label (%s)"
          % ("unknown command %r" % argv[0] if argv else "missing", USAGE), file=sys.stderr)
    return 2


def main(argv: list[str]) -> int:
    try:
        rc = _dispatch(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        # only stdout is written here: its reader has gone; nothing more can be said to it
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
