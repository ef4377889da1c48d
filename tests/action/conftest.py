"""Fixtures for the Action tests: a real MLflow server with real iris models,
and a workspace laid out like the runner's (/github/workspace)."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).parent
REPO = HERE.parents[1]
# runner.py (the runner-like parsers), tests/servers.py and the quick-start model builders.
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(REPO / "examples" / "quickstart"))


@dataclass(frozen=True)
class Registry:
    url: str

    def register(self, name: str, quality: str) -> str:
        """Train and register an iris model; 'good' (logistic regression) passes
        examples/policies/iris.yaml, 'bad' (a depth-1 tree) fails its accuracy threshold."""
        from models import log_iris_model

        return f"models:/{name}/{log_iris_model(self.url, name, quality)}"


@pytest.fixture(scope="session")
def registry(tmp_path_factory) -> Registry:
    from servers import start_mlflow

    server = start_mlflow(tmp_path_factory.mktemp("mlflow"))
    try:
        yield Registry(server.url)
    finally:
        server.stop()


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
    """Empty GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files, as the runner creates them."""
    commands = root / "file_commands"
    commands.mkdir()
    files = {"GITHUB_OUTPUT": commands / "set_output", "GITHUB_STEP_SUMMARY": commands / "step_summary"}
    for path in files.values():
        path.touch()
    return files
