"""joblib.dump files: raw NumPy buffers between the opcodes, read the way joblib.load reads them."""

import io
import pickle

import joblib
import numpy as np
import pytest

from gate.cli import main
from gate.formats.decide import judge
from gate.formats.inspect import inspect_tree
from gate.formats.pickle_scan import scan_stream
from gate.formats.policy import FormatsPolicy

IRIS_ALLOW = ["sklearn.*", "numpy.*", "scipy.*", "joblib.*"]  # examples/policies/iris.yaml


@pytest.fixture(scope="module")
def sklearn_dumps(tmp_path_factory):
    """Real models trained on scikit-learn's bundled data, saved with joblib.dump."""
    from sklearn.compose import make_column_transformer
    from sklearn.datasets import load_diabetes, load_iris
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import LabelEncoder, OneHotEncoder, StandardScaler

    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"], dtype=object)[y]
    frame = load_iris(as_frame=True).frame.assign(kind=np.where(y > 0, "large", "small"))
    columns = make_column_transformer((StandardScaler(), ["sepal length (cm)", "petal width (cm)"]),
                                      (OneHotEncoder(), ["kind"]))
    Xd, yd = load_diabetes(return_X_y=True)
    models = {
        "logistic.joblib": LogisticRegression(max_iter=500).fit(X, y),
        "forest.joblib": RandomForestClassifier(n_estimators=5, random_state=0).fit(X, names),  # Tree nodes: structured
        "hist-gb.joblib": HistGradientBoostingRegressor(max_iter=5).fit(Xd, yd),
        "pipeline.joblib": make_pipeline(columns, LogisticRegression(max_iter=500)).fit(frame, y),  # object arrays
        "knn.joblib": KNeighborsClassifier().fit(X, y),
        "labels.joblib": LabelEncoder().fit(names),  # an object array is the first array of the file
    }
    folder = tmp_path_factory.mktemp("joblib")
    for name, model in models.items():
        joblib.dump(model, folder / name)
    return folder


def test_real_joblib_dumps_of_sklearn_models_scan_as_pickles_with_their_globals(sklearn_dumps):
    policy = FormatsPolicy(allow_globals=IRIS_ALLOW)
    reports = {r.path: r for r in inspect_tree(sklearn_dumps, allow_globals=tuple(IRIS_ALLOW))}
    assert len(reports) == 6
    for name, report in reports.items():
        verdict = judge(report, policy)
        assert report.format == "pickle" and report.errors == [] and verdict.ok, (name, verdict.problems)
        assert "joblib.numpy_pickle.NumpyArrayWrapper" in report.globals and "joblib.dump with" in report.detail
    assert "sklearn.ensemble._forest.RandomForestClassifier" in reports["forest.joblib"].globals
    assert "sklearn.tree._tree.Tree" in reports["forest.joblib"].globals
    assert "sklearn.preprocessing._encoders.OneHotEncoder" in reports["pipeline.joblib"].globals
    # joblib.load reads them back: the files are what the scan says they are
    assert list(joblib.load(sklearn_dumps / "labels.joblib").classes_) == ["setosa", "versicolor", "virginica"]


def test_scan_command_passes_a_joblib_model_under_the_iris_patterns(sklearn_dumps, capsys):
    args = [a for pattern in IRIS_ALLOW for a in ("--allow-global", pattern)]
    assert main(["scan", str(sklearn_dumps / "forest.joblib"), *args]) == 0
    assert main(["scan", str(sklearn_dumps / "forest.joblib")]) == 1  # strict: sklearn globals are unknown
    assert "sklearn.ensemble._forest.RandomForestClassifier: unknown" in capsys.readouterr().out


def _dump(value) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(value, buffer)
    return buffer.getvalue()


def _scan(data: bytes):
    return scan_stream(io.BytesIO(data))


def test_a_buffer_whose_size_disagrees_with_the_wrapper_is_malformed():
    data = _dump({"w": np.arange(10, dtype="<i8"), "b": np.ones(3)})
    raw = np.arange(10, dtype="<i8").tobytes()
    assert data.count(raw) == 1 and _scan(data).error is None
    shorter = data.replace(raw, raw[:-8])
    longer = data.replace(raw, raw + bytes(8))
    for broken in (shorter, longer, data[:data.index(raw) + 40]):
        assert _scan(broken).error, broken[-20:]
    with pytest.raises(Exception):  # joblib.load cannot read them either
        joblib.load(io.BytesIO(shorter))


