"""check_integrity, the contract with gate/pipeline.py, and the file walk's symlink rules."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading

import pytest
from pydantic import ValidationError

from gate.errors import UsageError
from gate.results import Status
from gate.signing.gate_check import check_integrity
from gate.signing.policy import IntegrityPolicy, SignaturePolicy
from gate.signing.walk import list_model_files

FILES = ["config.json", "empty.txt", "sub/tokenizer.txt", "weights.bin"]


def _policy(**kw) -> IntegrityPolicy:
    return IntegrityPolicy(signature=SignaturePolicy(**kw))


@pytest.fixture
def signed(keys, model, gate):
    assert gate("sign", model, "--key", keys["p256"][0]) == 0
    return model


def test_no_signature_section_means_no_check(model, tmp_path):
    assert check_integrity(IntegrityPolicy(), model, base_dir=tmp_path) == []


def test_passed_with_details(keys, signed, tmp_path):
    shutil.copy(keys["p256"][1], tmp_path / "trusted.pem")
    [result] = check_integrity(_policy(public_keys=["trusted.pem"]), signed, base_dir=tmp_path)
    assert result.name == "integrity.signature" and result.stage == "integrity"
    assert result.status is Status.PASSED
    assert result.details["files"] == FILES
    assert result.details["method"] == "key"
    assert result.details["key_fingerprint"].startswith("sha256:")


def test_fingerprints_alone_say_a_hint_needs_the_key_file(keys, signed, tmp_path, gate, capsys):
    capsys.readouterr()
    assert gate("verify", signed, "--key", keys["p256"][1], "--json") == 0
    pinned = json.loads(capsys.readouterr().out)["key_fingerprint"]
    [result] = check_integrity(_policy(key_fingerprints=[pinned]), signed, base_dir=tmp_path)
    assert result.status is Status.FAILED
    assert "names its key only by hint" in result.message and "add the public key file to public_keys" in result.message
    assert "wrong key" not in result.message


def test_tampered_fails_naming_every_difference(keys, signed, tmp_path):
    (signed / "config.json").write_text("{}")
    (signed / "sub" / "tokenizer.txt").unlink()
    [result] = check_integrity(_policy(public_keys=[str(keys["p256"][1])]), signed, base_dir=tmp_path)
    assert result.status is Status.FAILED and result.blocking
    assert "modified: config.json" in result.message and "missing: sub/tokenizer.txt" in result.message
    assert result.details["files"] == []


def test_absent_signature_required_or_not(keys, model, tmp_path):
    [required] = check_integrity(_policy(public_keys=[str(keys["p256"][1])]), model, base_dir=tmp_path)
    assert required.status is Status.FAILED and "required but not found" in required.message
    [optional] = check_integrity(_policy(public_keys=[str(keys["p256"][1])], required=False), model,
                                 base_dir=tmp_path)
    assert optional.status is Status.SKIPPED and "not required" in optional.message


def test_signature_next_to_the_policy(keys, model, gate, tmp_path):
    assert gate("sign", model, "--key", keys["p256"][0], "--signature", tmp_path / "sigs" / "m.sig") == 0
    [result] = check_integrity(_policy(public_keys=[str(keys["p256"][1])], signature="sigs/m.sig"), model,
                               base_dir=tmp_path)
    assert result.status is Status.PASSED


def test_precomputed_digests_are_used_instead_of_reading(keys, signed, tmp_path):
    policy = _policy(public_keys=[str(keys["p256"][1])])
    digests = {name: hashlib.sha256((signed / name).read_bytes()).hexdigest() for name in FILES}
    [good] = check_integrity(policy, signed, base_dir=tmp_path, precomputed_digests=digests)
    assert good.status is Status.PASSED
    # A download whose streamed digest differs from the signature is caught without re-reading.
    digests["weights.bin"] = "ab" * 32
    [bad] = check_integrity(policy, signed, base_dir=tmp_path, precomputed_digests=digests)
    assert bad.status is Status.FAILED and "modified: weights.bin" in bad.message
    # Files are still listed: an extra file is named even when digests are given.
    (signed / "extra.py").write_text("print(1)")
    digests["weights.bin"] = hashlib.sha256((signed / "weights.bin").read_bytes()).hexdigest()
    [extra] = check_integrity(policy, signed, base_dir=tmp_path, precomputed_digests=digests)
    assert "added: extra.py" in extra.message


def test_detached_in_the_gate(keys, model, gate, tmp_path):
    assert gate("sign", model, "--key", keys["rsa"][0], "--method", "detached") == 0
    policy = _policy(method="detached", public_keys=[str(keys["rsa"][1])])
    [result] = check_integrity(policy, model, base_dir=tmp_path)
    assert result.status is Status.PASSED and result.details["files"] == FILES


def test_policy_problems_raise_usage_errors(model, tmp_path):
    with pytest.raises(UsageError, match="cannot read public key"):
        check_integrity(_policy(public_keys=["missing.pem"]), model, base_dir=tmp_path)
    with pytest.raises(ValidationError, match="method key needs public_keys"):
        SignaturePolicy()
    with pytest.raises(ValidationError, match="glob character"):
        SignaturePolicy(public_keys=["k.pem"], ignore=["*.md"])
    with pytest.raises(ValidationError, match="sha256:<64 hex digits>"):
        SignaturePolicy(key_fingerprints=["md5:abc"])


def test_symlink_outside_is_never_followed_and_cycles_end(tmp_path):
    root = tmp_path / "m"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f.bin").write_bytes(b"1")
    (tmp_path / "secret").write_text("outside")
    os.symlink(tmp_path / "secret", root / "leak")
    os.symlink(root, root / "d" / "loop")  # a cycle back to the root
    os.symlink("f.bin", root / "d" / "alias")  # inside, allowed when the signature allows symlinks

    strict = list_model_files(root, [])
    assert [f.name for f in strict.files] == ["d/f.bin"]
    assert any(p.startswith("symlink: leak") for p in strict.problems)

    done: list = []
    walker = threading.Thread(target=lambda: done.append(list_model_files(root, [], allow_symlinks=True)))
    walker.start()
    walker.join(timeout=10)
    assert done, "the walk did not finish: a symlink cycle hung it"
    relaxed = done[0]
    assert [f.name for f in relaxed.files] == ["d/alias", "d/f.bin"]
    assert "symlink outside the model folder: leak (not followed)" in relaxed.problems
    assert "symlink cycle: d/loop (not followed)" in relaxed.problems
