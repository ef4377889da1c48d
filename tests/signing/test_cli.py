"""CLI contract: exit codes, one-line errors, no secrets, lazy imports."""

from __future__ import annotations

import subprocess
import sys


def test_exit_codes(keys, model, gate, capsys, tmp_path):
    priv, pub = keys["p256"]
    assert gate("verify", model, "--key", pub) == 1  # unsigned model: rejected
    assert "cannot read the signature" in capsys.readouterr().err
    assert gate("sign", model, "--key", tmp_path / "nope.pem") == 2
    assert capsys.readouterr().err.startswith("model-gate: error: cannot read private key")
    assert gate("verify", model) == 2  # no trusted key given
    assert gate("verify", tmp_path / "missing", "--key", pub) == 2
    assert gate("verify", model, "--key", priv) == 2  # a private key is not a public key
    assert gate("sign", model, "--key", keys["rsa"][0]) == 2  # OMS needs an EC key
    capsys.readouterr()
    assert gate("sign", model, "--key", priv) == 0
    assert gate("verify", model, "--key", pub) == 0


def test_password_never_printed(tmp_path, model, gate, capsys, monkeypatch):
    monkeypatch.setenv("MODEL_GATE_KEY_PASSWORD", "hunter2-very-secret")
    assert gate("keygen", "--out-dir", tmp_path, "--encrypt") == 0
    assert gate("sign", model, "--key", tmp_path / "model-signing.pem") == 0
    monkeypatch.setenv("MODEL_GATE_KEY_PASSWORD", "wrong-secret")
    assert gate("sign", model, "--key", tmp_path / "model-signing.pem") == 2
    out = capsys.readouterr()
    assert "secret" not in out.out + out.err and "hunter2" not in out.out + out.err


def test_signing_commands_do_not_import_heavy_libraries():
    code = ("import sys; from gate.cli import main; main(['verify', '--help']); "
            "heavy = [m for m in ('mlflow', 'torch', 'transformers', 'model_signing') if m in sys.modules]; "
            "print('HEAVY', heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in done.stdout, done.stdout + done.stderr
