"""entrypoint.py run the way the runner runs it: INPUT_* and GITHUB_* in the
environment, temp GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files, read back with
runner-like parsers. The gate itself runs for real against MLflow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from workspace import REPO, make_workspace, runner_files
from runner import parse_commands, parse_output_file

WORKSPACE_OWNER = (1001, 127)  # the runner user's uid/gid on GitHub's hosted runners


def run_entrypoint(tmp_path: Path, inputs: dict[str, str], extra_env: dict[str, str] | None = None):
    workspace = tmp_path / "workspace"
    if not workspace.exists():
        workspace = make_workspace(tmp_path)
    files = runner_files(tmp_path)
    env = {
        "PATH": os.environ["PATH"], "HOME": str(tmp_path), "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(workspace), **{k: str(v) for k, v in files.items()}, **inputs, **(extra_env or {}),
    }
    process = subprocess.run([sys.executable, "-I", str(REPO / "entrypoint.py")], cwd=workspace, env=env,
                             capture_output=True, text=True, timeout=300)
    outputs = parse_output_file(files["GITHUB_OUTPUT"].read_text())
    summary = files["GITHUB_STEP_SUMMARY"].read_text()
    return process, outputs, summary, workspace


def annotations(process, level: str):
    return [c for c in parse_commands(process.stdout) if c.name == level]


def test_missing_required_input_exits_2_with_an_annotation_and_masks_first(tmp_path):
    token = "s3cr3t-line-one\ns3cr3t-line-two"
    process, outputs, _, _ = run_entrypoint(tmp_path, {
        "INPUT_POLICY": "policies/iris.yaml", "INPUT_MODEL-URI": "", "INPUT_DRY-RUN": "false",
        "INPUT_TRACKING-URI": "https://gate:pa%3Ass@mlflow.example.com",
    }, {"MLFLOW_TRACKING_TOKEN": token, "AWS_SECRET_ACCESS_KEY": "aws-secret-value"})
    assert process.returncode == 2
    commands = parse_commands(process.stdout)
    masks = [c.message for c in commands if c.name == "add-mask"]
    assert masks == ["s3cr3t-line-one", "s3cr3t-line-two", "aws-secret-value", "pa%3Ass", "pa:ss"]
    # Every mask comes before the first line that is not a mask.
    first_other = next(i for i, c in enumerate(commands) if c.name != "add-mask")
    assert all(c.name == "add-mask" for c in commands[:first_other]) and first_other == len(masks)
    errors = annotations(process, "error")
    assert [e.message for e in errors] == ["input 'model-uri' is required and was not supplied"]
    assert outputs == {"decision": "error"}
    for secret in ("s3cr3t-line-one", "aws-secret-value"):
        assert secret not in process.stdout.replace(f"::add-mask::{secret}", "") + process.stderr


def test_a_boolean_input_other_than_true_or_false_exits_2_naming_it(tmp_path):
    process, outputs, _, _ = run_entrypoint(tmp_path, {
        "INPUT_POLICY": "policies/iris.yaml", "INPUT_MODEL_URI": "models:/x/1", "INPUT_DRY_RUN": "yes",
    })
    assert process.returncode == 2
    assert [e.message for e in annotations(process, "error")] == ["input 'dry-run' must be true or false, got 'yes'"]
    assert outputs["decision"] == "error"


def test_a_policy_error_from_the_cli_exits_2_with_its_line_as_annotation(tmp_path, registry):
    process, outputs, summary, _ = run_entrypoint(tmp_path, {
        "INPUT_POLICY": "policies/missing.yaml", "INPUT_MODEL-URI": "models:/iris/1",
        "INPUT_TRACKING-URI": registry.url,
    })
    assert process.returncode == 2, process.stderr
    errors = annotations(process, "error")
    assert len(errors) == 1 and "missing.yaml" in errors[0].message
    assert outputs["decision"] == "error"
    assert "missing.yaml" in summary


@pytest.mark.slow
def test_a_good_model_is_promoted_with_outputs_summary_and_files_owned_by_the_workspace_owner(tmp_path, registry):
    uri = registry.register("iris-entrypoint-good", "good")
    workspace = make_workspace(tmp_path)
    os.chown(workspace, *WORKSPACE_OWNER)
    process, outputs, summary, _ = run_entrypoint(tmp_path, {
        "INPUT_POLICY": "policies/iris.yaml", "INPUT_MODEL-URI": uri, "INPUT_TRACKING-URI": registry.url,
        "INPUT_DRY-RUN": "false", "INPUT_REPORT-DIR": "reports/gate",
    }, {"PYTHONPATH": "/nonexistent/stray"})
    assert process.returncode == 0, process.stdout + process.stderr
    name, version = uri.removeprefix("models:/").split("/")
    assert outputs == {
        "decision": "promoted", "model-name": name, "model-version": version, "previous-version": "",
        "report-json": "reports/gate/report.json", "report-markdown": "reports/gate/report.md",
    }
    assert summary.startswith("## model-gate: ✅ promoted")
    assert annotations(process, "error") == []
    # The CLI's log is inside a group and behind stop-commands.
    assert "::group::model-gate check" in process.stdout and "::endgroup::" in process.stdout
    written = [workspace / "reports", *sorted((workspace / "reports").rglob("*"))]
    assert {p.name for p in written} >= {"reports", "gate", "report.json", "report.md", "report.junit.xml"}
    assert {(p.stat().st_uid, p.stat().st_gid) for p in written} == {WORKSPACE_OWNER}


@pytest.mark.slow
def test_a_bad_model_is_rejected_with_exit_1_and_an_error_annotation_per_failed_check(tmp_path, registry):
    uri = registry.register("iris-entrypoint-bad", "bad")
    process, outputs, summary, _ = run_entrypoint(tmp_path, {
        "INPUT_POLICY": "policies/iris.yaml", "INPUT_MODEL-URI": uri, "INPUT_TRACKING-URI": registry.url,
        "INPUT_DRY-RUN": "true",
    })
    assert process.returncode == 1, process.stdout + process.stderr
    assert outputs["decision"] == "rejected"
    assert outputs["report-json"] == "model-gate-report/report.json"
    errors = annotations(process, "error")
    titles = [e.properties["title"] for e in errors]
    assert any(t.startswith("model-gate threshold.accuracy: iris-entrypoint-bad v") for t in titles), titles
    assert summary.startswith("## model-gate: ❌ rejected")


def aliases(registry, uri: str) -> dict:
    from mlflow import MlflowClient

    return dict(MlflowClient(registry.url).get_registered_model(uri.removeprefix("models:/").split("/")[0]).aliases)


@pytest.mark.slow
def test_an_empty_dry_run_input_exits_2_and_promotes_nothing(tmp_path, registry):
    # `dry-run: ${{ vars.DRY_RUN }}` with the variable unset: the runner passes '' (a missing
    # input would get action.yml's default, "false"), so '' must not mean false.
    uri = registry.register("iris-entrypoint-empty-dry-run", "good")
    for value in ("", "  "):
        process, outputs, _, _ = run_entrypoint(tmp_path, {
            "INPUT_POLICY": "policies/iris.yaml", "INPUT_MODEL-URI": uri, "INPUT_TRACKING-URI": registry.url,
            "INPUT_DRY-RUN": value,
        })
        assert process.returncode == 2, process.stdout + process.stderr
        assert [e.message for e in annotations(process, "error")] == ["input 'dry-run' must be true or false, got ''"]
        assert outputs == {"decision": "error"}
        assert "::group::model-gate check" not in process.stdout
    assert aliases(registry, uri) == {}


NO_REPORT_OUTPUTS = {"decision": "error", "model-name": "", "model-version": "", "previous-version": "",
                     "report-json": "", "report-markdown": ""}


@pytest.mark.slow
@pytest.mark.parametrize("quality, first_code, first_decision", [("good", 0, "dry-run-passed"), ("bad", 1, "rejected")])
def test_an_early_failure_never_reports_the_report_an_earlier_run_left(tmp_path, registry, quality, first_code,
                                                                       first_decision):
    uri = registry.register(f"iris-entrypoint-stale-{quality}", quality)
    inputs = {"INPUT_POLICY": "policies/iris.yaml", "INPUT_MODEL-URI": uri, "INPUT_TRACKING-URI": registry.url,
              "INPUT_DRY-RUN": "true"}
    first, outputs, _, workspace = run_entrypoint(tmp_path, inputs)
    assert (first.returncode, outputs["decision"]) == (first_code, first_decision), first.stdout + first.stderr
    reports = workspace / "model-gate-report"
    assert (reports / "report.json").is_file()

    # The same step again (a re-run, a self-hosted runner's kept workspace), failing before any report.
    process, outputs, summary, _ = run_entrypoint(tmp_path, {**inputs, "INPUT_POLICY": "policies/missing.yaml"})
    assert process.returncode == 2, process.stdout + process.stderr
    assert outputs == NO_REPORT_OUTPUTS
    errors = annotations(process, "error")
    assert [e.properties["title"] for e in errors] == ["model-gate: error"]
    assert "policies/missing.yaml" in errors[0].message
    assert annotations(process, "warning") == []
    assert summary.startswith("## model-gate: error\n") and "missing.yaml" in summary
    assert sorted(p.name for p in reports.iterdir()) == []


@pytest.mark.parametrize("report_dir, message", [
    ("notes.txt", "input 'report-dir': notes.txt is a file, not a folder"),
    ("notes.txt/reports", "input 'report-dir': cannot create notes.txt/reports: Not a directory"),
])
def test_a_report_dir_that_cannot_be_a_folder_exits_2_naming_the_input_before_the_gate_runs(tmp_path, registry,
                                                                                            report_dir, message):
    workspace = make_workspace(tmp_path)
    (workspace / "notes.txt").write_text("keep me\n")
    process, outputs, _, _ = run_entrypoint(tmp_path, {
        "INPUT_POLICY": "policies/iris.yaml", "INPUT_MODEL-URI": "models:/iris-entrypoint-none/1",
        "INPUT_TRACKING-URI": registry.url, "INPUT_DRY-RUN": "true", "INPUT_REPORT-DIR": report_dir,
    })
    assert process.returncode == 2, process.stdout + process.stderr
    assert [e.message for e in annotations(process, "error")] == [message]
    assert outputs == {"decision": "error"}
    assert "Traceback" not in process.stderr and "::group::" not in process.stdout
    assert (workspace / "notes.txt").read_text() == "keep me\n"


@pytest.mark.parametrize("variable", ["GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"])
@pytest.mark.parametrize("where", ["missing folder", "a directory"])
def test_a_runner_file_that_cannot_be_written_exits_3_in_one_line_before_the_gate_runs(tmp_path, registry,
                                                                                      variable, where):
    path, reason = ((tmp_path / "gone" / "file", "No such file or directory") if where == "missing folder"
                    else (tmp_path, "Is a directory"))
    process, _, _, _ = run_entrypoint(tmp_path, {
        "INPUT_POLICY": "policies/iris.yaml", "INPUT_MODEL-URI": "models:/iris-entrypoint-none/1",
        "INPUT_TRACKING-URI": registry.url, "INPUT_DRY-RUN": "true",
    }, {variable: str(path)})
    assert process.returncode == 3, process.stdout + process.stderr
    assert process.stdout.splitlines() == [
        f"::error title=model-gate%3A runner file::cannot write {variable} {path}: {reason}"]
    assert process.stderr == ""


def test_a_summary_that_cannot_be_written_after_the_gate_exits_3_naming_the_decision(tmp_path, registry):
    process, outputs, _, _ = run_entrypoint(tmp_path, {
        "INPUT_POLICY": "policies/missing.yaml", "INPUT_MODEL-URI": "models:/iris-entrypoint-none/1",
        "INPUT_TRACKING-URI": registry.url,
    }, {"GITHUB_STEP_SUMMARY": "/dev/full"})  # opens fine, every write fails: a full disk
    assert process.returncode == 3, process.stdout + process.stderr
    assert annotations(process, "error")[-1].message == (
        "cannot write GITHUB_STEP_SUMMARY /dev/full: No space left on device; the gate's decision was error (exit 2)")
    assert outputs == NO_REPORT_OUTPUTS
    assert "Traceback" not in process.stderr


@pytest.mark.parametrize("value, message", [
    ("keys/missing.pub.pem", "input 'public-key': keys/missing.pub.pem not found"),
    ("policies", "input 'public-key': policies is not a file"),
    ("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n",
     "input 'public-key' is the path of a PEM file in the workspace, not the key itself: "
     "commit the key (e.g. keys/model-signing.pub.pem) and pass its path"),
])
def test_a_wrong_public_key_exits_2_naming_the_input_before_the_gate_runs(tmp_path, registry, value, message):
    # examples/policies/iris.yaml does not use ${MODEL_GATE_PUBLIC_KEY}: the input is checked anyway.
    process, outputs, _, _ = run_entrypoint(tmp_path, {
        "INPUT_POLICY": "policies/iris.yaml", "INPUT_MODEL-URI": "models:/iris-entrypoint-none/1",
        "INPUT_TRACKING-URI": registry.url, "INPUT_DRY-RUN": "true", "INPUT_PUBLIC-KEY": value,
    })
    assert process.returncode == 2, process.stdout + process.stderr
    assert [e.message for e in annotations(process, "error")] == [message]
    assert outputs == {"decision": "error"}
    assert "::group::" not in process.stdout


@pytest.mark.slow
def test_paths_outside_the_workspace_are_used_with_a_warning_and_absolute_report_outputs(tmp_path, registry):
    uri = registry.register("iris-entrypoint-outside", "good")
    workspace = make_workspace(tmp_path)
    shared = make_workspace(tmp_path / "shared")  # policy + data where a self-hosted runner might keep them
    (shared / "key.pub.pem").write_text("not used by this policy\n")
    reports = tmp_path / "reports"
    process, outputs, _, _ = run_entrypoint(tmp_path, {
        "INPUT_POLICY": "../shared/workspace/policies/iris.yaml", "INPUT_MODEL-URI": uri,
        "INPUT_TRACKING-URI": registry.url, "INPUT_DRY-RUN": "true", "INPUT_REPORT-DIR": str(reports),
        "INPUT_PUBLIC-KEY": str(shared / "key.pub.pem"),
    })
    assert process.returncode == 0, process.stdout + process.stderr
    warnings = [w.message for w in annotations(process, "warning")
                if w.properties["title"] == "model-gate: outside the workspace"]
    assert warnings == [
        f"input 'policy': ../shared/workspace/policies/iris.yaml is outside the workspace {workspace}; used as given",
        f"input 'report-dir': {reports} is outside the workspace {workspace}; used as given, "
        "and the report-json and report-markdown outputs are absolute paths",
        f"input 'public-key': {shared}/key.pub.pem is outside the workspace {workspace}; used as given",
    ]
    assert outputs["decision"] == "dry-run-passed"
    assert (outputs["report-json"], outputs["report-markdown"]) == (str(reports / "report.json"),
                                                                  str(reports / "report.md"))
