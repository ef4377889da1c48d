"""Pure pieces: URI parsing and redaction, metrics, smoke expectations, report renderers, lazy imports."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from gate.errors import UsageError
from gate.metrics import compute_metrics
from gate.policy import SmokeExpect
from gate.report import render_junit, render_markdown
from gate.results import CheckResult, Status
from gate.smoke import evaluate_expectations
from gate.uris import (
    LocalFolder, LoggedModel, ObjectStore, RegistryAlias, RegistryLatest, RegistryVersion, RunArtifact,
    parse_model_uri, redact_uri, server_uri_problem,
)


@pytest.mark.parametrize(("uri", "expected"), [
    ("models:/fraud/3", RegistryVersion("fraud", "3")),
    ("models:/fraud@champion", RegistryAlias("fraud", "champion")),
    ("models:/fraud/latest", RegistryLatest("fraud", None)),
    ("models:/fraud/production", RegistryLatest("fraud", "Production")),
    ("models:/m-0123abcd", LoggedModel("m-0123abcd")),
    ("runs:/abc123/model", RunArtifact("abc123", "model")),
    ("s3://bucket/models/fraud/3", ObjectStore("s3://bucket/models/fraud/3")),
    ("./model", LocalFolder(Path("model"))),
])
def test_parse_model_uri(uri, expected):
    assert parse_model_uri(uri) == expected


@pytest.mark.parametrize(("uri", "fragment"), [
    ("", "empty"), ("models:/fraud/0", "versions start at 1"), ("models:/fraud/champion", "for an alias write models:/fraud@champion"),
    ("models://fraud/1", "expected models:/NAME"), ("gs://bucket/x", "scheme gs:// is not supported"), ("runs:/", "expected runs:/"),
    ("models:/fraud/-3", "written without a sign"), ("models:/fraud/+3", "written without a sign"),
    ("models:/fraud/99999999999999999999", "version number too large"),
    ("models:/fraud/\u0663", "not a version number"),  # an Arabic-Indic digit is not a version
    ("models:/fraud", "no version or alias"), ("models:/fraud/a b", "not a version number, 'latest' or a stage"),
])
def test_bad_model_uri(uri, fragment):
    with pytest.raises(UsageError, match=fragment.replace("/", ".").replace("(", ".")):
        parse_model_uri(uri)


def test_alias_problems_say_what_is_wrong():
    from gate.uris import alias_problem

    assert alias_problem("champion") is None and alias_problem("a" * 255) is None
    assert alias_problem("a" * 300) == "alias 'aaaaaaaaaaaaaaaaaaaa'... is 300 characters long; MLflow allows at most 255"
    assert alias_problem("") == "alias cannot be empty"
    assert alias_problem("prod eu") == "alias 'prod eu' may only contain letters, digits, '_' and '-'"
    assert alias_problem("v12") == "alias 'v12' is reserved by MLflow (latest and v<number>)"


def test_redact_uri():
    assert redact_uri("https://user:pw@mlflow.example:5000/path?token=x") == "https://***@mlflow.example:5000/path"
    assert redact_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert redact_uri("sqlite:///tmp/db") == "sqlite:///tmp/db"
    assert redact_uri("http://u:pw@[::1]:5000/x?sig=1") == "http://***@[::1]:5000/x"
    # too malformed for urlparse: still masked, never an exception
    assert redact_uri("http://u:pw@[::1/x?token=abc") == "http://***@[::1/x"
    assert redact_uri("http://u:pw@host:notaport/x?token=abc") == "http://***@host:notaport/x"
    # no scheme, or no "//": urlparse finds no host, the password must go all the same
    assert redact_uri("alice:pAsSw0rd@127.0.0.1:5000") == "***@127.0.0.1:5000"
    assert redact_uri("//alice:pAsSw0rd@127.0.0.1:5000/x?t=1") == "//***@127.0.0.1:5000/x"
    assert redact_uri("sqlite:///tmp/db?password=pAsSw0rd") == "sqlite:///tmp/db"
    assert redact_uri("/tmp/mlruns") == "/tmp/mlruns"
    assert redact_uri("http://h/a;password=X?t=1") == "http://h/a"


def test_tracking_uri_errors_never_show_passwords_and_missing_sqlite_is_refused(tmp_path):
    from gate.registry import Registry

    for uri in ("alice:pAsSw0rd@127.0.0.1:5000", "//alice:pAsSw0rd@127.0.0.1:5000"):
        with pytest.raises(UsageError) as caught:
            Registry(uri)
        assert "pAsSw0rd" not in str(caught.value) and "unsupported scheme" in str(caught.value)
    typo = tmp_path / "typo" / "mlfow.db"
    with pytest.raises(UsageError, match=f"no SQLite database at {typo}; the gate does not create registries"):
        Registry(f"sqlite:///{typo}")
    assert not typo.parent.exists()  # nothing created
    with pytest.raises(UsageError, match="no SQLite database at missing.db"):
        Registry("sqlite:///missing.db")


@pytest.mark.parametrize(("uri", "fragment"), [
    ("http://127.0.0.1:5000", None), ("https://u:p@mlflow.example/path", None), ("http://[::1]:5000", None),
    ("sqlite:///tmp/mlflow.db", None), ("databricks://profile:prefix", None), ("postgresql://u@db:5432/x", None),
    (" http://127.0.0.1:5000", "white space"), ("http://127.0.0.1:5000\n", "white space"),
    ("http://127.0.0.1:5000/\x07", "control character"), ("http://[::1:5000", "unclosed '['"),
    ("http://127.0.0.1:50a0", "the port after the host is not a number"),
    ("http://alice:hunter2-pw", "the port after the host is not a number"), ("http://127.0.0.1:70000", "port 70000 is out of range"),
    ("http://::1:5000", "malformed host"), ("http://[zz]:5000", "malformed IPv6 host"), ("http://:5000", "no host name"),
])
def test_server_uri_problem(uri, fragment):
    problem = server_uri_problem(uri)
    assert problem is None if fragment is None else fragment in problem


def test_classification_metrics_match_hand_counts():
    y = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    proba = np.eye(3)[pred] * 0.8 + 0.2 / 3
    result = compute_metrics(task="classification", metrics=["accuracy", "f1", "roc_auc", "log_loss"], y_true=y,
                             predictions=pred, probabilities=proba, classes=[0, 1, 2])
    assert result.values["accuracy"] == pytest.approx(4 / 6)
    assert result.values["log_loss"] > 0 and 0.5 < result.values["roc_auc"] <= 1
    assert result.errors == {}


def test_missing_probabilities_and_wrong_shape_are_named():
    y = np.array([0, 1])
    result = compute_metrics(task="classification", metrics=["accuracy", "roc_auc"], y_true=y,
                             predictions=np.array([0, 1, 1]), proba_error="the model has no predict_proba")
    assert "returned 3 predictions for 2 rows" in result.errors["accuracy"]
    result = compute_metrics(task="classification", metrics=["roc_auc"], y_true=y, predictions=np.array([0, 1]),
                             proba_error="the model has no predict_proba")
    assert result.errors["roc_auc"] == "the model has no predict_proba"


def test_regression_metrics():
    result = compute_metrics(task="regression", metrics=["mae", "rmse", "r2", "latency_p50_ms"],
                             y_true=np.array([1.0, 2.0, 3.0]), predictions=np.array([[1.0], [2.0], [5.0]]),
                             single_row_ms=[1.0, 2.0, 3.0])
    assert result.values["mae"] == pytest.approx(2 / 3)
    assert result.values["rmse"] == pytest.approx((4 / 3) ** 0.5)
    assert result.values["latency_p50_ms"] == 2.0


def test_smoke_shape_wildcard_and_latency():
    meta = {"output_type": "ndarray", "shape": [3, 384], "call_ms": [12.0]}
    ok = evaluate_expectations("emb", SmokeExpect(shape=[None, 384], max_latency_ms=50), np.zeros((3, 384)), meta)
    assert ok.status == Status.PASSED
    slow = evaluate_expectations("emb", SmokeExpect(max_latency_ms=5), np.zeros((3, 384)), meta)
    assert slow.status == Status.FAILED and "predict took 12.0 ms, limit 5 ms" in slow.message


def _report(checks):
    return {"decision": "rejected", "exit_code": 1, "model": {"uri": "models:/m/2", "name": "m", "version": "2"},
            "previous_version": "1", "policy": {"path": "gate.yaml", "sha256": "ab" * 32}, "tracking_uri": "http://x",
            "checks": [c.to_dict() for c in checks], "duration_s": 1.5}


def test_junit_one_testcase_per_check():
    checks = [CheckResult("load", "load", Status.PASSED, "ok"),
              CheckResult("threshold.accuracy", "thresholds", Status.FAILED, "accuracy <0.9> & worse"),
              CheckResult("smoke.x", "smoke", Status.ERROR, "timed out"),
              CheckResult("threshold.f1", "thresholds", Status.SKIPPED, "no baseline")]
    root = ET.fromstring(render_junit(_report(checks)))
    cases = root.findall(".//testcase")
    assert [c.get("name") for c in cases] == ["load", "threshold.accuracy", "smoke.x", "threshold.f1"]
    assert cases[1].find("failure").get("message") == "accuracy <0.9> & worse"
    assert cases[2].find("error") is not None and cases[3].find("skipped") is not None
    assert root.find("testsuite").get("failures") == "1"


def test_junit_stays_well_formed_with_characters_xml_forbids():
    checks = [CheckResult("smoke.nul", "smoke", Status.ERROR, "raised ValueError: bad byte \x00 and \x1b[31m"),
              CheckResult("load.requirements", "load", Status.WARNED, "could not be checked: \x07\ufffe")]
    root = ET.fromstring(render_junit(_report(checks)))  # would raise "not well-formed" before
    cases = root.findall(".//testcase")
    assert cases[0].find("error").text == "raised ValueError: bad byte \ufffd and \ufffd[31m"
    assert cases[1].find("system-out").text == "WARNING: could not be checked: \ufffd\ufffd"


def test_markdown_escapes_pipes():
    md = render_markdown(_report([CheckResult("x", "smoke", Status.FAILED, "a | b\nc")]))
    assert "| ❌ | `x` |" in md and "a \\| b c" in md


def test_help_imports_no_heavy_library():
    code = ("import sys; from gate.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('mlflow', 'torch', 'transformers', 'sklearn', 'pandas') if m in sys.modules]\n"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
    for command in ("check", "policy", "scan", "verify", "upload"):
        code = (f"import sys; from gate.cli import main; main(['{command}', '--help'])\n"
                "print([m for m in ('mlflow', 'torch', 'transformers') if m in sys.modules])")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
        assert out.strip().splitlines()[-1] == "[]", command


def test_model_environment_withholds_credentials_and_runner_files():
    from gate.sandbox import model_environment

    environ = {"PATH": "/usr/bin", "HOME": "/root", "OMP_NUM_THREADS": "1", "MLFLOW_TRACKING_URI": "http://u:p@h",
               "MLFLOW_TRACKING_TOKEN": "t", "AWS_ACCESS_KEY_ID": "a", "AWS_REGION": "eu-west-1",
               "GITHUB_TOKEN": "g", "GITHUB_OUTPUT": "/out", "GITHUB_SHA": "abc", "INPUT_TRACKING-TOKEN": "i",
               "db_password": "p", "HF_TOKEN": "h", "SERVICE_API_KEY": "k", "MLFLOW_ENABLE_ASYNC_LOGGING": "false"}
    kept = model_environment(environ)
    assert sorted(kept) == ["GITHUB_SHA", "HOME", "MLFLOW_ENABLE_ASYNC_LOGGING", "OMP_NUM_THREADS", "PATH"]
    assert sorted(model_environment(environ, frozenset({"AWS_REGION", "HF_TOKEN"}))) == [
        "AWS_REGION", "GITHUB_SHA", "HF_TOKEN", "HOME", "MLFLOW_ENABLE_ASYNC_LOGGING", "OMP_NUM_THREADS", "PATH"]


def test_console_entry_point_flushes_and_keeps_the_exit_code(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nthresholds: {accuracy: {min: 0.9}}\n")
    for argv, code, stream, text in (
        (["--version"], 0, "stdout", "model-gate, version"),
        (["policy", "validate", str(bad)], 2, "stderr", "thresholds.accuracy.direction"),
    ):
        done = subprocess.run([sys.executable, "-m", "gate", *argv], capture_output=True, text=True)
        assert done.returncode == code, done
        assert text in getattr(done, stream)


@pytest.mark.parametrize("labels", [
    np.array([0.0, 0.0, 1.0, 1.0, 2.0, 2.0]),  # a target column read as floats
    np.array(["0", "0", "1", "1", "2", "2"]),  # labels stored as text
])
def test_labels_of_another_type_are_the_same_classes(labels):
    pred = np.array([0, 1, 1, 1, 2, 0])
    result = compute_metrics(task="classification", metrics=["accuracy", "f1"], y_true=labels, predictions=pred)
    assert result.values["accuracy"] == pytest.approx(4 / 6)
    assert result.values["f1"] == pytest.approx(compute_metrics(
        task="classification", metrics=["f1"], y_true=np.array([0, 0, 1, 1, 2, 2]), predictions=pred).values["f1"])
    text = compute_metrics(task="classification", metrics=["accuracy"], y_true=np.array([0.0, 1.0, 2.0]),
                           predictions=np.array(["0", "1", "1"]))
    assert text.values["accuracy"] == pytest.approx(2 / 3)
    names = compute_metrics(task="classification", metrics=["accuracy", "f1", "roc_auc"],
                            y_true=np.array(["setosa", "virginica", "setosa"]), predictions=np.array([0, 1, 0]),
                            probabilities=np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]]), classes=[0, 1])
    # class names against class indices: a label mismatch is named, not scored 0
    assert "accuracy" not in names.values and "f1" not in names.values
    assert names.errors["accuracy"] == ("no predicted label occurs in the target column (targets: setosa, virginica; "
                                        "predictions: 0, 1): check evaluation.target and how labels are encoded")
    wrong = compute_metrics(task="classification", metrics=["accuracy"], y_true=np.array([0, 1]),
                            predictions=np.array([1, 0]))
    assert wrong.values["accuracy"] == 0.0  # shared labels, all wrong: a real 0


def test_hide_gate_process_masks_the_start_up_environment_and_keeps_the_values_usable():
    code = (
        "import ctypes, os\n"
        "from gate.sandbox import hide_gate_process\n"
        "os.environ.pop('AWS_SECRET_ACCESS_KEY')\n"  # no longer in libc's environ, still in the block
        "hide_gate_process()\n"
        "libc = ctypes.CDLL(None); libc.getenv.restype = ctypes.c_char_p\n"
        "print(open('/proc/self/environ', 'rb').read().decode())\n"
        "print(libc.getenv(b'MLFLOW_TRACKING_PASSWORD').decode(), os.environ['MLFLOW_TRACKING_PASSWORD'])\n"
    )
    env = {"PATH": os.environ["PATH"], "AWS_SECRET_ACCESS_KEY": "s3cr3t-a", "MLFLOW_TRACKING_PASSWORD": "s3cr3t-b",
           "KEEP_ME": "visible"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    block, usable = done.stdout.rsplit("\n", 2)[0], done.stdout.rsplit("\n", 2)[1]
    assert "AWS_SECRET_ACCESS_KEY=********\0" in block and "MLFLOW_TRACKING_PASSWORD=********\0" in block
    assert "KEEP_ME=visible" in block and "s3cr3t" not in block
    assert usable == "s3cr3t-b s3cr3t-b"  # libc's getenv and os.environ still give the real value


def test_model_user_parsing(monkeypatch):
    from gate.sandbox import model_user

    if os.geteuid() != 0:
        assert model_user({"MODEL_GATE_MODEL_USER": "nobody"}) is None  # cannot switch: ignored
        return
    assert model_user({}) is None
    assert model_user({"MODEL_GATE_MODEL_USER": "65532"}) == (65532, 65532)
    assert model_user({"MODEL_GATE_MODEL_USER": "65532:100"}) == (65532, 100)
    nobody = model_user({"MODEL_GATE_MODEL_USER": "nobody"})
    assert nobody is not None and nobody[0] == 65534
    for value, fragment in (("no-such-user-xyz", "no such user"), ("0", "must not run as root"),
                            ("1000:0", "must not run as root"), ("12:abc", "no such user")):
        with pytest.raises(UsageError, match=fragment):
            model_user({"MODEL_GATE_MODEL_USER": value})


def test_open_to_model_user_adds_read_bits_only(tmp_path):
    from gate.sandbox import open_to_model_user

    workdir = tmp_path / "work"
    tree = workdir / "candidate" / "model"
    (tree / "sub").mkdir(parents=True)
    workdir.chmod(0o700)
    (workdir / "candidate").chmod(0o700)
    (tree / "sub" / "w.bin").write_bytes(b"x")
    (tree / "MLmodel").write_text("flavors: {}")
    for path, mode in ((tree / "sub" / "w.bin", 0o600), (tree / "MLmodel", 0o640), (tree / "sub", 0o700), (tree, 0o700)):
        path.chmod(mode)
    above = tmp_path.stat().st_mode
    open_to_model_user(tree, workdir)
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in (tree, tree / "sub", tree / "sub" / "w.bin", tree / "MLmodel")} == {
        "model": "0o755", "sub": "0o755", "w.bin": "0o644", "MLmodel": "0o644"}
    # the way there is passable, not listable; nothing above the workdir changes
    assert oct((workdir / "candidate").stat().st_mode & 0o777) == "0o711"
    assert oct(workdir.stat().st_mode & 0o777) == "0o711"
    assert tmp_path.stat().st_mode == above


def test_a_missing_database_driver_is_a_usage_error(monkeypatch):
    import mlflow

    from gate.registry import Registry

    def no_driver(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'psycopg'", name="psycopg")

    monkeypatch.setattr(mlflow, "MlflowClient", no_driver)
    with pytest.raises(UsageError, match="tracking URI postgresql://\\*\\*\\*@db:5432/x needs the Python module "
                                         "'psycopg', which is not installed here"):
        Registry("postgresql://u:pw@db:5432/x")


def test_invisible_characters_in_model_names_are_refused():
    from gate.uris import model_name_problem

    assert model_name_problem("fraud-prod") is None and model_name_problem("Betrugsmodell-ä") is None
    for name in ("fraud\u200b", "fraud\u202eprod", "fra\u2028ud"):
        assert "control or invisible character" in model_name_problem(name)


def test_hide_gate_process_masks_url_secrets_in_the_command_line():
    code = ("import sys\nfrom gate.sandbox import hide_gate_process\nhide_gate_process()\n"
            "print(open('/proc/self/cmdline', 'rb').read().decode().split('\\0')[-4:-1])\nprint(sys.argv[1:])\n")
    argv = ["--tracking-uri=https://alice:hunter2@mlflow.example/x?token=abc&b=1", "plain?not=a-url",
            "http://h/a;password=pw"]
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True).stdout
    shown, kept = out.splitlines()
    assert shown == str(["--tracking-uri=https://alice:*******@mlflow.example/x?token=***&b=*", "plain?not=a-url",
                         "http://h/a;password=**"])
    assert kept == str(argv)  # the gate's own copy is untouched
