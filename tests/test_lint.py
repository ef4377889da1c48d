"""Static checks of the project's own code: names that are used but never defined (a NameError
waiting on a rarely run path), imports nobody uses, syntax errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_pyflakes_rules_pass():
    ruff = Path(sys.executable).parent / "ruff"
    done = subprocess.run([str(ruff), "check", "--no-cache", "--select", "F,E9", "--output-format", "concise",
                           "gate", "tests", "benchmarks", "examples", "entrypoint.py"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
