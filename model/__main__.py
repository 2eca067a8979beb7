"""`python -m blinpump.model plan ...` and `python -m blinpump.model label`: the same commands as `blinpump plan|label`."""
from __future__ import annotations

import sys

from .cli import label_main, plan_main

USAGE = "usage: python -m blinpump.model {plan,label} [options]"


def main(argv: list[str]) -> int:
    if argv and argv[0] == "plan":
        return plan_main(argv[1:])
    if argv and argv[0] == "label":
        return label_main(argv[1:])
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
