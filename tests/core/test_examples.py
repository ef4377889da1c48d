"""The example policies and the quick start, run for real (the README's first command included)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "examples" / "policies"


def test_iris_policy_promotes_good_and_rejects_worse(gate, register, client, tmp_path):
    name, good = register("good")
    _, bad = register("bad", name)
    policy = str(POLICIES / "iris.yaml")
    promoted = gate("check", "--policy", policy, "--model-uri", f"models:/{name}/{good}")
    assert promoted.code == 0, promoted.out + promoted.err
    rejected = gate("check", "--policy", policy, "--model-uri", f"models:/{name}/{bad}",
                    "--report-dir", str(tmp_path))
    assert rejected.code == 1
    report = json.loads((tmp_path / "report.json").read_text())
    failed = {c["name"] for c in report["checks"] if c["status"] == "failed"}
    assert failed == {"threshold.accuracy", "threshold.f1", "threshold.roc_auc"}
    assert report["previous_version"] == good
    assert client.get_model_version_by_alias(name, "champion").version == good


@pytest.mark.slow
def test_minilm_policy_promotes_the_real_embedder(gate, tracking_uri, client):
    from models import log_minilm_model

    version = log_minilm_model(tracking_uri, "minilm-example")
    result = gate("check", "--policy", str(POLICIES / "minilm.yaml"), "--model-uri", f"models:/minilm-example/{version}",
                  "--format", "json")
    assert result.code == 0, result.out + result.err
    report = json.loads(result.out)
    smoke = next(c for c in report["checks"] if c["name"] == "smoke.embeds-sentences")
    assert smoke["status"] == "passed" and smoke["details"]["shape"] == [3, 384]
    formats = next(c for c in report["checks"] if c["name"] == "formats")
    assert formats["status"] == "passed"
    assert client.get_model_version_by_alias("minilm-example", "champion").version == version


@pytest.mark.slow
def test_quickstart_script(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart" / "quickstart.py"), "--skip-minilm"],
                            capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "good iris classifier         models:/iris-classifier/1: exit 0 = promoted, as expected" in result.stdout
    assert "worse iris classifier        models:/iris-classifier/2: exit 1 = rejected, as expected" in result.stdout
    assert "aliases:      champion" in result.stdout
