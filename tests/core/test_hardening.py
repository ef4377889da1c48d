"""Cases found by trying to break the gate: each must be one line, the right exit code, and a registry
left as it was (or only re-check tags)."""

from __future__ import annotations

import json
import time

from test_gate_registry import alias_of


def test_unwritable_report_dir_is_refused_before_anything(gate, policy, register, client, tmp_path):
    name, version = register("good")
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    result = gate("check", "--policy", str(policy()), "--model-uri", f"models:/{name}/{version}",
                  "--report-dir", str(blocker / "sub"))
    assert result.code == 2 and "--report-dir" in result.err and "Traceback" not in result.err
    assert alias_of(client, name) is None


def test_bad_tracking_uri_scheme_hides_the_password(gate, policy):
    result = gate("check", "--policy", str(policy()), "--model-uri", "models:/m/1", "--dry-run",
                  "--tracking-uri", "htps://alice:s3cr3tPW@mlflow.example.com")
    assert result.code == 2
    assert "unsupported scheme 'htps'" in result.err
    assert "s3cr3tPW" not in result.out + result.err


def test_malformed_tracking_uris_are_one_line_usage_errors(gate, policy):
    for uri, fragment in [("http://alice:s3cr3tPW@127.0.0.1:99999", "port 99999 is out of range"),
                          ("http://alice:s3cr3tPW@[::1:5000", "unclosed '['"),
                          ("http://127.0.0.1:5000 ", "white space")]:
        result = gate("check", "--policy", str(policy()), "--model-uri", "models:/m/1", "--dry-run",
                      "--tracking-uri", uri)
        assert result.code == 2, (uri, result.err)
        assert fragment in result.err and "Traceback" not in result.err
        assert "s3cr3tPW" not in result.out + result.err


def test_regating_the_champion_keeps_its_promotion_record(gate, policy, register, client):
    name, first = register("good")
    _, second = register("good", name)
    for version in (first, second):
        assert gate("check", "--policy", str(policy()), "--model-uri", f"models:/{name}/{version}").code == 0
    again = gate("check", "--policy", str(policy()), "--model-uri", f"models:/{name}@champion")
    assert again.code == 0 and "already holds alias 'champion'" in again.out
    tags = client.get_model_version(name, second).tags
    assert tags["model_gate.previous_champion"] == first and tags["model_gate.recheck_status"] == "passed"
    # A failing re-check is recorded beside the promotion record, which stays.
    strict = policy(thresholds={"accuracy": {"direction": "higher", "min": 0.99}})
    assert gate("check", "--policy", str(strict), "--model-uri", f"models:/{name}@champion").code == 1
    tags = client.get_model_version(name, second).tags
    assert tags["model_gate.status"] == "promoted" and tags["model_gate.recheck_status"] == "rejected"
    assert "threshold.accuracy" in tags["model_gate.recheck_failed_checks"]
    rolled = gate("rollback", "--model", name, "--json")
    assert rolled.code == 0 and json.loads(rolled.out)["to_version"] == first


def test_register_checks_the_source_before_creating_anything(gate, client, tracking_uri):
    from mlflow.exceptions import MlflowException

    missing_run = gate("register", "--name", "never-created", "--source", "runs:/0123456789abcdef0123456789abcdef/model")
    assert missing_run.code == 2 and "not found" in missing_run.err
    missing_model = gate("register", "--name", "never-created", "--source", "models:/m-0123456789abcdef0123456789abcdef")
    assert missing_model.code == 2
    try:
        client.get_registered_model("never-created")
        raise AssertionError("a failed registration created the registered model")
    except MlflowException:
        pass


def test_dataset_not_matching_the_model_schema_is_one_line(gate, policy, register, tmp_path):
    name, version = register("good")
    data = tmp_path / "renamed.csv"
    data.write_text("sepal_len,sepal_width,petal_length,petal_width,target\n5.1,3.5,1.4,0.2,0\n6.2,2.9,4.3,1.3,1\n")
    evaluation = {"dataset": str(data), "target": "target", "task": "classification", "metrics": ["accuracy"]}
    result = gate("check", "--policy", str(policy(evaluation=evaluation)), "--model-uri", f"models:/{name}/{version}",
                  "--format", "json")
    assert result.code == 1
    check = next(c for c in json.loads(result.out)["checks"] if c["name"] == "evaluation")
    assert check["status"] == "error"
    assert "does not match the model's input schema" in check["message"] and "\n" not in check["message"]


