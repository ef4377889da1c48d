"""The denylist against the packages policies allow with wildcards (`sklearn.*`, `numpy.*`, ...).

Each global below exists in the installed version (the test imports it) and can run code,
import modules by name, unpickle, or reach files or the network when a pickle calls it. Under
the shipped iris policy's allow_globals every one of them was allowed before.
"""

import importlib
import io
import json
import pickle
from pathlib import Path

import pytest

from gate.cli import main
from gate.formats.decide import judge
from gate.formats.gate_check import check_formats
from gate.formats.inspect import inspect_tree
from gate.formats.pickle_scan import scan_stream
from gate.formats.policy import FormatsPolicy
from gate.results import Status

ROOT = Path(__file__).resolve().parents[2]
IRIS_POLICY = ROOT / "examples" / "policies" / "iris.yaml"
WILDCARDS = FormatsPolicy(allow_globals=["sklearn.*", "numpy.*", "scipy.*", "joblib.*", "pandas.*", "torch.*",
                                         "pyarrow.*"])

# (module, name, what a call does)
DANGEROUS = [
    ("sklearn.utils._testing", "assert_run_python_script_without_output", "runs Python source in a subprocess"),
    ("sklearn.utils.estimator_checks", "check_estimators_pickle", "pickle.loads"),
    ("sklearn.datasets", "fetch_openml", "downloads into a cache folder"),
    ("sklearn.datasets._base", "urlretrieve", "urllib's downloader, re-exported"),
    ("sklearn.datasets", "clear_data_home", "deletes a folder"),
    ("sklearn.datasets", "dump_svmlight_file", "writes a file"),
    ("sklearn.utils._set_output", "check_library_installed", "imports a module by name"),
    ("sklearn.utils", "all_estimators", "imports every sklearn module"),
    ("sklearn.callback._transport", "can_reuse_listener", "connects to an address"),
    ("sklearn.callback", "ScoringMonitor", "opens a socket listener when unpickled"),
    ("sklearn.tree", "export_graphviz", "writes a file"),
    ("sklearn.externals.array_api_compat.numpy", "savetxt", "numpy re-exported by a vendored library"),
    ("sklearn.utils.parallel", "Parallel", "starts worker processes"),
    ("numpy", "test", "runs pytest with the given arguments"),
    ("numpy.linalg", "test", "runs pytest"),
    ("numpy.lib.format", "open_memmap", "creates a file"),
    ("numpy", "memmap", "creates or truncates a file"),
    ("numpy", "savetxt", "writes a file"),
    ("numpy", "genfromtxt", "reads a file"),
    ("numpy", "fromregex", "reads a file"),
    ("numpy.core", "_ufunc_reconstruct", "imports any module and returns any attribute"),
    ("numpy.lib", "add_newdoc", "imports a module by name"),
    ("numpy", "info", "imports a module by name"),
    ("numpy.lib.stride_tricks", "as_strided", "reads and writes raw memory"),
    ("numpy.rec", "array", "opens a file when given a path"),
    ("numpy._core._methods", "_dump", "pickles into a file"),
    ("scipy.stats._continuous_distns", "norm_gen", "exec()s a template from its pickled state"),
    ("scipy.stats", "norm", "the same, as a singleton"),
    ("scipy.io", "savemat", "writes a file"),
    ("scipy.sparse", "load_npz", "reads a file"),
    ("scipy.sparse", "save_npz", "writes a file"),
    ("scipy.datasets", "face", "downloads"),
    ("scipy", "test", "runs pytest"),
    ("scipy._lib._uarray._backend", "unpickle_function", "imports a module by name"),
    ("scipy.odr", "ODR", "deletes its report files"),
    ("scipy", "LowLevelCallable", "wraps a C function pointer"),
    ("joblib", "dump", "writes a file"),
    ("joblib", "Memory", "creates its cache folder"),
    ("joblib", "Parallel", "starts worker processes"),
    ("joblib.disk", "delete_folder", "deletes a folder"),
    ("joblib._memmapping_reducer", "_strided_from_memmap", "memory-maps a file, w+ truncates it"),
    ("joblib.compressor", "BinaryZlibFile", "opens a file for writing"),
    ("joblib.numpy_pickle_compat", "NDArrayWrapper", "reads a file named in the pickle"),
    ("pandas", "test", "runs pytest with the given arguments"),
    ("pandas.compat._optional", "import_optional_dependency", "imports a module by name"),
    ("pandas.core.groupby.generic", "boxplot_frame_groupby", "imports the plotting backend it is given"),
    ("pandas.plotting._core", "_load_backend", "imports a module by name"),
    ("pandas", "HDFStore", "creates a file"),
    ("pandas", "ExcelWriter", "creates a file"),
    ("pandas", "options", "setting an option imports modules"),
    ("pandas.core.frame", "get_handle", "opens a file in any mode"),
    ("torch.storage", "_load_from_bytes", "torch.load(weights_only=False) on bytes from the pickle"),
    ("torch", "save", "writes a file"),
    ("torch", "set_default_tensor_type", "imports a module by name"),
    ("torch._utils", "_import_dotted_name", "imports a module by name"),
    ("torch.cuda.memory", "_snapshot", "unpickles a file"),
    ("torch.serialization", "add_safe_globals", "widens torch.load's allowlist"),
    ("torch.utils._pytree", "_defaultdict_deserialize", "imports a module by name"),
    ("pyarrow.lib", "foreign_buffer", "reads raw memory at an address"),
    ("pyarrow.lib", "output_stream", "creates a file"),
    ("pyarrow", "create_memory_map", "creates a file"),
    ("pyarrow.fs", "LocalFileSystem", "file system access"),
]


