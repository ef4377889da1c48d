"""Signature-level tamper cases, each named by model-gate and refused by model_signing too."""

from __future__ import annotations

import json
import shutil

import pytest


@pytest.fixture
def signed(keys, model, gate):
    priv, _ = keys["p256"]
    assert gate("sign", model, "--key", priv) == 0
    return model


def _both(gate, ms_cli, capsys, model, pub, signature=None):
    signature = signature or model / "model.sig"
    capsys.readouterr()
    code = gate("verify", model, "--key", pub, "--signature", signature)
    err = capsys.readouterr().err
    done = ms_cli("verify", "key", model, "--signature", signature, "--public_key", pub)
    return code, err, done.returncode


def test_signature_of_another_model(tmp_path, keys, signed, gate, ms_cli, capsys):
    priv, pub = keys["p256"]
    other = tmp_path / "other-model"
    other.mkdir()
    (other / "weights.bin").write_bytes(b"other weights")
    assert gate("sign", other, "--key", priv) == 0
    shutil.copy(other / "model.sig", signed / "model.sig")
    code, err, ms_code = _both(gate, ms_cli, capsys, signed, pub)
    assert code == 1 and ms_code != 0
    assert "modified: weights.bin" in err and "added: config.json" in err


def test_wrong_key(keys, signed, gate, ms_cli, capsys):
    _, other_pub = keys["other"]
    code, err, ms_code = _both(gate, ms_cli, capsys, signed, other_pub)
    assert code == 1 and ms_code != 0
    assert "wrong key" in err


def test_truncated_bundle(signed, keys, gate, ms_cli, capsys):
    sig = signed / "model.sig"
    sig.write_bytes(sig.read_bytes()[: len(sig.read_bytes()) // 2])
    code, err, ms_code = _both(gate, ms_cli, capsys, signed, keys["p256"][1])
    assert code == 1 and ms_code != 0
    assert "malformed or truncated bundle" in err


def test_altered_payload_breaks_the_signature(signed, keys, gate, capsys):
    """Changing the signed statement (e.g. swapping in the digest of a tampered file) is caught."""
    import base64

    sig = signed / "model.sig"
    bundle = json.loads(sig.read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["predicate"]["resources"][0]["digest"] = "0" * 64
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    sig.write_text(json.dumps(bundle))
    capsys.readouterr()
    assert gate("verify", signed, "--key", keys["p256"][1]) == 1
    assert "invalid signature" in capsys.readouterr().err


def test_empty_folder(tmp_path, keys, signed, gate, ms_cli, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    capsys.readouterr()
    assert gate("sign", empty, "--key", keys["p256"][0]) == 2
    assert "empty" in capsys.readouterr().err
    # A valid signature next to an emptied model: every file is missing.
    shutil.copy(signed / "model.sig", empty / "model.sig")
    code, err, ms_code = _both(gate, ms_cli, capsys, empty, keys["p256"][1])
    assert code == 1 and ms_code != 0
    assert "missing: weights.bin" in err


def test_unsupported_hash_and_wrong_predicate_are_named(tmp_path):
    import hashlib

    from gate.signing.oms import BundleError, parse_statement

    digest = hashlib.sha256(b"x").hexdigest()
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "m", "digest": {"sha256": hashlib.sha256(bytes.fromhex(digest)).hexdigest()}}],
        "predicateType": "https://model_signing/signature/v1.0",
        "predicate": {"resources": [{"name": "a", "digest": digest, "algorithm": "md5"}],
                      "serialization": {"method": "files", "hash_type": "md5", "allow_symlinks": False}},
    }
    with pytest.raises(BundleError, match="unsupported hash algorithm 'md5'"):
        parse_statement(json.dumps(statement).encode())
    statement["predicate"]["serialization"]["hash_type"] = "sha256"
    statement["predicate"]["resources"][0]["algorithm"] = "sha256"
    assert parse_statement(json.dumps(statement).encode()).resources == {"a": digest}
    statement["predicateType"] = "https://model_signing/Digests/v0.1"
    with pytest.raises(BundleError, match="wrong predicate type"):
        parse_statement(json.dumps(statement).encode())