def _gate_process(policy_path, uri, tracking_uri, **popen):
    import os
    import subprocess
    import sys

    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}
    return subprocess.Popen([sys.executable, "-m", "gate", "check", "--policy", str(policy_path), "--model-uri", uri,
                             "--dry-run"], env=env, **popen)


def test_a_reader_that_goes_away_does_not_change_the_verdict(policy, register, tracking_uri):
    import subprocess

    name, version = register("good")
    process = _gate_process(policy(), f"models:/{name}/{version}", tracking_uri,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    process.stdout.close()  # like `model-gate check ... | head -0`
    assert process.wait(timeout=300) == 0


def _children(pid: int) -> set[int]:
    from pathlib import Path

    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def test_sigterm_unwinds_and_kills_the_model_process(policy, register, tracking_uri):
    import os
    import signal
    import subprocess
    import time

    name, version = register("hanging")
    cases = [{"name": "one-row", "input": {"records": [{"x": 1.0}]}}]
    path = policy(smoke={"timeout_s": 600, "cases": cases}, evaluation=None, thresholds=None,
                  formats={"pickle": "allow"})
    process = _gate_process(path, f"models:/{name}/{version}", tracking_uri,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    workers = set()
    while time.monotonic() < deadline and not workers:  # wait until the model process exists
        workers = _children(process.pid)
        time.sleep(0.5)
    assert workers, "the gate never started a model process"
    time.sleep(8)  # let it reach the hanging predict
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 143
    assert "interrupted" in process.stderr.read()
    time.sleep(0.5)
    assert not any(os.path.exists(f"/proc/{pid}") and "Z" not in open(f"/proc/{pid}/stat").read().split()[2]
                   for pid in workers)


def test_names_that_uris_cannot_address_are_refused_before_any_write(gate, policy, register, client, tmp_path):
    from mlflow.exceptions import MlflowException

    import mlflow.sklearn

    from models import train_iris

    folder = tmp_path / "iris-folder"
    mlflow.sklearn.save_model(train_iris("good"), folder, serialization_format="pickle")
    for bad, fragment in (("iris@x", "contains '@'"), ("team/iris", "contains '/'"), (" iris", "white space"),
                          ("iris.model-gate-lock", "model-gate uses for its locks")):
        result = gate("register", "--name", bad, "--source", str(folder))
        assert result.code == 2 and f"--name: registered model name {bad!r}" in result.err and fragment in result.err
        try:
            client.get_registered_model(bad)
            raise AssertionError(f"{bad!r} was created")
        except MlflowException:
            pass
    # check --register-as: refused before the download and the model process, not after every check.
    started = time.monotonic()
    result = gate("check", "--policy", str(policy()), "--model-uri", str(folder), "--register-as", "bad/name")
    assert result.code == 2 and "--register-as: registered model name 'bad/name' contains '/'" in result.err
    assert "PASSED" not in result.out and time.monotonic() - started < 5


def test_rollback_refuses_reserved_aliases_without_touching_the_registry(gate, register, client):
    name, version = register("good")
    for alias in ("latest", "v1", "has space"):
        result = gate("rollback", "--model", name, "--alias", alias)
        assert result.code == 2 and "--alias: alias" in result.err, result.err
    assert client.get_registered_model(name).aliases == {}
    assert not any(k.startswith("model_gate.") for k in client.get_model_version(name, version).tags)


def test_a_token_in_the_tracking_uri_query_never_reaches_the_output(policy, tmp_path):
    import os
    import subprocess
    import sys

    from servers import free_port

    uri = f"http://127.0.0.1:{free_port()}/?token=q-s3cr3t-tok"  # nothing listens: urllib3 logs its retries
    for argv in (["check", "--policy", str(policy()), "--model-uri", "models:/m/1", "--dry-run",
                  "--report-dir", str(tmp_path / "reports")], ["resolve", "models:/m/1"]):
        quiet = subprocess.run([sys.executable, "-m", "gate", *argv], capture_output=True, text=True,
                               env={**os.environ, "MLFLOW_TRACKING_URI": uri})
        assert quiet.returncode == 3 and "Retrying" not in quiet.stderr  # urllib3's chatter only with -v
        done = subprocess.run([sys.executable, "-m", "gate", "-v", *argv], capture_output=True, text=True,
                              env={**os.environ, "MLFLOW_TRACKING_URI": uri})
        assert done.returncode == 3, done.stderr
        assert "Retrying" in done.stderr  # the library's own log lines are there, masked
        assert "q-s3cr3t-tok" not in done.stdout + done.stderr
    assert "q-s3cr3t-tok" not in (tmp_path / "reports" / "report.json").read_text()
