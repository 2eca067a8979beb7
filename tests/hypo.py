"""The test suite's Hypothesis settings, in one place (tests/conftest.py imports this module).

Profiles, chosen with the environment variable HYPOTHESIS_PROFILE (default "ci"):

- ci: what `make test` runs. derandomize=True: the examples are a function of the test's
  source, so the same commit gives the same answer on every run and every machine; no example
  database (nothing carried over from an earlier run or another checkout); no deadline and no
  too_slow health check (both measure wall-clock time, which a loaded machine misses).
- explore: FACTOR times the examples (20, or HYPOTHESIS_EXPLORE_FACTOR), a fresh random seed
  each run, failures kept in build/hypothesis-explore/ and tried first the next time.
  bench/explore.py runs it. A failure found there is added to the test as an explicit
  @example (for a state machine: a deterministic regression test that replays the steps), so
  that ci checks it on every run.

A test that deliberately needs n examples (more or fewer than the profile's default) asks for
`examples(n)`: n under ci, n * FACTOR under explore. Nothing else about Hypothesis is set per
test (stateful_step_count, which is part of what a state machine test means, excepted).
"""
from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

REPO = Path(__file__).resolve().parent.parent
DEFAULT_EXAMPLES = 100                  # Hypothesis' own default of max_examples
PROFILES = ("ci", "explore")
# wall-clock checks cannot give the same answer twice; data_too_large: the clock campaigns
# draw long action lists on purpose
SUPPRESSED = [HealthCheck.too_slow, HealthCheck.data_too_large]


def _explore_factor() -> int:
    raw = os.environ.get("HYPOTHESIS_EXPLORE_FACTOR", "20")
    try:
        factor = int(raw)
    except ValueError:
        raise RuntimeError("HYPOTHESIS_EXPLORE_FACTOR=%r is not a whole number" % raw) from None
    if factor < 1:
        raise RuntimeError("HYPOTHESIS_EXPLORE_FACTOR=%r must be at least 1" % raw)
    return factor


PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci") or "ci"
if PROFILE not in PROFILES:
    raise RuntimeError("HYPOTHESIS_PROFILE=%r: the test suite knows the profiles %s" % (PROFILE, ", ".join(PROFILES)))
FACTOR = _explore_factor() if PROFILE == "explore" else 1

settings.register_profile(
    "ci", derandomize=True, database=None, deadline=None, print_blob=True, suppress_health_check=SUPPRESSED)
settings.register_profile(
    "explore", max_examples=DEFAULT_EXAMPLES * FACTOR, derandomize=False,
    database=DirectoryBasedExampleDatabase(str(REPO / "build" / "hypothesis-explore")),
    deadline=None, print_blob=True, suppress_health_check=SUPPRESSED)
settings.load_profile(PROFILE)


def examples(n: int) -> int:
    """max_examples for a test that deliberately needs n: n under ci, scaled under explore."""
    return n * FACTOR
