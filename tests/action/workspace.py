"""Workspace and runner-file builders shared by the Action tests (a module of its own: test files
cannot reliably import from a conftest.py when several test folders each have one)."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def make_workspace(root: Path) -> Path:
    """A workspace holding the example iris policy and its held-out data at the
    same relative places as in the repository."""
    workspace = root / "workspace"
    (workspace / "policies").mkdir(parents=True)
    (workspace / "data").mkdir()
    shutil.copy(REPO / "examples" / "policies" / "iris.yaml", workspace / "policies" / "iris.yaml")
    shutil.copy(REPO / "examples" / "data" / "iris-holdout.csv", workspace / "data" / "iris-holdout.csv")
    return workspace


def runner_files(root: Path) -> dict[str, Path]:
    """Empty GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files, as the runner creates them for each step
    (called again under the same root: the next step's fresh, empty files)."""
    commands = root / "file_commands"
    commands.mkdir(exist_ok=True)
    files = {"GITHUB_OUTPUT": commands / "set_output", "GITHUB_STEP_SUMMARY": commands / "step_summary"}
    for path in files.values():
        path.write_text("")
    return files
