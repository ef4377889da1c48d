"""Static checks of the Action, its image and the example workflows, with the
linters GitHub users meet (all offline)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from workspace import REPO

BIN = Path(sys.executable).parent
WORKFLOWS = sorted((REPO / "examples" / "workflows").glob("*.yml"))


def run(*argv: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_there_are_the_three_example_workflows():
    assert {p.name for p in WORKFLOWS} == {"pr-validate.yml", "release-promote.yml", "rollback.yml"}


def test_action_yml_matches_the_actions_schema():
    result = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.github-actions", "action.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_example_workflow_matches_the_workflows_schema(workflow):
    result = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", workflow)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing_in_the_workflows_or_the_action():
    result = run(BIN / "zizmor", "--offline", "--no-progress", *WORKFLOWS, "action.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout + result.stderr


def test_hadolint_passes_the_dockerfile():
    result = run(BIN / "hadolint", "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_action_declares_the_documented_inputs_and_outputs_and_passes_no_args():
    action = yaml.safe_load((REPO / "action.yml").read_text())
    assert action["runs"] == {"using": "docker", "image": "Dockerfile"}  # args are logged: none
    assert {"policy", "model-uri", "tracking-uri", "dry-run", "report-dir", "public-key"} <= set(action["inputs"])
    assert [n for n, spec in action["inputs"].items() if spec.get("required")] == ["policy", "model-uri"]
    from gate.action import OUTPUT_NAMES

    assert tuple(action["outputs"]) == OUTPUT_NAMES


def test_promotion_and_rollback_share_one_concurrency_group_per_model_and_never_cancel():
    promote = yaml.safe_load((REPO / "examples/workflows/release-promote.yml").read_text())
    rollback = yaml.safe_load((REPO / "examples/workflows/rollback.yml").read_text())
    assert promote["concurrency"]["cancel-in-progress"] is False
    assert rollback["concurrency"]["cancel-in-progress"] is False
    assert promote["concurrency"]["group"] == "model-gate-promote-iris"
    assert rollback["concurrency"]["group"] == "model-gate-promote-${{ inputs.model }}"
    # PyYAML reads the key `on` as YAML 1.1 true.
    assert rollback[True]["workflow_dispatch"]["inputs"]["model"]["options"] == ["iris"]


@pytest.mark.parametrize("script", ["scripts/container-setup.sh", "scripts/build-image.sh", "examples/docker-run.sh"])
def test_shell_scripts_parse(script):
    result = run("bash", "-n", script)
    assert result.returncode == 0, result.stderr
