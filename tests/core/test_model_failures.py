"""Model code that raises, hangs, kills its process or returns garbage: exit 1, and the gate survives."""

from __future__ import annotations

import json
import re
from pathlib import Path
import time

import pytest
import yaml


def smoke_only(policy, **smoke):
    cases = [{"name": "one-row", "input": {"records": [{"x": 1.0}]}, "expect": {"rows": 1, "finite": True}}]
    return policy(smoke={"timeout_s": smoke.get("timeout_s", 30), "cases": cases}, evaluation=None,
                  thresholds=None, load={"timeout_s": smoke.get("load_timeout_s", 60)}, formats={"pickle": "allow"})


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("raising", "raised RuntimeError: feature store unavailable"),
        ("killing", "was killed by signal SIGKILL during smoke case 'one-row'"),
        ("nan_output", "1 output values are NaN or infinite"),
    ],
)
def test_broken_predict_rejects(kind, expected, gate, policy, register, client, tmp_path):
    name, version = register(kind)
    result = gate("check", "--policy", str(smoke_only(policy)), "--model-uri", f"models:/{name}/{version}",
                  "--report-dir", str(tmp_path))
    assert result.code == 1, result.out + result.err
    assert expected in result.out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["decision"] == "rejected"
    assert client.get_registered_model(name).aliases == {}


def test_hanging_predict_times_out(gate, policy, register):
    name, version = register("hanging")
    started = time.monotonic()
    result = gate("check", "--policy", str(smoke_only(policy, timeout_s=3)), "--model-uri", f"models:/{name}/{version}")
    assert result.code == 1
    assert "smoke case 'one-row' timed out after 3s; the model process was killed" in result.out
    assert time.monotonic() - started < 60


def test_hanging_load_times_out(gate, policy, register):
    name, version = register("slow_loading")
    result = gate("check", "--policy", str(smoke_only(policy, load_timeout_s=4)), "--model-uri", f"models:/{name}/{version}")
    assert result.code == 1
    assert "loading the candidate model timed out after 4s" in result.out


def test_smoke_expectations_name_each_failure(gate, policy, register):
    name, version = register("good")
    cases = [{
        "name": "wrong-expectations",
        "input": {"records": [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]},
        "expect": {"rows": 2, "values": [2], "output_type": "dataframe"},
    }]
    result = gate("check", "--policy", str(policy(smoke={"cases": cases})), "--model-uri", f"models:/{name}/{version}")
    assert result.code == 1
    assert "expected 2 output rows, got 1" in result.out
    assert "value 0 is 0, expected 2" in result.out
    assert "output type is ndarray, expected dataframe" in result.out


def test_bad_dataset_is_usage_error(gate, policy, register, tmp_path):
    name, version = register("good")
    broken = tmp_path / "holdout.csv"
    broken.write_text("a,b\n1,2\n")
    evaluation = {"dataset": str(broken), "target": "target", "task": "classification"}
    result = gate("check", "--policy", str(policy(evaluation=evaluation)), "--model-uri", f"models:/{name}/{version}")
    assert result.code == 2
    assert "target column 'target' not found" in result.err


def test_model_code_does_not_see_credentials_or_runner_files(gate, policy, register, tmp_path, monkeypatch):
    name, version = register("env_probe")
    probe = tmp_path / "seen.json"
    monkeypatch.setenv("ENV_PROBE_FILE", str(probe))
    for variable in ("MLFLOW_TRACKING_TOKEN", "AWS_SECRET_ACCESS_KEY", "GITHUB_OUTPUT", "GITHUB_ENV",
                     "INPUT_TRACKING-TOKEN", "MY_SERVICE_PASSWORD", "FEATURE_STORE_TOKEN"):
        monkeypatch.setenv(variable, "probe-value")
    path = smoke_only(policy)
    data = yaml.safe_load(path.read_text())
    data["load"]["pass_env"] = ["FEATURE_STORE_TOKEN"]  # a secret the model legitimately needs
    path.write_text(yaml.safe_dump(data))
    result = gate("check", "--policy", str(path), "--model-uri", f"models:/{name}/{version}", "--dry-run")
    assert result.code == 0, result.out + result.err
    seen = set(json.loads(probe.read_text()))
    assert "FEATURE_STORE_TOKEN" in seen and "ENV_PROBE_FILE" in seen and "PATH" in seen
    for withheld in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_URI", "AWS_SECRET_ACCESS_KEY", "GITHUB_OUTPUT",
                     "GITHUB_ENV", "INPUT_TRACKING-TOKEN", "MY_SERVICE_PASSWORD"):
        assert withheld not in seen, withheld


