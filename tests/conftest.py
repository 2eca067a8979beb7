"""Shared by every test under tests/.

- Hypothesis: the profiles "ci" (default, `make test`) and "explore" (bench/explore.py), chosen
  with HYPOTHESIS_PROFILE, are registered and loaded by tests/hypo.py; see there.
- shared_label: the label's clause list, ../shared/LABEL.md beside the checkout (the project's
  shared documents). A test that needs it fails, with a message saying so, when it is absent:
  it is never skipped silently.
- `make test` runs the suite in two pytest-xdist processes (`-n 2 --dist loadgroup`). Every test
  that builds Z3 terms is in one group, "z3", run by one process in the collection order: Z3's
  search can depend on the terms made before in its context: each proof starts a new context
  (verify/engine.py fresh_context), and the terms the tests make themselves see the same history
  on every run, as they did in one process.
"""
from __future__ import annotations

from pathlib import Path

import pytest

import hypo  # noqa: F401  (registers and loads the Hypothesis profile before any test module)
from groups import ONE_PROCESS_FILES, Z3_FILES
from blinpump.verify.report import find_label

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shared_label() -> Path:
    """The path of LABEL.md: ../shared/LABEL.md beside the checkout (or a copy in the repository,
    where verify/report.find_label also looks)."""
    label = find_label(REPO)
    if label is None:
        pytest.fail("this test needs the label's clause list, ../shared/LABEL.md beside the checkout "
                    "(expected at %s); it was not found" % (REPO.parent / "shared" / "LABEL.md"), pytrace=False)
    return label


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in Z3_FILES:
            item.add_marker(pytest.mark.xdist_group("z3"))
        elif item.path.name in ONE_PROCESS_FILES:
            item.add_marker(pytest.mark.xdist_group(ONE_PROCESS_FILES[item.path.name]))
