"""The whole gate against a real `mlflow server`: promotion, rejection, baselines, audit tags."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest


def alias_of(client, name: str, alias: str = "champion") -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias).version
    except MlflowException:
        return None


def test_good_model_is_promoted_with_audit_tags(gate, policy, register, client, tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.example")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/models")
    monkeypatch.setenv("GITHUB_RUN_ID", "4242")
    monkeypatch.setenv("GITHUB_SHA", "0123abc")
    name, version = register("good")
    path = policy(promotion={"alias": "champion", "tags": {"team": "search"}})
    result = gate("check", "--policy", str(path), "--model-uri", f"models:/{name}/{version}",
                  "--report-dir", str(tmp_path / "reports"))
    assert result.code == 0, result.out + result.err
    assert alias_of(client, name) == version
    tags = client.get_model_version(name, version).tags
    assert tags["model_gate.status"] == "promoted"
    assert tags["model_gate.previous_champion"] == "none"
    assert tags["model_gate.run_url"] == "https://github.example/acme/models/actions/runs/4242"
    assert tags["model_gate.commit"] == "0123abc"
    assert tags["team"] == "search"
    import hashlib

    assert tags["model_gate.policy_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    report = json.loads((tmp_path / "reports" / "report.json").read_text())
    assert report["decision"] == "promoted"
    assert report["model"] == {**report["model"], "name": name, "version": version}
    accuracy = next(c for c in report["checks"] if c["name"] == "threshold.accuracy")
    assert accuracy["status"] == "passed" and accuracy["value"] == pytest.approx(0.9333, abs=1e-3)
    assert (tmp_path / "reports" / "report.md").read_text().startswith("## model-gate: ✅ promoted")


def test_threshold_failure_rejects_and_leaves_alias(gate, policy, register, client):
    name, good = register("good")
    assert gate("check", "--policy", str(policy()), "--model-uri", f"models:/{name}/{good}").code == 0
    _, bad = register("bad", name)
    result = gate("check", "--policy", str(policy()), "--model-uri", f"models:/{name}/{bad}")
    assert result.code == 1
    assert "accuracy 0.666667 is below the minimum 0.8" in result.out
    assert alias_of(client, name) == good
    tags = client.get_model_version(name, bad).tags
    assert tags["model_gate.status"] == "rejected"
    assert "threshold.accuracy" in tags["model_gate.failed_checks"]


def test_regression_against_champion_rejects(gate, policy, register, client):
    name, good = register("good")
    gate("check", "--policy", str(policy()), "--model-uri", f"models:/{name}/{good}")
    _, bad = register("bad", name)
    rules = {"accuracy": {"direction": "higher", "min": 0.5, "max_regression_abs": 0.05}}
    result = gate("check", "--policy", str(policy(thresholds=rules)), "--model-uri", f"models:/{name}/{bad}",
                  "--format", "json")
    assert result.code == 1
    report = json.loads(result.out)
    check = next(c for c in report["checks"] if c["name"] == "threshold.accuracy")
    assert check["status"] == "failed"
    assert check["baseline"] == pytest.approx(0.9333, abs=1e-3)
    assert "worse than baseline version 1" in check["message"]
    assert alias_of(client, name) == good


def test_first_deployment_skip_and_fail(gate, policy, register, client):
    name, version = register("good")
    skip = {"accuracy": {"direction": "higher", "min_delta_abs": 0.0, "on_missing_baseline": "skip"}}
    fail = {"accuracy": {"direction": "higher", "min_delta_abs": 0.0, "on_missing_baseline": "fail"}}
    rejected = gate("check", "--policy", str(policy(thresholds=fail)), "--model-uri", f"models:/{name}/{version}")
    assert rejected.code == 1 and "cannot compare with a baseline" in rejected.out
    assert alias_of(client, name) is None
    passed = gate("check", "--policy", str(policy(thresholds=skip)), "--model-uri", f"models:/{name}/{version}")
    assert passed.code == 0, passed.out
    assert "SKIPPED" in passed.out and "baseline comparison skipped" in passed.out
    assert alias_of(client, name) == version


def test_same_version_never_passes_positive_improvement(gate, policy, register, client):
    name, version = register("good")
    assert gate("check", "--policy", str(policy()), "--model-uri", f"models:/{name}/{version}").code == 0
    rules = {"accuracy": {"direction": "higher", "min_delta_abs": 0.01}}
    result = gate("check", "--policy", str(policy(thresholds=rules)), "--model-uri", f"models:/{name}@champion")
    assert result.code == 1
    assert "candidate and baseline are the same version" in result.out
    assert "cannot improve on itself" in result.out


def test_dry_run_writes_nothing(gate, policy, register, client):
    name, version = register("good")
    result = gate("check", "--policy", str(policy()), "--model-uri", f"models:/{name}/{version}", "--dry-run")
    assert result.code == 0 and "dry run" in result.out
    assert alias_of(client, name) is None
    assert not any(k.startswith("model_gate.") for k in client.get_model_version(name, version).tags)


def test_float_target_column_scores_like_the_integer_one(gate, policy, register, tmp_path):
    import pandas as pd

    name, version = register("good")
    holdout = Path(__file__).parents[2] / "examples" / "data" / "iris-holdout.csv"
    floats = tmp_path / "holdout-float.parquet"
    frame = pd.read_csv(holdout)
    frame.assign(target=frame["target"].astype(float)).to_parquet(floats)
    scores = {}
    for label, dataset in (("int", str(holdout)), ("float", str(floats))):
        evaluation = {"dataset": dataset, "target": "target", "task": "classification", "metrics": ["accuracy"]}
        result = gate("check", "--policy", str(policy(evaluation=evaluation)), "--model-uri",
                      f"models:/{name}/{version}", "--dry-run", "--format", "json")
        assert result.code == 0, result.out + result.err
        checks = {c["name"]: c for c in json.loads(result.out)["checks"]}
        scores[label] = checks["threshold.accuracy"]["value"]
    assert scores["float"] == scores["int"] > 0.9


def test_run_metric_source(gate, policy, register, client):
    name, version = register("bad")
    rules = {"val_accuracy": {"direction": "higher", "min": 0.9, "source": "run"}}
    result = gate("check", "--policy", str(policy(thresholds=rules)), "--model-uri", f"models:/{name}/{version}")
    assert result.code == 1
    assert "val_accuracy 0.666667 is below the minimum 0.9" in result.out
    missing = {"no_such_metric": {"direction": "higher", "min": 0.1, "source": "run"}}
    result = gate("check", "--policy", str(policy(thresholds=missing)), "--model-uri", f"models:/{name}/{version}")
    assert result.code == 1 and "metric is missing" in result.out and "was not logged on run" in result.out


def test_stage_promotion_archives_previous(gate, policy, register, client):
    name, first = register("good")
    _, second = register("good", name)
    stage_policy = policy(promotion={"stage": "Production"})
    assert gate("check", "--policy", str(stage_policy), "--model-uri", f"models:/{name}/{first}").code == 0
    result = gate("check", "--policy", str(stage_policy), "--model-uri", f"models:/{name}/{second}")
    assert result.code == 0, result.out
    assert client.get_model_version(name, second).current_stage == "Production"
    assert client.get_model_version(name, first).current_stage == "Archived"
    assert client.get_model_version(name, second).tags["model_gate.previous_champion"] == first
    resolved = gate("resolve", f"models:/{name}/Production", "--json")
    assert resolved.code == 0 and json.loads(resolved.out)["version"] == second


def test_copy_to_production_model(gate, policy, register, client):
    name, version = register("good")
    prod = f"{name}-prod"
    result = gate("check", "--policy", str(policy(promotion={"copy_to": {"name": prod, "alias": "live"}})),
                  "--model-uri", f"models:/{name}/{version}")
    assert result.code == 0, result.out
    copied = alias_of(client, prod, "live")
    assert copied == "1"
    assert client.get_model_version(prod, copied).tags["model_gate.status"] == "promoted"
    assert client.get_model_version(name, version).tags["model_gate.copied_to"] == f"models:/{prod}/1"
    assert alias_of(client, name) is None


def test_copy_to_the_candidates_own_model_is_refused(gate, policy, register, client):
    name, version = register("good")
    result = gate("check", "--policy", str(policy(promotion={"copy_to": {"name": name}})),
                  "--model-uri", f"models:/{name}/{version}")
    assert result.code == 2, result.out + result.err
    assert f"promotion.copy_to.name '{name}' is the candidate's own registered model" in result.err
    assert [v.version for v in client.search_model_versions(f"name='{name}'")] == [version]
    assert alias_of(client, name) is None


def test_rollback_restores_previous_champion(gate, policy, register, client):
    name, first = register("good")
    _, second = register("good", name)
    for version in (first, second):
        assert gate("check", "--policy", str(policy()), "--model-uri", f"models:/{name}/{version}").code == 0
    assert alias_of(client, name) == second
    result = gate("rollback", "--model", name, "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out) == {"model": name, "alias": "champion", "from_version": second, "to_version": first}
    assert alias_of(client, name) == first
    assert client.get_model_version(name, second).tags["model_gate.status"] == "rolled-back"
    assert client.get_model_version(name, first).tags["model_gate.rollback_from"] == second


def test_rollback_without_history_is_usage_error(gate, policy, register):
    name, version = register("good")
    gate("check", "--policy", str(policy()), "--model-uri", f"models:/{name}/{version}")
    result = gate("rollback", "--model", name)
    assert result.code == 2
    assert "no recorded previous champion" in result.err


def test_resolve_alias_text(gate, policy, register, tracking_uri):
    name, version = register("good")
    gate("check", "--policy", str(policy()), "--model-uri", f"models:/{name}/{version}")
    result = gate("resolve", f"models:/{name}@champion")
    assert result.code == 0
    assert f"uri:          models:/{name}/{version}" in result.out
    assert "status:       READY" in result.out
    assert tracking_uri in result.err
    missing = gate("resolve", f"models:/{name}@nope")
    assert missing.code == 2 and "has no alias 'nope'" in missing.err and tracking_uri in missing.err
    unknown = gate("resolve", "models:/does-not-exist/1")
    assert unknown.code == 2 and "not found" in unknown.err


def _set_status(server, name: str, version: str, status: str) -> None:
    # The OSS registry marks versions READY at once; a real deployment's async registration
    # is reproduced by putting the status the server reports into its own database.
    with sqlite3.connect(server.workdir / "mlflow.db") as db:
        db.execute("UPDATE model_versions SET status=? WHERE name=? AND version=?", (status, name, int(version)))


def test_pending_version_times_out_with_exit_3(gate, policy, register, client, mlflow_server):
    name, version = register("good")
    _set_status(mlflow_server, name, version, "PENDING_REGISTRATION")
    path = policy(registry={"ready_timeout_s": 1.5, "poll_interval_s": 0.3})
    result = gate("check", "--policy", str(path), "--model-uri", f"models:/{name}/{version}")
    assert result.code == 3
    assert "still PENDING_REGISTRATION after 1.5s" in result.err
    assert alias_of(client, name) is None


def test_failed_registration_rejects(gate, policy, register, client, mlflow_server):
    name, version = register("good")
    _set_status(mlflow_server, name, version, "FAILED_REGISTRATION")
    result = gate("check", "--policy", str(policy()), "--model-uri", f"models:/{name}/{version}")
    assert result.code == 1 and "FAILED_REGISTRATION" in result.out + result.err
    assert alias_of(client, name) is None


def test_tracking_server_down_exit_3(gate, policy, monkeypatch):
    from servers import free_port

    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    result = gate("check", "--policy", str(policy()), "--model-uri", "models:/anything/1", "--tracking-uri", uri)
    assert result.code == 3
    assert f"cannot reach the tracking server at {uri}" in result.err


def test_credentials_never_printed(gate, policy, monkeypatch):
    from servers import free_port

    port = free_port()
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    result = gate("check", "--policy", str(policy()), "--model-uri", "models:/m/1",
                  "--tracking-uri", f"http://alice:s3cret-pass@127.0.0.1:{port}")
    assert result.code == 3
    assert "s3cret-pass" not in result.out + result.err
    assert f"http://***@127.0.0.1:{port}" in result.err


def test_register_local_folder_and_run_source(gate, tracking_uri, logged_models, tmp_path):
    import mlflow.sklearn

    from models import train_iris

    folder = tmp_path / "iris-folder"
    mlflow.sklearn.save_model(train_iris("good"), folder, serialization_format="pickle")
    name = "registered-from-folder"
    first = gate("register", "--name", name, "--source", str(folder))
    assert first.code == 0 and first.out.strip() == "1"
    second = gate("register", "--name", name, "--source", f"runs:/{logged_models['good'].run_id}/model", "--json")
    assert second.code == 0, second.err
    assert json.loads(second.out)["version"] == "2" and json.loads(second.out)["status"] == "READY"
    bad = gate("register", "--name", name, "--source", str(tmp_path / "missing"))
    assert bad.code == 2 and "not a folder" in bad.err
    # As a user runs it: the new version's number on stdout, and no MLflow banners around it.
    third = subprocess.run([sys.executable, "-m", "gate", "register", "--name", name, "--source", str(folder)],
                           capture_output=True, text=True, env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri})
    assert (third.returncode, third.stdout) == (0, "3\n"), third
    assert "View run" not in third.stderr and "View experiment" not in third.stderr, third.stderr


def test_local_folder_validated_then_registered(gate, policy, tmp_path, client):
    import mlflow.sklearn

    from models import train_iris

    folder = tmp_path / "candidate"
    mlflow.sklearn.save_model(train_iris("good"), folder, serialization_format="pickle")
    checked = gate("check", "--policy", str(policy()), "--model-uri", str(folder))
    assert checked.code == 0 and "passed (not a registry version" in checked.out
    registered = gate("check", "--policy", str(policy()), "--model-uri", str(folder), "--register-as", "from-folder")
    assert registered.code == 0, registered.out + registered.err
    assert alias_of(client, "from-folder") == "1"


def test_tracking_uri_flag_alone_is_enough(gate, policy, register, client, mlflow_server, monkeypatch, tmp_path):
    name, version = register("good")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.chdir(tmp_path)
    result = gate("check", "--policy", str(policy()), "--model-uri", f"models:/{name}/{version}",
                  "--tracking-uri", mlflow_server.url)
    assert result.code == 0, result.out + result.err
    assert alias_of(client, name) == version
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()
