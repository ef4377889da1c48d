"""The adapter's pure parts: environment hardening, secrets, outputs and annotations from a report."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest

from gate import action
from gate.errors import UsageError


def test_hardened_env_drops_interpreter_settings_and_repairs_path():
    env = {"PATH": "/nonexistent", "PYTHONPATH": "/stray", "PYTHONHOME": "/nowhere", "PYTHONUNBUFFERED": "1",
           "MLFLOW_TRACKING_URI": "http://x"}
    clean = action.hardened_env(env, "/opt/venv/bin")
    assert "PYTHONPATH" not in clean and "PYTHONHOME" not in clean
    assert clean["PYTHONUNBUFFERED"] == "1" and clean["MLFLOW_TRACKING_URI"] == "http://x"
    assert clean["PATH"].split(":")[:2] == ["/opt/venv/bin", "/nonexistent"]
    assert "/usr/bin" in clean["PATH"].split(":")
    assert env["PYTHONPATH"] == "/stray"  # the input is not modified


def test_secrets_include_credential_variables_secret_inputs_and_uri_passwords():
    env = {"AWS_SESSION_TOKEN": "tok", "INPUT_TRACKING-TOKEN": "bearer-1",
           "MLFLOW_TRACKING_URI": "https://user:p%40ss@mlflow.example.com", "AWS_ACCESS_KEY_ID": "AKIA-not-secret"}
    assert action.secrets_in(env) == ["tok", "bearer-1", "p%40ss", "p@ss"]


def test_outputs_and_annotations_come_from_the_report():
    report = {
        "decision": "rejected", "exit_code": 1, "previous_version": "3",
        "model": {"uri": "models:/iris/4", "name": "iris", "version": "4"},
        "checks": [
            {"name": "threshold.accuracy", "status": "failed", "message": "accuracy 0.6 < 0.85"},
            {"name": "threshold.latency_p95_ms", "status": "warned", "message": "slow"},
            {"name": "load", "status": "passed", "message": "ok"},
            {"name": "smoke.a", "status": "error", "message": "timed out"},
        ],
    }
    assert action.outputs_from_report(report, "r/report.json", "r/report.md") == {
        "decision": "rejected", "model-name": "iris", "model-version": "4", "previous-version": "3",
        "report-json": "r/report.json", "report-markdown": "r/report.md",
    }
    assert list(action.annotations_from_report(report)) == [
        ("error", "model-gate threshold.accuracy: iris v4", "accuracy 0.6 < 0.85"),
        ("warning", "model-gate threshold.latency_p95_ms: iris v4", "slow"),
        ("error", "model-gate smoke.a: iris v4", "timed out"),
    ]
    assert action.outputs_from_report({}, "", "")["decision"] == "error"


def test_paths_are_shown_relative_to_the_workspace_when_inside_it(tmp_path):
    inside = tmp_path / "ws" / "out" / "report.json"
    assert action.display_path(inside, tmp_path / "ws") == "out/report.json"
    assert action.display_path(Path("/elsewhere/report.json"), tmp_path / "ws") == "/elsewhere/report.json"
    assert action.first_missing_ancestor(tmp_path / "a" / "b" / "c") == tmp_path / "a"


def test_preparing_the_report_dir_removes_only_the_reports_an_earlier_run_left(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    for name in action.REPORT_FILES:
        (reports / name).write_text("from an earlier run")
    (reports / "notes.txt").write_text("not a report")
    assert action.prepare_report_dir(reports) == reports
    assert sorted(p.name for p in reports.iterdir()) == ["notes.txt"]
    # A new folder: the outermost one it created is handed to the workspace's owner later.
    assert action.prepare_report_dir(tmp_path / "a" / "b") == tmp_path / "a"
    assert (tmp_path / "a" / "b").is_dir()
    (reports / "report.md").mkdir()
    with pytest.raises(UsageError, match=r"input 'report-dir': cannot remove the earlier .*/report.md: Is a directory"):
        action.prepare_report_dir(reports)


def test_path_inputs_outside_the_workspace_are_named_in_warnings(tmp_path, monkeypatch):
    workspace = tmp_path / "ws"
    (workspace / "policies").mkdir(parents=True)
    monkeypatch.chdir(workspace)
    inside = action.ActionInputs(policy="policies/p.yaml", model_uri="models:/m/1", tracking_uri="", dry_run=True,
                                 report_dir="out", register_as="", public_key="", tracking_token="")
    assert action.outside_workspace_warnings(inside, workspace) == []
    assert action.outside_workspace_warnings(inside, None) == []
    outside = dataclasses.replace(inside, policy="../p.yaml", public_key=str(tmp_path / "k.pem"))
    assert action.outside_workspace_warnings(outside, workspace) == [
        f"input 'policy': ../p.yaml is outside the workspace {workspace}; used as given",
        f"input 'public-key': {tmp_path}/k.pem is outside the workspace {workspace}; used as given",
    ]


def test_a_crash_in_the_adapter_exits_3_with_one_error_line_never_1(monkeypatch):
    def broken(env):
        raise RuntimeError("boom")

    monkeypatch.setattr(action, "read_inputs", broken)
    out = io.StringIO()
    assert action.main({"INPUT_POLICY": "p.yaml"}, out) == 3
    assert out.getvalue() == ("::error title=model-gate%3A internal error::"
                              "the Action adapter crashed: RuntimeError: boom\n")
