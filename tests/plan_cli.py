"""The planner's command line as a test bench runs it: `python -m blinpump.model ...` in a
subprocess, from a folder that is not the repository (shared by the tests/test_model_*.py files)."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PYTHON = str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable


def run_model(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m blinpump.model ARGS...`"""
    return subprocess.run([PYTHON, "-m", "blinpump.model", *args], cwd=tempfile.gettempdir(),
                          capture_output=True, text=True, timeout=60)


def plan_json(*args: str) -> Any:
    """`plan ARGS... --json`, which must succeed quietly."""
    result = run_model("plan", *args, "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return json.loads(result.stdout)
