"""Policy loading: every malformed policy is exit 2 with the key path and the line; no server needed."""

from __future__ import annotations

import json
import textwrap

import pytest

from gate.cli import main
from gate.policy import load_policy

VALID = """\
version: 1
smoke:
  cases:
    - name: one
      input:
        records: [{x: 1}]
evaluation:
  dataset: holdout.csv
  target: y
  task: classification
thresholds:
  accuracy:
    direction: higher
    min: 0.9
promotion:
  alias: champion
"""


def write(tmp_path, text: str):
    (tmp_path / "holdout.csv").write_text("x,y\n1,0\n")  # files a policy names must exist
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "h.csv").write_text("x,y\n1,0\n")
    path = tmp_path / "gate.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def validate(tmp_path, text: str, capsys) -> tuple[int, str]:
    path = write(tmp_path, text)
    capsys.readouterr()
    code = main(["policy", "validate", str(path)])
    return code, capsys.readouterr().err


def test_valid_policy(tmp_path, capsys):
    path = write(tmp_path, VALID)
    assert main(["policy", "validate", str(path)]) == 0
    assert "valid (sha256 " in capsys.readouterr().out
    loaded = load_policy(path)
    assert loaded.policy.promotion.effective_alias == "champion"
    assert loaded.resolve_path("holdout.csv") == tmp_path.resolve() / "holdout.csv"


# (name, policy text, expected fragment of the one-line error: key path and line)
MALFORMED = [
    ("bad yaml", "version: 1\nsmoke: [unclosed\n", "gate.yaml:3: invalid YAML"),
    ("not a mapping", "- version: 1\n", "a policy is a mapping"),
    ("empty file", "", "policy file is empty"),
    ("unknown top-level key", VALID + "promotoin:\n  alias: x\n", ":17: promotoin: unknown key"),
    ("unknown nested key", VALID.replace("    min: 0.9", "    minimum: 0.9"), ":14: thresholds.accuracy.minimum: unknown key"),
    ("wrong type", VALID.replace("    min: 0.9", "    min: high"), ":14: thresholds.accuracy.min: Input should be a valid number"),
    ("missing version", VALID.replace("version: 1\n", ""), "version: required field is missing"),
    ("unsupported version", VALID.replace("version: 1", "version: 2"), ":1: version: unsupported policy version 2"),
    ("reserved alias latest", VALID.replace("alias: champion", "alias: latest"), ":16: promotion.alias: alias 'latest' is reserved"),
    ("reserved alias v3", VALID.replace("alias: champion", "alias: V3"), "promotion.alias: alias 'V3' is reserved"),
    ("unknown stage", VALID.replace("alias: champion", "stage: production"), ":16: promotion.stage: stage 'production' is not one of"),
    ("copy_to name with @", VALID.replace("alias: champion", "copy_to:\n    name: prod@eu"),
     ":17: promotion.copy_to.name: registered model name 'prod@eu' contains '@'"),
    ("two promotion modes", VALID.replace("alias: champion", "alias: champion\n  stage: Production"), "choose one promotion mode"),
    ("negative timeout", VALID.replace("smoke:\n", "smoke:\n  timeout_s: -5\n"), ":3: smoke.timeout_s: timeout_s must be a positive"),
    ("missing direction", VALID.replace("    direction: higher\n", ""), ":12: thresholds.accuracy.direction: required field is missing"),
    ("contradicting direction", VALID.replace("direction: higher", "direction: lower"), "direction lower contradicts accuracy"),
    ("min above max", VALID.replace("    min: 0.9", "    min: 0.9\n    max: 0.5"), "min (0.9) is greater than max (0.5)"),
    ("unknown metric", VALID.replace("  accuracy:", "  acuracy:"), "thresholds.acuracy: unknown metric for task classification"),
    ("bad task", VALID.replace("task: classification", "task: ranking"), ":10: evaluation.task: Input should be"),
    ("smoke input with two kinds", VALID.replace("records: [{x: 1}]", "records: [{x: 1}]\n        strings: [a]"), "give exactly one of records, rows, strings or file"),
    ("duplicate key", VALID + "version: 1\n", ":17: duplicate key 'version'"),
    ("checks nothing", "version: 1\npromotion:\n  alias: champion\n", "the policy checks nothing"),
    ("env var unset", VALID.replace("dataset: holdout.csv", "dataset: ${GATE_TEST_UNSET_VAR}"), ":8: evaluation.dataset: environment variable GATE_TEST_UNSET_VAR is not set"),
    ("target among the features", VALID.replace("  target: y\n", "  target: y\n  features: [x, y]\n"),
     ":7: evaluation: features include the target column 'y'"),
    ("threshold without bounds", VALID.replace("    min: 0.9\n", ""), "a threshold needs at least one of"),
    ("negative tolerated regression", VALID.replace("    min: 0.9", "    max_regression_abs: -0.1"), "max_regression_abs: Input should be greater than or equal to 0"),
    ("dataset missing", VALID.replace("dataset: holdout.csv", "dataset: nope.csv"), ":8: evaluation.dataset: "),
    ("dataset is a folder", VALID.replace("dataset: holdout.csv", "dataset: data"), "data is a folder, not a file"),
    ("boolean where a number belongs", VALID.replace("smoke:\n", "smoke:\n  timeout_s: true\n"), ":3: smoke.timeout_s: Input should be a valid number"),
    ("string where a number belongs", VALID.replace("    min: 0.9", '    min: "0.9"'), ":14: thresholds.accuracy.min: Input should be a valid number"),
    ("reserved tag prefix", VALID + "  tags:\n    model_gate.status: x\n", "reserved prefix model_gate."),
]


