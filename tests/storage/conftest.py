"""Fixtures for the S3 storage tests: one moto server per session, a fresh bucket per test."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))  # tests/servers.py
sys.path.insert(0, str(Path(__file__).parent))  # faultproxy.py

from faultproxy import FaultProxy  # noqa: E402
from servers import start_moto  # noqa: E402

from s3testing import CREDENTIALS, write_model  # noqa: E402


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    server = start_moto(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture
def s3_env(moto, monkeypatch):
    """The standard AWS chain pointed at moto through environment variables only."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "MLFLOW_S3_")) or name in ("GITHUB_ACTIONS", "MODEL_GATE_BUCKET"):
            monkeypatch.delenv(name)
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/model-gate-test")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/model-gate-test")
    return moto


@pytest.fixture
def s3(s3_env):
    """A plain boto3 client, for setting up and for changing objects behind the tool's back."""
    import boto3

    return boto3.client("s3", endpoint_url=s3_env.url, region_name="us-east-1")


@pytest.fixture
def bucket(s3):
    name = f"mg-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def proxy(moto, monkeypatch, s3_env):
    """A fault-injecting proxy in front of moto; the tool under test talks to it."""
    fault_proxy = FaultProxy(moto.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", fault_proxy.url)
    yield fault_proxy
    fault_proxy.stop()


@pytest.fixture
def model_dir(tmp_path):
    root = tmp_path / "model"
    return root, write_model(root)
