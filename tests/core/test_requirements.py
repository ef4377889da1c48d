"""load.requirements: the model's requirements.txt and Python version against this environment."""

from __future__ import annotations

import json
import shutil
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from gate.mlmodel import read_mlmodel
from gate.requirements import check_requirements, find_mismatches
from gate.results import Status

NUMPY = metadata.version("numpy")
SKLEARN = metadata.version("scikit-learn")


def test_pins_ranges_markers_and_unjudged_lines():
    lines = [
        "# a comment\n", "\n",
        f"numpy=={NUMPY}\n",  # satisfied
        "scikit-learn\n",  # no version: installed is enough
        f"scikit-learn>={SKLEARN}  # comment after it\n",
        "numpy==0.0.1\n",  # pinned to another version
        "pandas<1\n",
        "surely-not-installed-package-xyz==1.0\n",
        'numpy==0.0.2; python_version < "3"\n',  # marker false here: not our environment's requirement
        "-r other-requirements.txt\n", "--extra-index-url https://example.invalid/simple\n",
        "this is not a requirement\n",
        "mypkg @ https://example.invalid/mypkg-1.0.tar.gz\n",  # a URL: what is installed cannot be traced to it
    ]
    mismatches, unjudged = find_mismatches(lines)
    assert [m.describe() for m in mismatches] == [
        f"numpy==0.0.1 (installed: {NUMPY})",
        f"pandas<1 (installed: {metadata.version('pandas')})",
        "surely-not-installed-package-xyz==1.0 (installed: none)",
    ]
    assert unjudged == ["-r other-requirements.txt", "--extra-index-url https://example.invalid/simple",
                        "this is not a requirement", "mypkg @ https://example.invalid/mypkg-1.0.tar.gz"]


def test_local_version_labels_match_as_pip_matches_them():
    # torch's CPU build is "2.x.y+cpu"; MLflow logs "torch==2.x.y" without the label.
    installed = metadata.version("torch")
    public = installed.split("+")[0]
    assert find_mismatches([f"torch=={public}"]) == ([], [])


def _model(tmp_path: Path, requirements: str | None, python: str | None) -> Path:
    folder = tmp_path / "model"
    folder.mkdir(parents=True)
    flavors = {"python_function": {"loader_module": "mlflow.sklearn"}}
    if python:
        flavors["python_function"]["python_version"] = python
    (folder / "MLmodel").write_text(yaml.safe_dump({"flavors": flavors}))
    if requirements is not None:
        (folder / "requirements.txt").write_text(requirements)
    return folder


def test_check_statuses_by_mode(tmp_path):
    here = f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    good = _model(tmp_path / "a", f"numpy=={NUMPY}\n", here)
    assert check_requirements(good, "warn")[0].status == Status.PASSED
    bad = _model(tmp_path / "b", "numpy==0.0.1\n", "2.7.18")
    [warned] = check_requirements(bad, "warn")
    assert warned.status == Status.WARNED and warned.value == 2
    assert f"python 2.7.18 (installed: {here})" in warned.message
    assert f"numpy==0.0.1 (installed: {NUMPY})" in warned.message
    [failed] = check_requirements(bad, "fail")
    assert failed.status == Status.FAILED and failed.blocking
    assert check_requirements(bad, "ignore") == []
    # A different patch release of the same Python is the same Python for this check.
    same_minor = _model(tmp_path / "c", "", f"{sys.version_info.major}.{sys.version_info.minor}.0")
    assert check_requirements(same_minor, "fail")[0].status == Status.PASSED
    none = _model(tmp_path / "d", None, None)
    assert check_requirements(none, "fail")[0].status == Status.SKIPPED


def test_pip_syntax_is_read_as_pip_reads_it(tmp_path):
    here = f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    folder = _model(tmp_path, None, here)
    (folder / "requirements.txt").write_bytes(f"\ufeffnumpy=={NUMPY}\r\nscikit-learn\\\n>={SKLEARN}\n".encode())
    assert check_requirements(folder, "fail")[0].status == Status.PASSED  # BOM, CRLF, a continued line
    # an unquoted 3.10 is the number 3.1 to YAML: not compared rather than reported as "python 3.1"
    (folder / "MLmodel").write_text("flavors: {python_function: {python_version: 2.7}}\n")
    assert check_requirements(folder, "fail")[0].status == Status.PASSED