def test_model_code_that_writes_to_runner_files_is_rejected_and_undone(gate, policy, register, client, tmp_path,
                                                                      monkeypatch):
    name, version = register("runner_tamper")
    github_env = tmp_path / "github_env"
    github_env.write_text("KEEP=1\n")
    monkeypatch.setenv("GITHUB_ENV", str(github_env))
    monkeypatch.setenv("TAMPER_FILE", str(github_env))  # the model "guessed" the path
    result = gate("check", "--policy", str(smoke_only(policy)), "--model-uri", f"models:/{name}/{version}")
    assert result.code == 1, result.out + result.err
    assert "model code wrote to the runner's command file(s) $GITHUB_ENV (put back as it was)" in result.out
    assert github_env.read_text() == "KEEP=1\n"
    assert "champion" not in client.get_registered_model(name).aliases


def test_a_daemon_model_code_leaves_behind_is_killed_before_it_can_write(gate, policy, register, tmp_path,
                                                                         monkeypatch):
    import os

    name, version = register("daemonizing")
    github_env, pid_file = tmp_path / "github_env", tmp_path / "daemon.pid"
    github_env.write_text("KEEP=1\n")
    for variable, value in (("GITHUB_ENV", github_env), ("TAMPER_FILE", github_env), ("DAEMON_PID_FILE", pid_file)):
        monkeypatch.setenv(variable, str(value))
    result = gate("check", "--policy", str(smoke_only(policy)), "--model-uri", f"models:/{name}/{version}", "--dry-run")
    assert result.code == 0, result.out + result.err
    # the daemon, and its parent too when it had not finished exiting
    assert re.search(r"WARNED +load\.leftovers +model code left [12] process\(es\) running after it was stopped; "
                     "they were killed", result.out), result.out
    daemon = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(daemon, 0)  # gone (and reaped), not a zombie
    time.sleep(3.5)  # past the moment it would have written
    assert github_env.read_text() == "KEEP=1\n"


def test_model_code_cannot_read_the_gate_environment(tracking_uri, policy, register, tmp_path):
    """Model code running as the gate's user finds no credentials in /proc/<gate>/environ: refused (the gate
    is non-dumpable) or masked (root may still open it). As root the gate runs here without CAP_SYS_PTRACE,
    as in a default Docker or podman container. The gate itself still used the withheld tracking URI."""
    import ctypes
    import os
    import subprocess
    import sys

    name, version = register("parent_probe")
    probe = tmp_path / "seen.txt"
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_TRACKING_PASSWORD": "probe-secret-4711",
           "ENV_PROBE_FILE": str(probe)}
    like_a_container = None
    if os.geteuid() == 0:
        def like_a_container():
            pr_capbset_drop, cap_sys_ptrace = 24, 19  # from <linux/prctl.h> and <linux/capability.h>
            if ctypes.CDLL(None, use_errno=True).prctl(pr_capbset_drop, cap_sys_ptrace, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "cannot drop CAP_SYS_PTRACE")
    result = subprocess.run([str(Path(sys.executable).parent / "model-gate"), "check", "--policy",
                             str(smoke_only(policy)), "--model-uri", f"models:/{name}/{version}", "--dry-run"],
                            env=env, preexec_fn=like_a_container, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    seen = probe.read_text()
    assert "probe-secret-4711" not in seen
    assert tracking_uri not in seen
    if os.geteuid() == 0:
        assert "\0MLFLOW_TRACKING_PASSWORD=" + "*" * len("probe-secret-4711") + "\0" in seen
    else:
        assert seen.startswith("refused: Permission denied"), seen[:200]
