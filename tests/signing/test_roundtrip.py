"""Sign then verify, for every key type and method, through the real CLI."""

from __future__ import annotations

import base64
import json
import stat

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

from gate.signing.keys import fingerprint, load_public_key


def _payload(sig_path):
    return json.loads(base64.b64decode(json.loads(sig_path.read_text())["dsseEnvelope"]["payload"]))


@pytest.mark.parametrize("curve", ["p256", "p384", "p521"])
def test_key_method_round_trip_every_curve(curve, keys, model, gate):
    priv, pub = keys[curve]
    assert gate("sign", model, "--key", priv) == 0
    assert gate("verify", model, "--key", pub) == 0
    statement = _payload(model / "model.sig")
    names = [r["name"] for r in statement["predicate"]["resources"]]
    # Every regular file, sorted, zero-byte file included, .git and the signature left out.
    assert names == ["config.json", "empty.txt", "sub/tokenizer.txt", "weights.bin"]
    assert statement["subject"][0]["name"] == "my-model"
    assert "model.sig" in statement["predicate"]["serialization"]["ignore_paths"]
    # The DSSE signature uses the hash that goes with the curve.
    key = load_public_key(pub)
    bundle = json.loads((model / "model.sig").read_text())
    sig = base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"])
    payload = base64.b64decode(bundle["dsseEnvelope"]["payload"])
    pae = b"DSSEv1 28 application/vnd.in-toto+json %d %s" % (len(payload), payload)
    digest = {"p256": hashes.SHA256(), "p384": hashes.SHA384(), "p521": hashes.SHA512()}[curve]
    key.verify(sig, pae, ec.ECDSA(digest))  # raises if the signature were wrong


