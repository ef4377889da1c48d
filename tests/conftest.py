"""Fixtures shared by every test area: a real MLflow server and real registered models."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "examples" / "quickstart"))

from servers import Server, start_mlflow  # noqa: E402


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Server:
    """`mlflow server` with a SQLite backend and proxied local artifacts, for the whole session."""
    server = start_mlflow(tmp_path_factory.mktemp("mlflow"))
    yield server
    server.stop()


@pytest.fixture()
def tracking_uri(mlflow_server: Server, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    for name in ("GITHUB_SHA", "GITHUB_RUN_ID", "GITHUB_REPOSITORY", "GITHUB_SERVER_URL", "GITHUB_ACTOR"):
        monkeypatch.delenv(name, raising=False)
    return mlflow_server.url
