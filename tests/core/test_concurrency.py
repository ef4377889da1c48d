"""Two gates promoting two versions of one model at once, on an MLflow server backed by PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from servers import start_mlflow, start_postgres


@pytest.fixture(scope="module")
def postgres_mlflow(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("pg")
    uri, postgres = start_postgres(workdir / "db")
    server = start_mlflow(workdir / "mlflow", backend_uri=uri, workers=2)
    yield server
    server.stop()
    os.killpg(postgres.pid, signal.SIGTERM)
    postgres.wait(timeout=30)


def test_concurrent_promotions_end_with_one_truthful_champion(postgres_mlflow, logged_models, policy, tmp_path,
                                                              monkeypatch):
    from mlflow import MlflowClient

    from gate.registration import register_source
    from gate.registry import Registry

    monkeypatch.setenv("MLFLOW_TRACKING_URI", postgres_mlflow.url)
    registry = Registry(postgres_mlflow.url)
    client = MlflowClient(postgres_mlflow.url)
    # logged_models live on the SQLite server; re-log here through the same helper path: a local folder.
    import mlflow.sklearn

    from models import train_iris

    folder = tmp_path / "good"
    mlflow.sklearn.save_model(train_iris("good"), folder, serialization_format="pickle")
    name = "raced"
    versions = [register_source(registry, name, str(folder), 60, 0.2).version for _ in range(3)]
    client.set_registered_model_alias(name, "champion", versions[0])

    rules = {"accuracy": {"direction": "higher", "min": 0.8, "max_regression_abs": 0.01}}
    path = policy(thresholds=rules)
    env = {**os.environ, "MLFLOW_TRACKING_URI": postgres_mlflow.url}
    gates = [subprocess.Popen([sys.executable, "-m", "gate", "check", "--policy", str(path), "--model-uri",
                               f"models:/{name}/{v}", "--format", "json"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for v in versions[1:]]
    results = [(g.wait(timeout=300), json.loads(g.stdout.read()), g.stderr.read()) for g in gates]

    champion = client.get_model_version_by_alias(name, "champion").version
    promoted = [report for code, report, _ in results if report["decision"] == "promoted"]
    assert promoted, results
    assert all(code == (0 if report["decision"] == "promoted" else 1) for code, report, _ in results)
    # The champion is the last promoted version, and every promotion names the champion it replaced.
    if len(promoted) == 1:
        winner = promoted[0]
        loser = next(report for _, report, _ in results if report["decision"] != "promoted")
        assert champion == winner["model"]["version"]
        assert winner["previous_version"] == versions[0]
        message = next(c["message"] for c in loser["checks"] if c["name"] == "promotion")
        assert f"moved from version {versions[0]} to {champion}" in message
        assert client.get_model_version(name, loser["model"]["version"]).tags["model_gate.status"] == "rejected"
    else:  # the two runs did not overlap: each replaced the one before it
        first, second = sorted(promoted, key=lambda r: r["previous_version"] != versions[0])
        assert first["previous_version"] == versions[0]
        assert second["previous_version"] == first["model"]["version"]
        assert champion == second["model"]["version"]
    tags = client.get_model_version(name, champion).tags
    assert tags["model_gate.status"] == "promoted"
    assert tags["model_gate.previous_champion"] in (versions[0], *versions[1:])
    # The lock is gone afterwards.
    assert not [m for m in client.search_registered_models() if m.name.endswith(".model-gate-lock")]


def test_a_champion_moved_during_the_run_is_never_overwritten(policy, register, client, tracking_uri, tmp_path):
    """Deterministic: the model's predict waits at a barrier while the test moves the alias."""
    import time

    name, first = register("barrier")
    _, candidate = register("barrier", name)
    _, other = register("barrier", name)
    client.set_registered_model_alias(name, "champion", first)
    path = policy(evaluation=None, thresholds=None)
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "BARRIER_DIR": str(tmp_path)}
    gate = subprocess.Popen([sys.executable, "-m", "gate", "check", "--policy", str(path), "--model-uri",
                             f"models:/{name}/{candidate}", "--format", "json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not (tmp_path / "started").exists():
        assert gate.poll() is None and time.monotonic() < deadline, gate.stderr.read() if gate.poll() else "timeout"
        time.sleep(0.05)
    client.set_registered_model_alias(name, "champion", other)  # another release, while this gate runs
    (tmp_path / "go").touch()
    out, err = gate.communicate(timeout=120)
    report = json.loads(out)
    assert gate.returncode == 1 and report["decision"] == "rejected", err
    promotion = next(c for c in report["checks"] if c["name"] == "promotion")
    assert promotion["status"] == "failed"
    assert f"moved from version {first} to {other}" in promotion["message"]
    assert client.get_model_version_by_alias(name, "champion").version == other
    tags = client.get_model_version(name, candidate).tags
    assert tags["model_gate.status"] == "rejected" and "promotion" in tags["model_gate.failed_checks"]