def test_verify_json_reports_files_and_fingerprint(keys, model, gate, capsys):
    priv, pub = keys["p256"]
    assert gate("sign", model, "--key", priv) == 0
    capsys.readouterr()
    assert gate("verify", model, "--key", pub, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verified"] is True
    assert report["files"] == ["config.json", "empty.txt", "sub/tokenizer.txt", "weights.bin"]
    assert report["key_fingerprint"] == fingerprint(load_public_key(pub))


def test_password_protected_key(tmp_path, model, gate, monkeypatch):
    monkeypatch.setenv("MY_PW", "s3cret-pw")
    assert gate("keygen", "--out-dir", tmp_path / "k", "--curve", "p384", "--encrypt", "--password-env", "MY_PW") == 0
    priv, pub = tmp_path / "k" / "model-signing.pem", tmp_path / "k" / "model-signing.pub.pem"
    assert b"ENCRYPTED" in priv.read_bytes()
    assert gate("sign", model, "--key", priv, "--password-env", "MY_PW") == 0
    assert gate("verify", model, "--key", pub) == 0
    monkeypatch.setenv("MY_PW", "wrong")
    assert gate("sign", model, "--key", priv, "--password-env", "MY_PW") == 2
    monkeypatch.delenv("MY_PW")
    assert gate("sign", model, "--key", priv, "--password-env", "MY_PW") == 2


def test_keygen_permissions_and_no_overwrite(tmp_path, gate, capsys):
    assert gate("keygen", "--out-dir", tmp_path, "--name", "team") == 0
    assert stat.S_IMODE((tmp_path / "team.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "team.pub.pem").stat().st_mode) == 0o644
    key = serialization.load_pem_private_key((tmp_path / "team.pem").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    before = (tmp_path / "team.pem").read_bytes()
    assert gate("keygen", "--out-dir", tmp_path, "--name", "team") == 2
    assert "exists" in capsys.readouterr().err
    assert (tmp_path / "team.pem").read_bytes() == before
    assert gate("keygen", "--out-dir", tmp_path / "team.pem") == 2
    assert f"--out-dir {tmp_path / 'team.pem'}: is a file, not a folder" in capsys.readouterr().err
    assert (tmp_path / "team.pem").read_bytes() == before


def test_signature_outside_the_model_and_ignore_paths(tmp_path, keys, model, gate):
    priv, pub = keys["p256"]
    sig = tmp_path / "elsewhere" / "m.sig"
    (model / "notes.md").write_text("not part of the model\n")
    assert gate("sign", model, "--key", priv, "--signature", sig, "--ignore", "notes.md") == 0
    (model / "notes.md").write_text("changed, but ignored\n")
    assert gate("verify", model, "--key", pub, "--signature", sig) == 0
    assert gate("sign", model, "--key", priv, "--ignore", "*.md") == 2  # globs are not OMS ignore paths


def test_shard_serialization_round_trip(keys, model, gate):
    priv, pub = keys["p384"]
    assert gate("sign", model, "--key", priv, "--shard-size", 100_000) == 0
    statement = _payload(model / "model.sig")
    assert statement["predicate"]["serialization"]["shard_size"] == 100_000
    names = [r["name"] for r in statement["predicate"]["resources"]]
    assert "weights.bin:0:100000" in names and "weights.bin:200000:300000" in names
    assert not any(n.startswith("empty.txt") for n in names)  # zero-byte files have no shards
    assert gate("verify", model, "--key", pub) == 0
    data = bytearray((model / "weights.bin").read_bytes())
    data[250_000] ^= 1
    (model / "weights.bin").write_bytes(bytes(data))
    assert gate("verify", model, "--key", pub) == 1


def test_certificate_method_round_trip(ca, ca_factory, model, gate, capsys):
    assert gate("sign", model, "--key", ca["leaf_key"], "--certificate", ca["leaf"],
                "--certificate-chain", ca["intermediate"]) == 0
    bundle = json.loads((model / "model.sig").read_text())
    assert len(bundle["verificationMaterial"]["x509CertificateChain"]["certificates"]) == 2
    assert gate("verify", model, "--certificate-chain", ca["root"]) == 0
    capsys.readouterr()
    # A root the user does not trust: the chain is refused.
    other = ca["root"].parent.parent / "other-ca"
    other.mkdir()
    other_ca = ca_factory(other)
    assert gate("verify", model, "--certificate-chain", other_ca["root"]) == 1
    assert "untrusted certificate chain" in capsys.readouterr().err


def test_certificate_expired_leaf_is_refused(tmp_path, ca_factory, model, gate, capsys):
    expired = ca_factory(tmp_path, leaf_days=2, leaf_start_days_ago=10)
    assert gate("sign", model, "--key", expired["leaf_key"], "--certificate", expired["leaf"],
                "--certificate-chain", expired["intermediate"]) == 0
    assert gate("verify", model, "--certificate-chain", expired["root"]) == 1
    assert "is not valid now" in capsys.readouterr().err


def test_detached_round_trip_and_tamper(keys, model, gate, capsys):
    priv, pub = keys["rsa"]
    assert gate("sign", model, "--key", priv, "--method", "detached") == 0
    assert (model / "weights.bin.sig").is_file() and (model / "sub" / "tokenizer.txt.sig").is_file()
    assert gate("verify", model, "--key", pub, "--method", "detached") == 0
    (model / "config.json").write_text('{"layers": 3}\n')
    (model / "extra.bin").write_bytes(b"x")
    capsys.readouterr()
    assert gate("verify", model, "--key", pub, "--method", "detached") == 1
    err = capsys.readouterr().err
    assert "invalid signature: config.json" in err and "unsigned: extra.bin" in err


def test_detached_signature_from_plain_cryptography(tmp_path, keys, gate):
    """A signature made the way many teams already make them (whole file, PSS max salt) verifies."""
    priv, pub = keys["rsa"]
    private = serialization.load_pem_private_key(priv.read_bytes(), None)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"\x00\x01" * 50_000)
    signature = private.sign(
        weights.read_bytes(),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH),
        hashes.SHA256(),
    )
    (tmp_path / "model.safetensors.sig").write_bytes(signature)
    assert gate("verify", weights, "--key", pub, "--method", "detached") == 0
    weights.write_bytes(b"\x00\x01" * 50_000 + b"\x00")
    assert gate("verify", weights, "--key", pub, "--method", "detached") == 1


def test_our_detached_signature_verifies_with_plain_cryptography(tmp_path, keys, gate):
    priv, pub = keys["rsa"]
    weights = tmp_path / "w.bin"
    weights.write_bytes(bytes(range(256)) * 1000)
    assert gate("sign", weights, "--key", priv, "--method", "detached") == 0
    public = load_public_key(pub)
    public.verify((tmp_path / "w.bin.sig").read_bytes(), weights.read_bytes(),
                  padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH),
                  hashes.SHA256())
