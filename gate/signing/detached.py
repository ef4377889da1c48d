"""Detached signatures: RSA-PSS (MGF1-SHA256, maximum salt, SHA-256) over one file's bytes.

The file is streamed through SHA-256 and the digest is signed as Prehashed,
which gives the same signature bytes as signing the whole file at once.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

SUFFIX = ".sig"


def _pss() -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)


def sign_digest(key: rsa.RSAPrivateKey, sha256_digest: bytes) -> bytes:
    return key.sign(sha256_digest, _pss(), utils.Prehashed(hashes.SHA256()))


def verify_digest(key: rsa.RSAPublicKey, signature: bytes, sha256_digest: bytes) -> bool:
    try:
        key.verify(signature, sha256_digest, _pss(), utils.Prehashed(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True