def _call_pickle(module: str, name: str) -> bytes:
    """Protocol 2: import module.name and call it with no arguments."""
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + b")R."


@pytest.mark.parametrize("module,name,what", DANGEROUS, ids=[f"{m}.{n}" for m, n, _ in DANGEROUS])
def test_dangerous_globals_of_allowed_packages_are_denied(tmp_path, capsys, module, name, what):
    assert callable(getattr(importlib.import_module(module), name)) or name == "options"
    (tmp_path / "model.pkl").write_bytes(_call_pickle(module, name))
    wildcards = [arg for pattern in WILDCARDS.allow_globals for arg in ("--allow-global", pattern)]
    assert main(["scan", str(tmp_path), "--json", *wildcards]) == 1
    [report] = json.loads(capsys.readouterr().out)["files"]
    [finding] = report["findings"]
    assert (finding["global_name"], finding["verdict"]) == (f"{module}.{name}", "denied"), what
    assert report["status"] == "unsafe"


def test_the_audit_reproduction_fails_formats_and_scan_under_the_iris_policy(tmp_path, capsys):
    # Finding 1 of the second audit: this pickle ran its code at load and the formats check passed.
    model = tmp_path / "model"
    model.mkdir()
    args = pickle.dumps(("open('/tmp/PWNED_gate', 'w').write('code ran')",), protocol=2)[2:-1]
    (model / "model.pkl").write_bytes(
        b"\x80\x02csklearn.utils._testing\nassert_run_python_script_without_output\n" + args + b"R.")
    (model / "MLmodel").write_text("flavors:\n  sklearn: {pickled_model: model.pkl}\n")
    assert main(["scan", str(model), "--policy", str(IRIS_POLICY)]) == 1
    out = capsys.readouterr().out
    assert "sklearn.utils._testing.assert_run_python_script_without_output: denied" in out
    from gate.policy import load_policy

    formats = load_policy(IRIS_POLICY).policy.formats
    summary, per_file = check_formats(formats, model)
    assert summary.status is Status.FAILED and per_file.name == "formats.model.pkl"


# ------------------------------------------------------------------ objects changed in place

