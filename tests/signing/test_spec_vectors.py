"""The OMS v1.0 spec's schemas and test vectors, used as they are."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from gate.signing import oms
from gate.signing.keys import ecdsa_hash, fingerprint, load_public_key, oms_hint
from gate.signing.verifier import Trust, verify_oms


@pytest.fixture(scope="module")
def schemas(reference_dir) -> dict[str, Draft202012Validator]:
    folder = reference_dir / "schemas" / "v1.0"
    docs = {p.stem.split(".")[0]: json.loads(p.read_text()) for p in folder.glob("*.schema.json")}
    registry = Registry().with_resources((d["$id"], Resource.from_contents(d)) for d in docs.values())
    return {name: Draft202012Validator(doc, registry=registry) for name, doc in docs.items()}


@pytest.fixture(scope="module")
def reference_dir(reference) -> Path:
    return reference


def _vector(reference_dir, rel):
    return reference_dir / "test-vectors" / "v1.0" / rel


@pytest.mark.parametrize("curve", ["p256", "p384"])
def test_our_bundles_satisfy_all_four_schemas(curve, keys, model, gate, schemas):
    assert gate("sign", model, "--key", keys[curve][0]) == 0
    bundle = json.loads((model / "model.sig").read_text())
    schemas["bundle"].validate(bundle)
    schemas["envelope"].validate(bundle["dsseEnvelope"])
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    schemas["statement"].validate(statement)
    schemas["predicate"].validate(statement["predicate"])


def test_our_certificate_and_shard_bundles_satisfy_the_schemas(ca, keys, model, gate, schemas, tmp_path):
    assert gate("sign", model, "--key", ca["leaf_key"], "--certificate", ca["leaf"]) == 0
    schemas["bundle"].validate(json.loads((model / "model.sig").read_text()))
    assert gate("sign", model, "--key", keys["p256"][0], "--shard-size", 65536) == 0
    bundle = json.loads((model / "model.sig").read_text())
    schemas["statement"].validate(json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"])))


@pytest.mark.parametrize("name", ["key", "certificate", "sigstore"])
def test_valid_vectors_parse(name, reference_dir):
    bundle = oms.parse_bundle(_vector(reference_dir, f"valid/{name}.bundle.json").read_bytes())
    assert bundle.method == name
    manifest = oms.parse_statement(bundle.payload)
    assert sorted(manifest.resources) == ["signme-1", "signme-2"]
    assert manifest.resources["signme-2"] == "32dcb1f8e1ae52d5963e56a6ba06ab58b424c15ed2a6b70d2feca1d089370028"
    assert "ignore-me" in manifest.serialization.ignore_paths


def test_certificate_vector_signature_is_genuine_but_root_is_not_ours(reference_dir, ca, tmp_path):
    path = _vector(reference_dir, "valid/certificate.bundle.json")
    bundle = oms.parse_bundle(path.read_bytes())
    leaf_key = x509.load_der_x509_certificate(bundle.certificates[0]).public_key()
    # The vector's DSSE signature really verifies with its leaf certificate's key ...
    leaf_key.verify(bundle.signature, oms.pae(bundle.payload), ec.ECDSA(ecdsa_hash(leaf_key)))
    # ... but its root ("root-ca") is not one we trust, so verification refuses it.
    model = tmp_path / "m"
    model.mkdir()
    (model / "signme-1").write_text("x")
    trust = Trust(roots=x509.load_pem_x509_certificates(ca["root"].read_bytes()))
    result = verify_oms(model, path, trust, method="certificate")
    assert len(result.problems) == 1 and "untrusted certificate chain" in result.problems[0]


def test_key_vector_is_refused_for_a_key_that_did_not_sign_it(reference_dir, keys, tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    (model / "signme-1").write_text("x")
    trusted = load_public_key(keys["p384"][1])
    result = verify_oms(model, _vector(reference_dir, "valid/key.bundle.json"), Trust(public_keys=[trusted]))
    assert result.problems and result.problems[0].startswith(
        "wrong key: the signature names key hint e8450dec4eb99dae995da9af1bc2cc9f76ed669ee2e744f57abba763df3e3f8e"
    )
    # The trusted key is shown in the same form as the hint, so the two can be compared by eye.
    assert f"(trusted keys' hints: {oms_hint(trusted)} ({fingerprint(trusted)}))" in result.problems[0]


def test_sigstore_vector_is_reported_as_unsupported_offline(reference_dir, keys, tmp_path):
    trust = Trust(public_keys=[load_public_key(keys["p256"][1])])
    result = verify_oms(tmp_path, _vector(reference_dir, "valid/sigstore.bundle.json"), trust)
    assert "Sigstore keyless" in result.problems[0]


@pytest.mark.parametrize(
    ("rel", "message"),
    [
        ("invalid/empty.bundle.json", "malformed bundle: the signature file is empty"),
        ("invalid/missing-envelope.bundle.json", "malformed bundle: dsseEnvelope: field required"),
        ("invalid/missing-verification-material.bundle.json",
         "malformed bundle: verificationMaterial: field required"),
        ("invalid/missing-tlog-entries.bundle.json", "malformed bundle: a sigstore bundle needs"),
    ],
)
def test_invalid_vectors_are_rejected_with_a_named_reason(rel, message, reference_dir):
    with pytest.raises(oms.BundleError) as info:
        oms.parse_bundle(_vector(reference_dir, rel).read_bytes())
    assert str(info.value).startswith(message)


def test_wrong_predicate_vector(reference_dir, schemas):
    bundle = oms.parse_bundle(_vector(reference_dir, "invalid-payload/wrong-predicate.bundle.json").read_bytes())
    with pytest.raises(oms.BundleError, match="wrong predicate type: 'https://example.com/wrong-predicate/v1.0'"):
        oms.parse_statement(bundle.payload)
    assert not schemas["statement"].is_valid(json.loads(bundle.payload))
