"""The whole gate on models kept in S3: an s3:// model URI, and models:/ served by an MLflow server
whose artifact store is S3 (moto)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from s3testing import CREDENTIALS
from gate.cli import main
from servers import start_mlflow

sys.path.insert(0, str(Path(__file__).parents[2] / "examples" / "quickstart"))
from models import log_iris_model, train_iris  # noqa: E402

POLICY = Path(__file__).parent / "policies" / "iris-s3.yaml"

pytestmark = pytest.mark.slow


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_check_runs_on_an_s3_model_uri_and_rejects_a_tampered_copy(s3, bucket, tmp_path, capsys):
    import mlflow.sklearn

    folder = tmp_path / "iris"
    mlflow.sklearn.save_model(train_iris("good"), folder, serialization_format="pickle")
    code, _, err = run(capsys, "upload", str(folder), "--name", "iris", "--version", "1", "--bucket", bucket,
                       "--progress", "off")
    assert code == 0, err
    code, out, err = run(capsys, "check", "--policy", str(POLICY), "--model-uri", f"s3://{bucket}/models/iris/1",
                         "--dry-run", "--format", "json", "--workdir", str(tmp_path / "work"))
    assert code == 0, out + err
    assert "dry-run-passed" in out and "threshold.accuracy" in out
    # Someone swaps the pickle behind the tool's back: the gate stops before loading anything.
    key = f"models/iris/1/{next(p.relative_to(folder).as_posix() for p in folder.rglob('*.pkl'))}"
    s3.put_object(Bucket=bucket, Key=key, Body=b"not the model")
    code, out, err = run(capsys, "check", "--policy", str(POLICY), "--model-uri", f"s3://{bucket}/models/iris/1",
                         "--dry-run", "--workdir", str(tmp_path / "work2"))
    assert code == 1
    assert key in err + out


def test_check_loads_models_uri_from_an_mlflow_server_with_s3_artifacts(s3_env, s3, bucket, tmp_path, capsys):
    from mlflow import MlflowClient

    server = start_mlflow(tmp_path / "mlflow", artifacts_destination=f"s3://{bucket}/mlartifacts",
                          env={**CREDENTIALS, "MLFLOW_S3_ENDPOINT_URL": s3_env.url})
    try:
        version = log_iris_model(server.url, "iris-s3", "good")
        stored = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="mlartifacts/")["Contents"]]
        assert any(k.endswith("MLmodel") for k in stored)  # the artifacts really live in S3
        code, out, err = run(capsys, "check", "--policy", str(POLICY), "--model-uri", f"models:/iris-s3/{version}",
                             "--tracking-uri", server.url, "--workdir", str(tmp_path / "work"))
        assert code == 0, out + err
        client = MlflowClient(tracking_uri=server.url)
        assert client.get_model_version_by_alias("iris-s3", "champion").version == version
    finally:
        server.stop()
