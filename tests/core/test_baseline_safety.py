"""A worse model must never get past a champion the gate could not compare it with, and mistakes
in the run's own setup (policy against dataset, report folder, flags) are exit 2 before anything."""

from __future__ import annotations

import json
from pathlib import Path

from servers import free_port
from test_gate_registry import alias_of

# Not imported from conftest: with tests/action collected too, "conftest" may be that folder's.
HOLDOUT = Path(__file__).resolve().parents[2] / "examples" / "data" / "iris-holdout.csv"

# Low enough that the depth-1 tree (accuracy 0.67) passes on its own: only the comparison stops it.
LENIENT = {"accuracy": {"direction": "higher", "min": 0.6, "max_regression_abs": 0.02}}


def _champion_and_worse(gate, policy, register) -> tuple[str, str]:
    name, good = register("good")
    _, bad = register("bad", name)
    assert gate("check", "--policy", str(policy()), "--model-uri", f"models:/{name}/{good}").code == 0
    return name, bad


def test_a_typo_in_the_baseline_alias_is_an_error_not_a_skipped_comparison(gate, policy, register, client):
    name, bad = _champion_and_worse(gate, policy, register)
    evaluation = {"dataset": str(HOLDOUT), "target": "target", "task": "classification", "metrics": ["accuracy"],
                  "baseline": {"alias": "champoin"}}
    result = gate("check", "--policy", str(policy(evaluation=evaluation, thresholds=LENIENT)),
                  "--model-uri", f"models:/{name}/{bad}")
    assert result.code == 2, result.err
    assert "evaluation.baseline.alias: model" in result.err and "'champoin'" in result.err
    assert alias_of(client, name) == "1"
    # The promotion alias itself may be named: the same comparison as by default.
    evaluation["baseline"] = {"alias": "champion"}
    named = gate("check", "--policy", str(policy(evaluation=evaluation, thresholds=LENIENT)),
                 "--model-uri", f"models:/{name}/{bad}", "--format", "json")
    assert named.code == 1
    accuracy = next(c for c in json.loads(named.out)["checks"] if c["name"] == "threshold.accuracy")
    assert accuracy["baseline"] > accuracy["value"] + 0.2


def test_a_champion_that_fails_on_the_dataset_fails_the_comparison(gate, policy, register, client, tmp_path):
    """The logistic regression champion raises on a NaN feature; the depth-1 tree does not. Skipping the
    comparison (on_missing_baseline: skip) used to promote the tree, 0.27 worse."""
    name, bad = _champion_and_worse(gate, policy, register)
    lines = HOLDOUT.read_text().splitlines()
    cells = lines[1].split(",")
    cells[0] = ""
    (tmp_path / "with-nan.csv").write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n")
    evaluation = {"dataset": str(tmp_path / "with-nan.csv"), "target": "target", "task": "classification",
                  "metrics": ["accuracy"]}
    thresholds = {"accuracy": {**LENIENT["accuracy"], "on_missing_baseline": "skip"}}
    result = gate("check", "--policy", str(policy(evaluation=evaluation, thresholds=thresholds)),
                  "--model-uri", f"models:/{name}/{bad}", "--format", "json")
    report = json.loads(result.out)
    checks = {c["name"]: c for c in report["checks"]}
    assert result.code == 1 and report["decision"] == "rejected"
    assert checks["baseline.evaluation"]["status"] == "warned" and "NaN" in checks["baseline.evaluation"]["message"]
    assert checks["baseline"]["status"] == "warned"
    accuracy = checks["threshold.accuracy"]
    assert accuracy["status"] == "failed" and accuracy["value"] < 0.7
    assert "cannot compare with baseline version 1" in accuracy["message"]
    assert "evaluation.baseline.enabled: false" in accuracy["message"]
    assert alias_of(client, name) == "1"
    # Turning the comparison off, as the message says, lets the absolute bound decide alone.
    evaluation["baseline"] = {"enabled": False}
    off = gate("check", "--policy", str(policy(evaluation=evaluation, thresholds=thresholds)),
               "--model-uri", f"models:/{name}/{bad}", "--dry-run")
    assert off.code == 0, off.out + off.err


