"""Interoperability with the reference implementation (`model_signing`), both ways.

The tamper cases must fail in both tools: model-gate names the difference,
model_signing exits non-zero.
"""

from __future__ import annotations

import os

import pytest


@pytest.mark.parametrize("curve", ["p256", "p384", "p521"])
def test_model_signing_signature_verifies_with_gate(curve, keys, model, gate, ms_cli):
    priv, pub = keys[curve]
    done = ms_cli("sign", "key", model, "--signature", model / "model.sig", "--private_key", priv)
    assert done.returncode == 0, done.stderr
    assert gate("verify", model, "--key", pub) == 0


@pytest.mark.parametrize("curve", ["p256", "p521"])
def test_gate_signature_verifies_with_model_signing(curve, keys, model, gate, ms_cli):
    priv, pub = keys[curve]
    assert gate("sign", model, "--key", priv) == 0
    done = ms_cli("verify", "key", model, "--signature", model / "model.sig", "--public_key", pub)
    assert done.returncode == 0, done.stderr
    assert "Verification succeeded" in done.stdout


def test_gate_certificate_signature_verifies_with_model_signing(ca, model, gate, ms_cli):
    assert gate("sign", model, "--key", ca["leaf_key"], "--certificate", ca["leaf"],
                "--certificate-chain", ca["intermediate"]) == 0
    done = ms_cli("verify", "certificate", model, "--signature", model / "model.sig",
                  "--certificate_chain", ca["root"])
    assert done.returncode == 0, done.stderr


def test_model_signing_certificate_signature_verifies_with_gate(ca, model, gate, ms_cli):
    done = ms_cli("sign", "certificate", model, "--signature", model / "model.sig",
                  "--private_key", ca["leaf_key"], "--signing_certificate", ca["leaf"],
                  "--certificate_chain", ca["intermediate"])
    assert done.returncode == 0, done.stderr
    assert gate("verify", model, "--certificate-chain", ca["root"]) == 0


def _flip_byte(model):
    data = bytearray((model / "weights.bin").read_bytes())
    data[1234] ^= 0x01
    (model / "weights.bin").write_bytes(bytes(data))
    return "modified: weights.bin"


def _add_file(model):
    (model / "sub" / "payload.pkl").write_bytes(b"cos\nsystem\n")
    return "added: sub/payload.pkl"


def _remove_file(model):
    (model / "config.json").unlink()
    return "missing: config.json"


def _rename_file(model):
    (model / "sub" / "tokenizer.txt").rename(model / "sub" / "vocab.txt")
    return "renamed: sub/tokenizer.txt -> sub/vocab.txt"


def _symlink_swap(model):
    target = model.parent / "evil.bin"
    target.write_bytes((model / "weights.bin").read_bytes())
    (model / "weights.bin").unlink()
    os.symlink(target, model / "weights.bin")
    return "symlink: weights.bin"


TAMPERS = {"flipped byte": _flip_byte, "added file": _add_file, "removed file": _remove_file,
           "renamed file": _rename_file, "symlink swap": _symlink_swap}


@pytest.mark.parametrize("case", list(TAMPERS))
def test_tamper_fails_in_both_tools(case, keys, model, gate, ms_cli, capsys):
    priv, pub = keys["p256"]
    assert gate("sign", model, "--key", priv) == 0
    expected = TAMPERS[case](model)
    capsys.readouterr()
    assert gate("verify", model, "--key", pub) == 1
    assert expected in capsys.readouterr().err
    done = ms_cli("verify", "key", model, "--signature", model / "model.sig", "--public_key", pub)
    assert done.returncode != 0
    assert "Verification failed" in done.stderr
