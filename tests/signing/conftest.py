"""Fixtures for signing tests: real keys, a small model folder, a throwaway CA, CLI runners."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gate.cli import main

# The spec's schemas and test vectors, kept with the tests so any checkout can run them.
REFERENCE = Path(__file__).resolve().parent / "oms-v1.0"


def write_key_pair(folder: Path, name: str, private, password: bytes | None = None) -> tuple[Path, Path]:
    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    priv = folder / f"{name}.pem"
    pub = folder / f"{name}.pub.pem"
    priv.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc))
    pub.write_bytes(
        private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return priv, pub


@pytest.fixture(scope="session")
def keys(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """name -> (private PEM, public PEM) for each OMS curve, a second P-256 key and an RSA key."""
    folder = tmp_path_factory.mktemp("keys")
    out = {}
    for name, curve in (("p256", ec.SECP256R1()), ("p384", ec.SECP384R1()), ("p521", ec.SECP521R1()),
                        ("other", ec.SECP256R1())):
        out[name] = write_key_pair(folder, name, ec.generate_private_key(curve))
    out["rsa"] = write_key_pair(folder, "rsa", rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return out


@pytest.fixture
def model(tmp_path) -> Path:
    """A small model folder: nested files, a zero-byte file, git metadata that must be ignored."""
    root = tmp_path / "my-model"
    (root / "sub").mkdir(parents=True)
    (root / "weights.bin").write_bytes(os.urandom(300_000))
    (root / "config.json").write_text('{"layers": 2}\n')
    (root / "sub" / "tokenizer.txt").write_text("a b c\n")
    (root / "empty.txt").write_bytes(b"")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return root


def run_gate(*args: object) -> int:
    return main([str(a) for a in args])


def model_signing_cli(*args: object) -> subprocess.CompletedProcess:
    """The reference implementation's own CLI, in a separate process."""
    return subprocess.run([sys.executable, "-m", "model_signing", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(folder: Path, *, leaf_days: int = 30, leaf_start_days_ago: int = 1) -> dict[str, Path]:
    """Root -> intermediate -> code-signing leaf (EC P-256), written as PEM files."""
    now = dt.datetime.now(dt.timezone.utc)

    def cert(subject, issuer, pub, signer, *, ca: bool, start, end, leaf_ext=False):
        b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
             .public_key(pub).serial_number(x509.random_serial_number())
             .not_valid_before(start).not_valid_after(end)
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False))
        if ca:
            b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        else:
            b = b.add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        if subject != issuer:
            b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
        return b.sign(signer, hashes.SHA256())

    root_key, inter_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    year = dt.timedelta(days=365)
    root = cert("test-root", "test-root", root_key.public_key(), root_key, ca=True, start=now - year, end=now + year)
    inter = cert("test-intermediate", "test-root", inter_key.public_key(), root_key, ca=True,
                 start=now - year, end=now + year)
    leaf = cert("model-signer", "test-intermediate", leaf_key.public_key(), inter_key, ca=False,
                start=now - dt.timedelta(days=leaf_start_days_ago),
                end=now - dt.timedelta(days=leaf_start_days_ago) + dt.timedelta(days=leaf_days))
    pem = serialization.Encoding.PEM
    paths = {"root": folder / "root.pem", "intermediate": folder / "intermediate.pem", "leaf": folder / "leaf.pem",
             "leaf_key": folder / "leaf.key.pem"}
    paths["root"].write_bytes(root.public_bytes(pem))
    paths["intermediate"].write_bytes(inter.public_bytes(pem))
    paths["leaf"].write_bytes(leaf.public_bytes(pem))
    write_key_pair(folder, "leaf.key", leaf_key)
    paths["leaf_key"] = folder / "leaf.key.pem"
    return paths


@pytest.fixture
def ca(tmp_path) -> dict[str, Path]:
    folder = tmp_path / "ca"
    folder.mkdir()
    return make_ca(folder)


@pytest.fixture
def gate():
    """Run `model-gate ARGS...` in-process and return its exit code."""
    return run_gate


@pytest.fixture
def ms_cli():
    """Run the reference `model_signing` CLI in a subprocess."""
    return model_signing_cli


@pytest.fixture(scope="session")
def reference() -> Path:
    return REFERENCE


@pytest.fixture
def ca_factory():
    """make_ca(folder, leaf_days=..., leaf_start_days_ago=...) for extra or expired CAs."""
    return make_ca