def test_a_policy_the_dataset_contradicts_is_exit_2(gate, policy, register, tmp_path):
    name, version = register("good")
    binary = {"dataset": str(HOLDOUT), "target": "target", "task": "classification", "metrics": ["f1"],
              "average": "binary"}
    result = gate("check", "--policy", str(policy(evaluation=binary)), "--model-uri", f"models:/{name}/{version}",
                  "--dry-run")
    assert result.code == 2
    assert "evaluation.average: binary needs a target with two classes" in result.err and "has 3 (0, 1, 2)" in result.err
    wrong_label = {**binary, "average": "macro", "pos_label": 7}
    result = gate("check", "--policy", str(policy(evaluation=wrong_label)), "--model-uri",
                  f"models:/{name}/{version}", "--dry-run")
    assert result.code == 2 and "evaluation.pos_label: 7 is not a class" in result.err
    words = tmp_path / "words.csv"
    words.write_text("sepal_length,sepal_width,petal_length,petal_width,target\n5.1,3.5,1.4,0.2,small\n")
    regression = {"dataset": str(words), "target": "target", "task": "regression", "metrics": ["mae"]}
    result = gate("check", "--policy", str(policy(evaluation=regression, thresholds={
        "mae": {"direction": "lower", "max": 1.0}})), "--model-uri", f"models:/{name}/{version}", "--dry-run")
    assert result.code == 2 and "target column 'target' is not numeric" in result.err


def test_a_report_file_that_cannot_be_written_stops_the_gate_before_promotion(gate, policy, register, client,
                                                                             tmp_path):
    name, version = register("good")
    (tmp_path / "reports" / "report.json" / "inner").mkdir(parents=True)
    result = gate("check", "--policy", str(policy()), "--model-uri", f"models:/{name}/{version}",
                  "--report-dir", str(tmp_path / "reports"))
    assert result.code == 2 and "report.json is a folder" in result.err
    assert alias_of(client, name) is None
    assert not (tmp_path / "reports" / "report.md").exists()


def test_verbose_shows_the_traceback_and_keeps_the_exit_code(gate, tmp_path, tracking_uri):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    policy_error = gate("-vv", "check", "--policy", str(empty), "--model-uri", "models:/m/1")
    assert policy_error.code == 2
    assert "Traceback" in policy_error.err and "policy file is empty" in policy_error.err.splitlines()[-1]
    missing = gate("-vv", "resolve", "models:/no-such-model-anywhere/1", "--tracking-uri", tracking_uri)
    assert missing.code == 2 and "Traceback" in missing.err
    down = gate("-vv", "resolve", "models:/m/1", "--tracking-uri", f"http://127.0.0.1:{free_port()}")
    assert down.code == 3 and "Traceback" in down.err


def test_the_policy_tracking_uri_wins_over_the_environment(gate, policy, register, monkeypatch, tracking_uri):
    name, version = register("good")
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", dead)
    registry = {"tracking_uri": tracking_uri}
    result = gate("check", "--policy", str(policy(registry=registry)), "--model-uri", f"models:/{name}/{version}",
                  "--dry-run")
    assert result.code == 0, result.err
    assert f"tracking URI: {tracking_uri}" in result.err
    # The flag still wins over both; an explicitly empty flag is a mistake, not "use the environment".
    flagged = gate("check", "--policy", str(policy(registry=registry)), "--model-uri", f"models:/{name}/{version}",
                   "--dry-run", "--tracking-uri", dead)
    assert flagged.code == 3 and dead in flagged.err
    empty = gate("check", "--policy", str(policy()), "--model-uri", f"models:/{name}/{version}", "--tracking-uri", "")
    assert empty.code == 2 and "--tracking-uri" in empty.err and "is empty" in empty.err


def test_a_dataset_the_model_schema_refuses_names_the_columns(gate, policy, register, tmp_path):
    name, version = register("good")
    data = tmp_path / "renamed.csv"
    data.write_text("a,sepal_width,petal_length,petal_width,target\n5.1,3.5,1.4,0.2,0\n6.2,2.9,4.3,1.3,1\n")
    evaluation = {"dataset": str(data), "target": "target", "task": "classification", "metrics": ["accuracy"]}
    result = gate("check", "--policy", str(policy(evaluation=evaluation)), "--model-uri", f"models:/{name}/{version}",
                  "--format", "json", "--dry-run")
    check = next(c for c in json.loads(result.out)["checks"] if c["name"] == "evaluation")
    assert result.code == 1
    assert "missing inputs ['sepal_length']" in check["message"] and "extra inputs: ['a']" in check["message"]
    assert "5.1" not in check["message"]  # not the frame MLflow prints