def test_a_padding_byte_that_pickle_load_would_run_as_an_opcode_is_malformed():
    # With the alignment raised to 64 the padding length can be 40: "(" (MARK) for pickle.load.
    data = _dump(np.arange(4, dtype="<i8"))
    raw = np.arange(4, dtype="<i8").tobytes()
    at = data.index(raw)
    pad_length = next(n for n in range(1, 17) if data[at - n - 1] == n and data[at - n:at] == b"\xff" * n)
    crafted = (data[:at - pad_length - 1].replace(b"K\x10", b"K\x40", 1) + b"(" + b"\xff" * 40 + data[at:])
    assert joblib.load(io.BytesIO(crafted)).tolist() == [0, 1, 2, 3]  # joblib reads it fine
    scan = _scan(crafted)
    assert scan.error and "padding length 40" in scan.error and "also a pickle opcode" in scan.error


def test_a_dtype_whose_flags_contradict_its_code_is_refused():
    # numpy takes hasobject from the flags: float32 flagged as holding objects makes joblib.load
    # read a nested pickle where the file has raw floats (and object flags cleared on an object
    # dtype make it read raw bytes as object pointers). The scan cannot follow either reading.
    data = _dump(np.zeros(2, dtype="<f4"))
    flags = b"J\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t"  # elsize -1, alignment -1, flags 0
    assert data.count(flags) == 1 and _scan(data).error is None
    scan = _scan(data.replace(flags, flags[:-2] + b"\x01t"))
    assert scan.error and "dtype the scan cannot read" in scan.error


class _Unseekable(io.RawIOBase):
    """A write-only stream without tell(): joblib then writes no alignment padding."""

    def __init__(self):
        self.chunks = []

    def writable(self):
        return True

    def write(self, data):
        self.chunks.append(bytes(data))
        return len(data)


def test_arrays_without_alignment_padding_are_refused_with_the_reason():
    stream = _Unseekable()
    joblib.dump(np.arange(3.0), stream)
    scan = _scan(b"".join(stream.chunks))
    assert scan.error and "without alignment padding" in scan.error


def test_what_a_plain_pickle_load_of_a_joblib_file_imports_is_checked_too(tmp_path):
    # pickle.load reads the nested pickle of an object array with the outer memo: BINGET 1 and 2
    # are "os" and "getenv" for it, "numpy" and "array" for joblib.load.
    data = _dump({"os": "getenv", "arr": np.array([None], dtype=object)})
    inner = pickle.dumps(np.array([None], dtype=object), protocol=5)
    crafted = data.replace(inner, b"\x80\x05\x8c\x05numpy\x94\x8c\x05numpy\x94\x8c\x05array\x94000"
                                  b"h\x01h\x02\x93\x8c\x02f4\x85R.")
    assert joblib.load(io.BytesIO(crafted))["arr"].dtype.kind == "U"
    scan = _scan(crafted)
    assert scan.error is None and "numpy.array" in [g.qualified for g in scan.globals]
    assert [g.qualified for g in scan.plain_globals] == ["os.getenv"]
    (tmp_path / "model.pkl").write_bytes(crafted)
    [report] = inspect_tree(tmp_path, allow_globals=tuple(IRIS_ALLOW))
    [finding] = [f for f in report.findings if f.global_name == "os.getenv"]
    assert finding.verdict == "denied" and "pickle.load (not joblib.load)" in finding.reason


def test_compressed_joblib_files_are_unsupported_with_a_clear_message(tmp_path, capsys):
    joblib.dump(np.arange(3.0), tmp_path / "model.joblib", compress=3)
    assert main(["scan", str(tmp_path), "--allow-global", "numpy.*", "--allow-global", "joblib.*"]) == 1
    out = capsys.readouterr().out
    assert "compressed" in out and "unsupported: compressed (zlib stream)" in out
    assert "joblib.dump(..., compress=0)" in out
