import io
import operator
import os
import pickle
import pydoc
import subprocess
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
import torch

from gate.formats.decide import judge
from gate.formats.inspect import inspect_tree
from gate.formats.pickle_scan import scan_stream
from gate.formats.policy import FormatsPolicy
from tests.formats.conftest import Evil


def _one(tmp_path, name, content, policy=FormatsPolicy()):
    (tmp_path / name).write_bytes(content)
    reports = inspect_tree(tmp_path / name, allow_globals=tuple(policy.allow_globals))
    return judge(reports[0], policy)


@pytest.mark.parametrize("protocol", range(6))
@pytest.mark.parametrize("payload,global_name", [
    (Evil(os.system, "id"), "posix.system"),
    (Evil(subprocess.check_output, ["id"]), "subprocess.check_output"),
    (Evil(eval, "1+1"), "builtins.eval"),
    (Evil(exec, "x=1"), "builtins.exec"),
    (Evil(operator.methodcaller, "system", "id"), "operator.methodcaller"),
    (Evil(pydoc.locate, "os.system"), "pydoc.locate"),
])
def test_dangerous_callables_are_found_in_every_protocol(tmp_path, protocol, payload, global_name):
    verdict = _one(tmp_path, "model.safetensors", pickle.dumps({"w": payload}, protocol=protocol))
    assert verdict.report.format == "pickle" and not verdict.ok
    [finding] = [f for f in verdict.report.findings if f.global_name == global_name]
    assert finding.verdict == "denied" and finding.file == "model.safetensors"
    assert "model.safetensors" in verdict.problems[0] and global_name in verdict.problems[0]


def test_a_plain_torch_checkpoint_is_safe(tmp_path):
    torch.save(OrderedDict(w=torch.ones(2, 2), b=torch.zeros(2, dtype=torch.bfloat16)), tmp_path / "m.bin")
    [report] = inspect_tree(tmp_path)
    verdict = judge(report, FormatsPolicy())
    assert report.format == "pytorch-zip" and verdict.ok
    assert "torch._utils._rebuild_tensor_v2" in report.globals and "collections.OrderedDict" in report.globals


def test_malicious_object_inside_a_torch_zip(tmp_path):
    torch.save({"w": torch.ones(1), "x": Evil(os.system, "id")}, tmp_path / "m.pt")
    [report] = inspect_tree(tmp_path)
    [finding] = report.findings
    assert finding.global_name == "posix.system" and finding.member.endswith("data.pkl")
    assert not judge(report, FormatsPolicy()).ok


def test_unknown_globals_are_unsafe_only_when_strict(tmp_path):
    content = pickle.dumps({"d": pickle.PickleBuffer}, protocol=2)  # pickle.PickleBuffer is denied
    assert not _one(tmp_path, "a.pkl", content, FormatsPolicy(strict=False)).ok
    content = pickle.dumps(np.random.default_rng(0), protocol=4)  # numpy.random._pickle.* : unknown
    strict = _one(tmp_path, "b.pkl", content)
    lenient = _one(tmp_path, "b.pkl", content, FormatsPolicy(strict=False))
    assert not strict.ok and any(f.verdict == "unknown" for f in strict.report.findings)
    assert lenient.ok and lenient.notes


def test_stack_global_through_the_memo_is_resolved():
    # Hand-written protocol 4: the module and name strings are memoized, then fetched with BINGET.
    data = (b"\x80\x04\x8c\x05posix\x94\x8c\x06system\x94h\x00h\x01\x93\x8c\x02id\x85R.")
    scan = scan_stream(io.BytesIO(data))
    assert scan.error is None and [g.qualified for g in scan.globals] == ["posix.system"]


def test_stack_global_with_computed_operands_is_unresolved(tmp_path):
    # The module name is the result of a call (str.lower via a reduce), so no constant names it.
    data = (b"\x80\x04\x8c\x08builtins\x8c\x03str\x93\x8c\x05POSIX\x85R\x8c\x06system\x93)R.")
    scan = scan_stream(io.BytesIO(data))
    assert scan.unresolved and [g.qualified for g in scan.globals] == ["builtins.str"]
    verdict = _one(tmp_path, "c.pkl", data, FormatsPolicy(pickle="allow"))
    assert not verdict.ok and any("computed" in p for p in verdict.problems)


def test_dotted_names_cannot_reach_through_an_allowed_module(tmp_path):
    data = b"\x80\x04\x8c\x0ctorch._utils\x8c\x0eos.path.exists\x93\x8c\x01/\x85R."
    verdict = _one(tmp_path, "d.pkl", data)
    [finding] = verdict.report.findings
    assert finding.global_name == "torch._utils.os.path.exists" and finding.verdict == "denied"


def test_object_arrays_in_npy_and_npz_are_scanned(tmp_path):
    np.save(tmp_path / "plain.npy", np.arange(5))
    with open(tmp_path / "obj.npy", "wb") as out:
        np.save(out, np.array([Evil(os.system, "id")], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "mixed.npz", a=np.arange(3), b=np.array([Evil(eval, "1")], dtype=object))
    reports = {r.path: r for r in inspect_tree(tmp_path)}
    assert reports["plain.npy"].has_pickle is False and reports["plain.npy"].findings == []
    assert [f.global_name for f in reports["obj.npy"].findings] == ["posix.system"]
    assert [(f.member, f.global_name) for f in reports["mixed.npz"].findings] == [("b.npy", "builtins.eval")]


def test_a_pickle_hidden_in_a_generic_zip(tmp_path):
    with zipfile.ZipFile(tmp_path / "bundle.zip", "w") as archive:
        archive.writestr("weights/blob", pickle.dumps(Evil(os.system, "id"), protocol=3))
    [report] = inspect_tree(tmp_path)
    assert report.format == "zip" and report.findings[0].member == "weights/blob"


def test_legacy_torch_files_hold_several_pickles(tmp_path):
    torch.save({"w": torch.ones(3)}, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    with open(tmp_path / "old.pt", "rb") as stream:
        scan = scan_stream(stream)
    assert scan.pickles == 5 and scan.error is None and scan.trailing_bytes > 0
    assert "torch._utils._rebuild_tensor_v2" in {g.qualified for g in scan.globals}


def test_truncated_pickle_is_invalid(tmp_path):
    content = pickle.dumps({"a": list(range(100))}, protocol=4)[:-20]
    (tmp_path / "t.pkl").write_bytes(b"\x80\x04" + content[2:])
    [report] = inspect_tree(tmp_path / "t.pkl")
    assert report.errors and "malformed pickle" in report.errors[0]


def test_scanning_skips_payloads_instead_of_holding_them(tmp_path):
    import tracemalloc

    path = tmp_path / "big.pkl"
    path.write_bytes(pickle.dumps({"blob": b"\x00" * (64 * 2**20), "f": os.system}, protocol=5))
    tracemalloc.start()
    with open(path, "rb") as stream:
        scan = scan_stream(stream)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert [g.qualified for g in scan.globals] == ["posix.system"]
    assert peak < 4 * 2**20, f"peak {peak} bytes while scanning a 64 MiB pickle"
