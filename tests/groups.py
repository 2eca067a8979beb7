"""How `make test` shares the suite between its two pytest-xdist processes (tests/conftest.py)."""
from __future__ import annotations

# the test files that build Z3 terms (the verifier and its users): one xdist group, one process,
# in the collection order, so Z3 sees the same history on every run
Z3_FILES = {"test_clock_faults.py", "test_kernel_vs_observer.py", "test_packaging.py", "test_replay_serial.py",
            "test_verify_mutants.py", "test_verify_planted.py", "test_verify_proofs.py", "test_verify_recheck.py",
            "test_verify_subset.py", "test_verify_translation.py", "test_verify_vacuity.py"}

# files whose module-scoped fixture is costly: all their tests in one process, so it runs once
# (test_doors.py walks every door of the command line, about 240 subprocesses)
ONE_PROCESS_FILES = {"test_doors.py": "doors"}
