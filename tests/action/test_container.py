"""The real image, built with podman and run the way the Actions runner runs it:
--workdir /github/workspace with the workspace mounted, INPUT_* and GITHUB_*
variables, the file-command folder mounted, host networking to reach MLflow on
loopback. Slow (the first build installs torch), so marked `container`."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from workspace import REPO, make_workspace
from runner import parse_commands, parse_output_file

pytestmark = [pytest.mark.container, pytest.mark.timeout(1800)]

IMAGE = os.environ.get("MODEL_GATE_TEST_IMAGE", "localhost/model-gate:test")
WORKSPACE_OWNER = (1001, 127)


@pytest.fixture(scope="module")
def podman_env() -> dict[str, str]:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("podman cannot be set up here: needs root and apt-get (CI has both)")
    setup = subprocess.run(["bash", str(REPO / "scripts/container-setup.sh"), "--print-env"],
                           capture_output=True, text=True, timeout=900)
    assert setup.returncode == 0, setup.stderr[-3000:]
    env = dict(os.environ)
    env.update(line.split("=", 1) for line in setup.stdout.splitlines() if "=" in line)
    return env


@pytest.fixture(scope="module")
def image(podman_env) -> str:
    started = time.monotonic()
    build = subprocess.run(["bash", str(REPO / "scripts/build-image.sh")], env={**podman_env, "IMAGE": IMAGE},
                           capture_output=True, text=True, timeout=1500)
    assert build.returncode == 0, build.stderr[-5000:]
    size = subprocess.run(["podman", "image", "inspect", "--format", "{{.Size}}", IMAGE], env=podman_env,
                          capture_output=True, text=True, check=True).stdout.strip()
    print(f"\nimage {IMAGE}: built in {time.monotonic() - started:.0f}s, {int(size) / 1e6:.0f} MB")
    return IMAGE


def run_action(podman_env, image: str, tmp_path: Path, inputs: dict[str, str],
               extra_env: dict[str, str] | None = None, before_run=None):
    """`docker run` as the runner issues it for a container action."""
    workspace = make_workspace(tmp_path)
    if before_run is not None:
        before_run(workspace)
    os.chown(workspace, *WORKSPACE_OWNER)
    commands, home = tmp_path / "file_commands", tmp_path / "home"
    commands.mkdir()
    home.mkdir()
    (commands / "set_output").touch()
    (commands / "step_summary").touch()
    env = {
        "HOME": "/github/home", "GITHUB_ACTIONS": "true", "CI": "true", "GITHUB_WORKSPACE": "/github/workspace",
        "GITHUB_OUTPUT": "/github/file_commands/set_output",
        "GITHUB_STEP_SUMMARY": "/github/file_commands/step_summary",
        "GITHUB_REPOSITORY": "octo/models", "GITHUB_RUN_ID": "42", "GITHUB_SHA": "0" * 40,
        **inputs, **(extra_env or {}),
    }
    argv = ["podman", "run", "--rm", "--runtime", "runc", "--network", "host", "--workdir", "/github/workspace",
            "-v", f"{workspace}:/github/workspace", "-v", f"{commands}:/github/file_commands",
            "-v", f"{home}:/github/home"]
    for name, value in env.items():
        argv += ["-e", f"{name}={value}"]
    started = time.monotonic()
    process = subprocess.run([*argv, image], env=podman_env, capture_output=True, text=True, timeout=600)
    print(f"container run: exit {process.returncode} in {time.monotonic() - started:.1f}s")
    outputs = parse_output_file((commands / "set_output").read_text())
    summary = (commands / "step_summary").read_text()
    return process, outputs, summary, workspace


def test_a_good_model_is_promoted_and_the_outputs_file_is_right(podman_env, image, registry, tmp_path):
    uri = registry.register("iris-container-good", "good")
    process, outputs, summary, workspace = run_action(podman_env, image, tmp_path, {
        "INPUT_POLICY": "policies/iris.yaml", "INPUT_MODEL-URI": uri, "INPUT_TRACKING-URI": registry.url,
        "INPUT_DRY-RUN": "false", "INPUT_REPORT-DIR": "model-gate-report",
    })
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    assert outputs == {
        "decision": "promoted", "model-name": "iris-container-good", "model-version": uri.rsplit("/", 1)[1],
        "previous-version": "", "report-json": "model-gate-report/report.json",
        "report-markdown": "model-gate-report/report.md",
    }
    assert summary.startswith("## model-gate: ✅ promoted")
    report = workspace / "model-gate-report" / "report.json"
    assert report.is_file()
    assert (report.stat().st_uid, report.stat().st_gid) == WORKSPACE_OWNER


def test_a_bad_model_exits_1(podman_env, image, registry, tmp_path):
    uri = registry.register("iris-container-bad", "bad")
    process, outputs, _, _ = run_action(podman_env, image, tmp_path, {
        "INPUT_POLICY": "policies/iris.yaml", "INPUT_MODEL-URI": uri, "INPUT_TRACKING-URI": registry.url,
        "INPUT_DRY-RUN": "true",
    })
    assert process.returncode == 1, process.stdout[-3000:] + process.stderr[-3000:]
    assert outputs["decision"] == "rejected"
    assert any(c.name == "error" and "threshold.accuracy" in c.properties.get("title", "")
               for c in parse_commands(process.stdout))


def test_a_missing_input_exits_2(podman_env, image, tmp_path):
    process, outputs, _, _ = run_action(podman_env, image, tmp_path, {"INPUT_POLICY": "policies/iris.yaml"})
    assert process.returncode == 2, process.stdout + process.stderr
    assert outputs == {"decision": "error"}
    errors = [c.message for c in parse_commands(process.stdout) if c.name == "error"]
    assert errors == ["input 'model-uri' is required and was not supplied"]


def test_a_hostile_path_and_pythonpath_change_nothing(podman_env, image, registry, tmp_path):
    uri = registry.register("iris-container-path", "good")
    stray = tmp_path / "stray"
    stray.mkdir()
    process, outputs, _, _ = run_action(podman_env, image, tmp_path, {
        "INPUT_POLICY": "policies/iris.yaml", "INPUT_MODEL_URI": uri, "INPUT_TRACKING_URI": registry.url,
        "INPUT_DRY_RUN": "true",
    }, {"PATH": "/nonexistent", "PYTHONPATH": "/github/workspace/stray", "PYTHONHOME": "/nonexistent"})
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    assert outputs["decision"] == "dry-run-passed"


def test_model_code_runs_as_another_user_and_reaches_no_secret(podman_env, image, registry, tmp_path):
    """The image runs model code as model-code (uid 65532): it cannot read the gate's /proc files nor
    write the runner's output file, although the gate itself runs as root."""
    import mlflow
    import yaml

    mlflow.set_tracking_uri(registry.url)
    mlflow.set_experiment("container-tests")
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=str(Path(__file__).parent / "model_code" / "uid_probe.py"),
                                       pip_requirements=["mlflow"], registered_model_name="uid-probe")
    uri = f"models:/uid-probe/{info.registered_model_version}"
    policy = {"version": 1, "formats": {"pickle": "allow"}, "smoke": {"cases": [
        {"name": "uid", "input": {"records": [{"x": 1.0}]}, "expect": {"rows": 1, "values": [65532]}}]}}
    workspace_policy = tmp_path / "probe.yaml"
    workspace_policy.write_text(yaml.safe_dump(policy))
    process, outputs, _, workspace = run_action(podman_env, image, tmp_path, {
        "INPUT_POLICY": "policies/probe.yaml", "INPUT_MODEL-URI": uri, "INPUT_TRACKING-URI": registry.url,
        "INPUT_TRACKING-TOKEN": "probe-token-123", "INPUT_DRY-RUN": "true",
    }, before_run=lambda ws: shutil.copy(workspace_policy, ws / "policies" / "probe.yaml"))
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    assert outputs["decision"] == "dry-run-passed"
    # Only in the command that tells the runner to mask it.
    leaked = [line for line in (process.stdout + process.stderr).splitlines()
              if "probe-token-123" in line and line != "::add-mask::probe-token-123"]
    assert leaked == []
