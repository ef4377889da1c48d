"""Dataset formats, smoke inputs and expectations, and every metric, checked against scikit-learn.

Each expected number is computed here, independently of the gate, with sklearn.metrics on the
predictions of the same model (retrained deterministically from the same data) on the same rows.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOLDOUT = ROOT / "examples" / "data" / "iris-holdout.csv"
SKLEARN_FORMATS = {"pickle": "scan", "allow_globals": ["sklearn.*", "numpy.*", "scipy.*", "joblib.*"]}
REQUIREMENTS = ["mlflow", "scikit-learn", "numpy", "pandas"]

# A pyfunc model (MLflow "models from code") answering a DataFrame with named columns.
FRAME_MODEL = '''
import mlflow
import pandas as pd


class Frame(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        x = model_input["x"].astype(float)
        return pd.DataFrame({"score": x * 0.5 + 0.125, "label": (x > 1).astype(int)})


mlflow.models.set_model(Frame())
'''


# ------------------------------------------------------------------ models and data


def diabetes_split():
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split

    frame = load_diabetes(as_frame=True).frame
    return train_test_split(frame, test_size=0.25, random_state=0)


def train_diabetes():
    from sklearn.linear_model import Ridge

    train, _ = diabetes_split()
    return Ridge(alpha=0.1).fit(train.drop(columns="target"), train["target"])


def cancer_split():
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    frame = load_breast_cancer(as_frame=True).frame
    return train_test_split(frame, test_size=0.3, random_state=0, stratify=frame["target"])


def train_cancer():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train, _ = cancer_split()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return model.fit(train.drop(columns="target"), train["target"])


@pytest.fixture(scope="module")
def extra_models(mlflow_server) -> dict[str, str]:
    """A regressor (diabetes) and a two-class classifier (breast cancer), logged once: kind -> models:/m-…"""
    import mlflow
    import mlflow.sklearn

    mlflow.set_tracking_uri(mlflow_server.url)
    mlflow.set_experiment("core-tests-inputs")
    sources = {}
    for kind, model, split in (("diabetes", train_diabetes(), diabetes_split),
                               ("cancer", train_cancer(), cancer_split)):
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(model, name="model", serialization_format="pickle",
                                            input_example=split()[0].drop(columns="target").head(2),
                                            pip_requirements=REQUIREMENTS)
        sources[kind] = f"models:/{info.model_id}"
    return sources


@pytest.fixture()
def register_extra(tracking_uri, extra_models):
    from gate.registration import register_source
    from gate.registry import Registry

    registry = Registry(tracking_uri)
    counter = iter(range(1, 1000))

    def _register(kind: str) -> tuple[str, str]:
        name = f"inputs-{kind}-{next(counter)}-{id(registry) % 10000}"
        return name, register_source(registry, name, extra_models[kind], 60, 0.2).version

    return _register


def iris_reference():
    """The conftest 'good' iris model retrained, with its predictions on the holdout file."""
    import pandas as pd

    from models import IRIS_FEATURES, train_iris

    holdout = pd.read_csv(HOLDOUT)
    model = train_iris("good")
    x = holdout[IRIS_FEATURES]
    return holdout["target"].to_numpy(), model.predict(x), model.predict_proba(x), model


def checks_of(result) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads(result.out)["checks"]}


def evaluated(result) -> dict[str, float]:
    checks = checks_of(result)
    assert checks["evaluation"]["status"] == "passed", checks["evaluation"]
    assert checks["evaluation"]["details"]["errors"] == {}
    return checks["evaluation"]["value"]


def evaluation(dataset, **extra):
    return {"dataset": str(dataset), "target": "target", "task": "classification", **extra}


# ------------------------------------------------------------------ 1. dataset formats


def test_jsonl_and_parquet_datasets_score_exactly_like_csv(gate, policy, register, tmp_path):
    import pandas as pd
    from sklearn import metrics as sk

    name, version = register("good")
    frame = pd.read_csv(HOLDOUT)
    frame.to_json(tmp_path / "holdout.jsonl", orient="records", lines=True)
    frame.to_parquet(tmp_path / "holdout.parquet", index=False)
    # An extension the gate cannot guess from, with the format declared.
    frame.to_json(tmp_path / "holdout.txt", orient="records", lines=True)
    wanted = ["accuracy", "precision", "recall", "f1", "log_loss"]
    runs = {}
    for label, dataset, fmt in (("csv", HOLDOUT, "auto"), ("jsonl", tmp_path / "holdout.jsonl", "auto"),
                                ("parquet", tmp_path / "holdout.parquet", "auto"),
                                ("declared-jsonl", tmp_path / "holdout.txt", "jsonl")):
        path = policy(evaluation=evaluation(dataset, metrics=wanted, format=fmt), smoke=None)
        result = gate("check", "--policy", str(path), "--model-uri", f"models:/{name}/{version}",
                      "--dry-run", "--format", "json")
        assert result.code == 0, result.out + result.err
        runs[label] = evaluated(result)
        assert f"evaluated on {len(frame)} rows" in checks_of(result)["evaluation"]["message"]
    assert runs["jsonl"] == runs["csv"] == runs["parquet"] == runs["declared-jsonl"]
    y, pred, proba, _ = iris_reference()
    assert runs["csv"] == pytest.approx({
        "accuracy": sk.accuracy_score(y, pred),
        "precision": sk.precision_score(y, pred, average="macro"),
        "recall": sk.recall_score(y, pred, average="macro"),
        "f1": sk.f1_score(y, pred, average="macro"),
        "log_loss": sk.log_loss(y, proba),
    }, rel=1e-9)


# ------------------------------------------------------------------ 2. smoke input files


def test_smoke_input_files_csv_parquet_jsonl(gate, policy, register, tmp_path):
    import pandas as pd

    from models import IRIS_FEATURES

    name, version = register("good")
    frame = pd.read_csv(HOLDOUT)[IRIS_FEATURES]
    pieces = {"csv": frame.iloc[0:3], "parquet": frame.iloc[10:15], "jsonl": frame.iloc[20:24]}
    (tmp_path / "smoke").mkdir()
    pieces["csv"].to_csv(tmp_path / "smoke" / "rows.csv", index=False)
    pieces["parquet"].to_parquet(tmp_path / "smoke" / "rows.parquet", index=False)
    pieces["jsonl"].to_json(tmp_path / "smoke" / "rows.jsonl", orient="records", lines=True)
    _, _, _, model = iris_reference()
    cases = [{"name": f"from-{fmt}", "input": {"file": f"smoke/rows.{fmt}"},  # relative to the policy file
              "expect": {"rows": len(rows), "output_type": "ndarray", "shape": [len(rows)],
                         "values": model.predict(rows).tolist()}}
             for fmt, rows in pieces.items()]
    # The same file with expectations of other rows must fail: the file's own rows were predicted.
    other = model.predict(frame.iloc[30:33]).tolist()
    assert other != cases[0]["expect"]["values"]
    cases.append({"name": "csv-wrong-values", "input": {"file": "smoke/rows.csv"}, "expect": {"values": other}})
    path = policy(smoke={"timeout_s": 30, "cases": cases}, evaluation=None, thresholds=None)
    result = gate("check", "--policy", str(path), "--model-uri", f"models:/{name}/{version}",
                  "--dry-run", "--format", "json")
    assert result.code == 1, result.out + result.err
    checks = checks_of(result)
    for fmt, rows in pieces.items():
        check = checks[f"smoke.from-{fmt}"]
        assert check["status"] == "passed", check
        assert check["message"].startswith(f"smoke case 'from-{fmt}': {len(rows)} rows of ndarray in ")
    wrong = checks["smoke.csv-wrong-values"]
    assert wrong["status"] == "failed"
    index = next(i for i, (a, b) in enumerate(zip(cases[0]["expect"]["values"], other)) if a != b)
    got = cases[0]["expect"]["values"][index]
    assert wrong["message"] == (f"smoke case 'csv-wrong-values': value {index} is {float(got):.6g}, "
                                f"expected {other[index]} (abs tol 1e-06, rel tol 0)")


# ------------------------------------------------------------------ 3. columns and tolerances


def test_smoke_columns_pass_and_fail(gate, policy, tmp_path):
    import mlflow.pyfunc

    code = tmp_path / "frame_model.py"
    code.write_text(FRAME_MODEL)
    folder = tmp_path / "frame-model"
    mlflow.pyfunc.save_model(str(folder), python_model=str(code), pip_requirements=REQUIREMENTS)
    rows = {"records": [{"x": 1.0}, {"x": 3.0}]}
    cases = [
        {"name": "right-columns", "input": rows,
         "expect": {"rows": 2, "output_type": "dataframe", "columns": ["score", "label"], "shape": [2, 2],
                    "values": [0.625, 0, 1.625, 1]}},
        {"name": "wrong-order", "input": rows, "expect": {"columns": ["label", "score"]}},
        {"name": "missing-column", "input": rows, "expect": {"columns": ["score", "label", "confidence"]}},
    ]
    path = policy(smoke={"timeout_s": 30, "cases": cases}, evaluation=None, thresholds=None,
                  formats={"pickle": "allow"})
    result = gate("check", "--policy", str(path), "--model-uri", str(folder), "--format", "json")
    assert result.code == 1, result.out + result.err
    checks = checks_of(result)
    assert checks["smoke.right-columns"]["status"] == "passed", checks["smoke.right-columns"]
    assert checks["smoke.wrong-order"]["status"] == "failed"
    assert checks["smoke.wrong-order"]["message"] == (
        "smoke case 'wrong-order': output columns are ['score', 'label'], expected ['label', 'score']")
    assert checks["smoke.missing-column"]["message"] == (
        "smoke case 'missing-column': output columns are ['score', 'label'], "
        "expected ['score', 'label', 'confidence']")
    assert json.loads(result.out)["decision"] == "rejected"


def test_regressor_smoke_values_with_abs_and_rel_tolerance(gate, policy, register_extra, tmp_path):
    name, version = register_extra("diabetes")
    _, holdout = diabetes_split()
    x = holdout.drop(columns="target").head(2)
    first, second = (float(v) for v in train_diabetes().predict(x))
    records = {"records": x.to_dict(orient="records")}

    def case(label, values, tolerance):
        return {"name": label, "input": records, "expect": {"rows": 2, "values": values, "tolerance": tolerance}}

    cases = [
        case("abs-within", [first + 0.009, second - 0.009], {"abs": 0.01, "rel": 0}),
        case("abs-just-outside", [first, second + 0.011], {"abs": 0.01, "rel": 0}),
        case("rel-within", [first * 1.0009, second * 0.9991], {"abs": 0, "rel": 0.001}),
        case("rel-just-outside", [first * 1.0011, second], {"abs": 0, "rel": 0.001}),
        case("default-tolerance", [first, second], {}),
    ]
    path = policy(smoke={"timeout_s": 30, "cases": cases}, evaluation=None, thresholds=None, formats=SKLEARN_FORMATS)
    result = gate("check", "--policy", str(path), "--model-uri", f"models:/{name}/{version}",
                  "--dry-run", "--format", "json")
    assert result.code == 1, result.out + result.err
    checks = checks_of(result)
    status = {label: checks[f"smoke.{label}"]["status"] for label in
              ("abs-within", "abs-just-outside", "rel-within", "rel-just-outside", "default-tolerance")}
    assert status == {"abs-within": "passed", "abs-just-outside": "failed", "rel-within": "passed",
                      "rel-just-outside": "failed", "default-tolerance": "passed"}
    assert checks["smoke.abs-just-outside"]["message"] == (
        f"smoke case 'abs-just-outside': value 1 is {second:.6g}, expected {second + 0.011} (abs tol 0.01, rel tol 0)")
    assert checks["smoke.rel-just-outside"]["message"] == (
        f"smoke case 'rel-just-outside': value 0 is {first:.6g}, expected {first * 1.0011} (abs tol 0, rel tol 0.001)")


# ------------------------------------------------------------------ 4. classification metrics


@pytest.mark.parametrize("average", ["micro", "weighted"])
def test_multiclass_averages_match_sklearn(average, gate, policy, register):
    from sklearn import metrics as sk

    name, version = register("good")
    wanted = ["accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"]
    path = policy(evaluation=evaluation(HOLDOUT, metrics=wanted, average=average), smoke=None)
    result = gate("check", "--policy", str(path), "--model-uri", f"models:/{name}/{version}",
                  "--dry-run", "--format", "json")
    assert result.code == 0, result.out + result.err
    y, pred, proba, model = iris_reference()
    assert evaluated(result) == pytest.approx({
        "accuracy": sk.accuracy_score(y, pred),
        "precision": sk.precision_score(y, pred, average=average),
        "recall": sk.recall_score(y, pred, average=average),
        "f1": sk.f1_score(y, pred, average=average),
        "roc_auc": sk.roc_auc_score(y, proba, multi_class="ovr", average=average, labels=model.classes_),
        "log_loss": sk.log_loss(y, proba),
    }, rel=1e-9)


def test_binary_with_pos_label_matches_sklearn(gate, policy, register_extra, tmp_path):
    from sklearn import metrics as sk

    name, version = register_extra("cancer")
    _, holdout = cancer_split()
    dataset = tmp_path / "cancer-holdout.csv"
    holdout.to_csv(dataset, index=False)
    model = train_cancer()
    x, y = holdout.drop(columns="target"), holdout["target"].to_numpy()
    pred, proba = model.predict(x), model.predict_proba(x)
    wanted = ["accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"]
    scores = {}
    for pos_label in (0, 1):  # 0 is "malignant" in scikit-learn's encoding
        path = policy(evaluation=evaluation(dataset, metrics=wanted, average="binary", pos_label=pos_label),
                      smoke=None, thresholds={"recall": {"direction": "higher", "min": 0.9}}, formats=SKLEARN_FORMATS)
        result = gate("check", "--policy", str(path), "--model-uri", f"models:/{name}/{version}",
                      "--dry-run", "--format", "json")
        assert result.code == 0, result.out + result.err
        scores[pos_label] = evaluated(result)
        positive = list(model.classes_).index(pos_label)
        assert scores[pos_label] == pytest.approx({
            "accuracy": sk.accuracy_score(y, pred),
            "precision": sk.precision_score(y, pred, pos_label=pos_label),
            "recall": sk.recall_score(y, pred, pos_label=pos_label),
            "f1": sk.f1_score(y, pred, pos_label=pos_label),
            # The AUC of ranking the positive class first: the same for either class.
            "roc_auc": sk.roc_auc_score(y == pos_label, proba[:, positive]),
            "log_loss": sk.log_loss(y, proba),
        }, rel=1e-9), pos_label
    assert scores[0]["precision"] != scores[1]["precision"]  # pos_label really reached sklearn


# ------------------------------------------------------------------ 5. regression


def test_regression_task_end_to_end(gate, policy, register_extra, client, tmp_path):
    from sklearn import metrics as sk

    name, version = register_extra("diabetes")
    _, holdout = diabetes_split()
    dataset = tmp_path / "diabetes-holdout.parquet"
    holdout.to_parquet(dataset, index=False)
    y = holdout["target"].to_numpy()
    pred = train_diabetes().predict(holdout.drop(columns="target"))
    expected = {"mae": sk.mean_absolute_error(y, pred), "rmse": math.sqrt(sk.mean_squared_error(y, pred)),
                "r2": sk.r2_score(y, pred)}
    regression = {"dataset": str(dataset), "target": "target", "task": "regression", "metrics": ["mae", "rmse", "r2"]}
    smoke = {"timeout_s": 30, "cases": [{"name": "one-row", "input": {"records": [
        holdout.drop(columns="target").iloc[0].to_dict()]}, "expect": {"rows": 1, "output_type": "ndarray"}}]}

    strict = {"mae": {"direction": "lower", "max": expected["mae"] - 0.5},
              "r2": {"direction": "higher", "min": 0.3}}
    rejected = gate("check", "--policy", str(policy(evaluation=regression, thresholds=strict, smoke=smoke,
                                                     formats=SKLEARN_FORMATS)),
                    "--model-uri", f"models:/{name}/{version}", "--format", "json")
    assert rejected.code == 1, rejected.out + rejected.err
    checks = checks_of(rejected)
    assert checks["threshold.mae"]["status"] == "failed"
    assert checks["threshold.mae"]["value"] == pytest.approx(expected["mae"], rel=1e-9)
    assert f"mae {expected['mae']:.6g} is above the maximum {expected['mae'] - 0.5:.6g}" in checks["threshold.mae"]["message"]
    assert checks["threshold.r2"]["status"] == "passed"
    assert client.get_registered_model(name).aliases == {}

    rules = {"mae": {"direction": "lower", "max": 50.0}, "rmse": {"direction": "lower", "max": 60.0},
             "r2": {"direction": "higher", "min": 0.3}}
    promoted = gate("check", "--policy", str(policy(evaluation=regression, thresholds=rules, smoke=smoke,
                                                     formats=SKLEARN_FORMATS)),
                    "--model-uri", f"models:/{name}/{version}", "--format", "json")
    assert promoted.code == 0, promoted.out + promoted.err
    assert json.loads(promoted.out)["decision"] == "promoted"
    assert evaluated(promoted) == pytest.approx(expected, rel=1e-9)
    checks = checks_of(promoted)
    for metric in ("mae", "rmse", "r2"):
        assert checks[f"threshold.{metric}"]["status"] == "passed"
        assert checks[f"threshold.{metric}"]["value"] == pytest.approx(expected[metric], rel=1e-9)
    assert 0.3 < expected["r2"] < 0.6 and 40 < expected["mae"] < 50  # a real, imperfect regressor
    assert client.get_model_version_by_alias(name, "champion").version == version


def test_jsonl_reads_numbers_like_csv(tmp_path):
    """Decimals parse to the same doubles as in CSV, and numbers under a date-like name stay numbers."""
    from gate.datasets import load_table

    rows = [(f"{0.1 * i + 5.3!r}", 1700000000 + i, i, i % 2) for i in range(40)]  # same decimal text in both
    (tmp_path / "t.csv").write_text("x,event_time,modified,target\n" + "".join(
        f"{x},{t},{m},{y}\n" for x, t, m, y in rows))
    (tmp_path / "t.jsonl").write_text("".join(
        f'{{"x": {x}, "event_time": {t}, "modified": {m}, "target": {y}}}\n' for x, t, m, y in rows))
    csv = load_table(tmp_path / "t.csv")
    jsonl = load_table(tmp_path / "t.jsonl")
    assert jsonl.dtypes.to_dict() == csv.dtypes.to_dict()
    assert jsonl.equals(csv)
