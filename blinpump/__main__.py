"""`python -m blinpump SUBCOMMAND ...`: the same as the `blinpump` console script."""
import sys

from blinpump.cli import main

sys.exit(main())
