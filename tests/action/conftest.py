"""Fixtures for the Action tests: a real MLflow server with real iris models,
and a workspace laid out like the runner's (/github/workspace)."""

from __future__ import annotations

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
def registry(mlflow_server) -> Registry:
    """The session's MLflow server (tests/conftest.py)."""
    return Registry(mlflow_server.url)