@pytest.mark.parametrize("content,changed,opcode", [
    # BUILD on a scipy.stats singleton re-exported by sklearn: its __setstate__ exec()s the state.
    (b"\x80\x02csklearn.covariance._robust_covariance\nchi2\n}X\x13\x00\x00\x00_parse_arg_templateX\x03"
     b"\x00\x00\x00x=1sb.", "sklearn.covariance._robust_covariance.chi2", "BUILD"),
    # BUILD on a module fetched through the memo (protocol 4): patches sklearn.utils' globals.
    (b"\x80\x04\x8c\x07sklearn\x94\x8c\x05utils\x94\x93\x94" b"0h\x02}\x8c\x01x\x8c\x01ysb.",
     "sklearn.utils", "BUILD"),
    # APPENDS to a module-level list.
    (b"\x80\x02csklearn.utils._metadata_requests\nSIMPLE_METHODS\n(X\x03\x00\x00\x00abce.",
     "sklearn.utils._metadata_requests.SIMPLE_METHODS", "APPENDS"),
], ids=["scipy-singleton", "module-via-memo", "module-list"])
def test_changing_an_imported_object_in_place_is_denied(tmp_path, content, changed, opcode):
    scan = scan_stream(io.BytesIO(content))
    assert scan.error is None and scan.mutated and scan.mutated[0][0] == changed
    (tmp_path / "m.pkl").write_bytes(content)
    [report] = inspect_tree(tmp_path, allow_globals=tuple(WILDCARDS.allow_globals))
    [finding] = [f for f in report.findings if f.global_name == changed]
    assert finding.verdict == "denied" and opcode in finding.reason and "in place" in finding.reason
    assert not judge(report, WILDCARDS).ok


# ------------------------------------------------------------------ real models still pass

def _real_objects():
    import numpy as np
    import scipy.sparse as sp
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_iris
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, SplineTransformer, StandardScaler
    from sklearn.svm import SVC

    X, y = load_iris(return_X_y=True, as_frame=True)
    frame = X.assign(kind=np.where(y > 0, "b", "a").astype(object))
    frame["kind"] = frame["kind"].astype("string[pyarrow]")
    columns = ColumnTransformer([("num", StandardScaler(), list(X.columns)), ("cat", OneHotEncoder(), ["kind"])])
    return {
        "forest": RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y),
        "hist-gb": HistGradientBoostingClassifier(max_iter=3).fit(X, y),
        "pipeline": make_pipeline(columns, FunctionTransformer(np.abs), LogisticRegression(max_iter=300)).fit(frame, y),
        "knn": KNeighborsClassifier().fit(X.values, y),
        "mlp": MLPClassifier(max_iter=5, random_state=0).fit(X, y),
        "svc": SVC(probability=True, random_state=0).fit(X, y),
        # categorical features pickle a functools.partial around check_array
        "hist-gb-categorical": HistGradientBoostingClassifier(max_iter=3).fit(
            X.assign(kind=frame["kind"].astype(str).astype("category")), y),
        # SciPy BSplines keep the array-API asarray
        "spline": make_pipeline(SplineTransformer(n_knots=4), Ridge()).fit(X, y),
        "frame": frame,
        "sparse": sp.csr_matrix(np.eye(3)),
    }


@pytest.mark.filterwarnings("ignore")
def test_real_sklearn_models_pickled_every_way_pass_the_iris_policy(tmp_path):
    import cloudpickle

    from gate.policy import load_policy

    formats = load_policy(IRIS_POLICY).policy.formats
    for name, obj in _real_objects().items():
        for protocol in (0, 2, 4, 5):
            (tmp_path / f"{name}-{protocol}.pkl").write_bytes(pickle.dumps(obj, protocol=protocol))
        (tmp_path / f"{name}-cloudpickle.pkl").write_bytes(cloudpickle.dumps(obj))
    allowed = tuple([*formats.allow_globals, "pandas.*", "pyarrow.*"])  # the data frame needs these too
    policy = formats.model_copy(update={"allow_globals": list(allowed)})
    reports = inspect_tree(tmp_path, allow_globals=allowed)
    assert len(reports) == 50
    for report in reports:
        assert judge(report, policy).ok, (report.path, report.findings)