@pytest.mark.parametrize(("kind", "text", "expected"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_policy_is_exit_2_with_location(kind, text, expected, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("GATE_TEST_UNSET_VAR", raising=False)
    code, err = validate(tmp_path, text, capsys)
    assert code == 2
    assert expected in err, err
    assert err.count("\n") == 1 and "Traceback" not in err  # one line, no traceback


def test_check_refuses_bad_policy_before_touching_a_registry(tmp_path, capsys):
    path = write(tmp_path, VALID.replace("alias: champion", "alias: latest"))
    code = main(["check", "--policy", str(path), "--model-uri", "models:/x/1", "--tracking-uri", "http://127.0.0.1:9"])
    assert code == 2
    assert "reserved" in capsys.readouterr().err


def test_missing_policy_file(tmp_path, capsys):
    assert main(["policy", "validate", str(tmp_path / "nope.yaml")]) == 2
    assert "policy file not found" in capsys.readouterr().err


def test_exponent_numbers_are_numbers(tmp_path):
    (tmp_path / "holdout.csv").write_text("x,y\n1,0\n")
    path = tmp_path / "gate.yaml"
    path.write_text(VALID.replace("    min: 0.9", "    min: 9e-1\n    max: 1.0e300") + "load:\n  timeout_s: 1e2\n")
    policy = load_policy(path).policy
    assert (policy.thresholds["accuracy"].min, policy.thresholds["accuracy"].max) == (0.9, 1e300)
    assert policy.load.timeout_s == 100.0
    assert policy.promotion.alias == "champion"


def test_env_interpolation_with_default(tmp_path, monkeypatch):
    monkeypatch.setenv("GATE_ALIAS", "prod")
    text = VALID.replace("alias: champion", "alias: ${GATE_ALIAS}").replace("holdout.csv", "${GATE_DATA:-data/h.csv}")
    loaded = load_policy(write(tmp_path, text))
    assert loaded.policy.promotion.alias == "prod"
    assert loaded.policy.evaluation.dataset == "data/h.csv"


def test_schema_is_json_schema_that_accepts_examples(capsys):
    import jsonschema
    import yaml

    from pathlib import Path

    assert main(["policy", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "model-gate policy"
    assert "thresholds" in schema["properties"]
    examples = sorted((Path(__file__).parents[2] / "examples" / "policies").glob("*.yaml"))
    assert examples
    for example in examples:
        jsonschema.validate(yaml.safe_load(example.read_text()), schema)
        assert main(["policy", "validate", str(example)]) == 0


@pytest.mark.parametrize(("content", "expected"), [
    ("not a key\n", "key.pem is not a PEM public key"),
    ("private", "key.pem is not a PEM public key"),  # a private key listed as the public one
])
def test_unusable_public_key_is_a_policy_error(content, expected, tmp_path, capsys):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = tmp_path / "key.pem"
    if content == "private":
        content = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    key.write_text(content)
    text = VALID + "integrity:\n  signature:\n    required: true\n    public_keys: [key.pem]\n"
    code, err = validate(tmp_path, text, capsys)
    assert code == 2
    assert ":20: integrity.signature.public_keys[0]: " in err and expected in err, err