def test_a_file_too_long_to_check_says_so(tmp_path, monkeypatch):
    from gate import requirements

    monkeypatch.setattr(requirements, "MAX_LINES", 3)
    here = f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    folder = _model(tmp_path, "# 1\n# 2\n# 3\nsurely-not-installed-package-xyz==1.0\n", here)
    [failed] = check_requirements(folder, "fail")
    assert failed.status == Status.FAILED and "(everything after line 3)" in failed.message


def test_lines_that_cannot_be_checked_are_named_and_fail_in_fail_mode(tmp_path):
    here = f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    folder = _model(tmp_path, f"numpy=={NUMPY}\n-r other.txt\ngit+https://example.invalid/x.git\n", here)
    [warned] = check_requirements(folder, "warn")
    assert warned.status == Status.WARNED and warned.value == 2
    assert warned.message == ("2 line(s) of requirements.txt could not be checked: -r other.txt, "
                              "git+https://example.invalid/x.git")
    assert check_requirements(folder, "fail")[0].status == Status.FAILED
    (folder / "requirements.txt").write_bytes(bytes(range(256)) * 4)  # not text at all
    assert check_requirements(folder, "fail")[0].status == Status.FAILED


@pytest.mark.parametrize(("content", "problem"), [
    (b"\xff\xfe\x00garbage", "MLmodel: not UTF-8 text (byte 0)"),
    (b"- a\n- b\n", "MLmodel: must be a YAML mapping, got list"),
    (b"flavors: [\n", "MLmodel: not valid YAML at line 2"),
    (b"artifact_path: model\n", "MLmodel: has no 'flavors' mapping, so MLflow cannot load it"),
    # a "billion laughs" bomb: small as parsed data, gigabytes once a value becomes text
    (b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     b"flavors: {python_function: {python_version: [*b, *b, *b, *b, *b, *b, *b, *b, *b]}}\n",
     "MLmodel: uses YAML aliases (*name), which MLflow does not write"),
    (b"utc_time_created: 2026-13-45\nflavors: {python_function: {}}\n",
     "MLmodel: not valid YAML (ValueError: month must be in 1..12)"),
    (b"flavors: " + b"[" * 20000 + b"]" * 20000 + b"\n",
     "MLmodel: nested more than 64 levels deep, which MLflow does not write"),
])
def test_broken_mlmodel_is_named_before_loading(content, problem, tmp_path, gate, policy, tracking_uri):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "MLmodel").write_bytes(content)
    meta, found = read_mlmodel(folder)
    assert meta is None and found.startswith(problem)
    result = gate("check", "--policy", str(policy()), "--model-uri", str(folder), "--format", "json")
    assert result.code == 1, result.err
    [load] = [c for c in json.loads(result.out)["checks"] if c["name"] == "load"]
    assert load["status"] == "failed" and load["message"].startswith(problem)
    registered = gate("register", "--name", "never-registered", "--source", str(folder))
    assert registered.code == 2 and problem in registered.err


def test_gate_warns_or_rejects_before_loading(gate, policy, logged_models, tmp_path):
    """A real model whose requirements.txt pins a scikit-learn this environment does not have."""
    import mlflow.artifacts

    folder = Path(mlflow.artifacts.download_artifacts(logged_models["good"].source, dst_path=str(tmp_path / "dl")))
    pinned = tmp_path / "pinned"
    shutil.copytree(folder, pinned)
    (pinned / "requirements.txt").write_text("mlflow\nscikit-learn==0.20.0\nnumpy\n")

    warned = gate("check", "--policy", str(policy()), "--model-uri", str(pinned), "--format", "json")
    assert warned.code == 0, warned.err
    checks = {c["name"]: c for c in json.loads(warned.out)["checks"]}
    assert checks["load.requirements"]["status"] == "warned"
    assert f"scikit-learn==0.20.0 (installed: {SKLEARN})" in checks["load.requirements"]["message"]
    assert checks["evaluation"]["status"] == "passed"  # a warning does not stop the gate

    strict = policy(load={"timeout_s": 60, "requirements": "fail"})
    failed = gate("check", "--policy", str(strict), "--model-uri", str(pinned), "--format", "json")
    assert failed.code == 1
    names = [c["name"] for c in json.loads(failed.out)["checks"]]
    assert names[-1] == "load.requirements" and "evaluation" not in names  # rejected before loading

    untouched = gate("check", "--policy", str(policy()), "--model-uri", str(folder), "--format", "json")
    checks = {c["name"]: c for c in json.loads(untouched.out)["checks"]}
    assert untouched.code == 0 and checks["load.requirements"]["status"] == "passed"
