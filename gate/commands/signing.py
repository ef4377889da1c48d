"""`model-gate sign`, `verify` and `keygen`.

Exit codes: 0 signed/valid, 1 the signature does not match (named differences), 2 usage error.
Passwords come from an environment variable (or a prompt), never from the command line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from gate.errors import RejectedError, UsageError

_PASSWORD_ENV = "MODEL_GATE_KEY_PASSWORD"


def _password(env_name: str, *, prompt_if_tty: bool = False, confirm: bool = False) -> bytes | None:
    value = os.environ.get(env_name)
    if value:
        return value.encode()
    if prompt_if_tty and os.isatty(0):
        return click.prompt("Key password", hide_input=True, confirmation_prompt=confirm).encode() or None
    return None


def _ignore_entries(values: tuple[str, ...]) -> list[str]:
    from gate.signing.paths import check_ignore_entry

    try:
        return [check_ignore_entry(v) for v in values]
    except ValueError as error:
        raise UsageError(f"--ignore: {error}") from None


def _default_signature(model: Path) -> Path:
    return model / "model.sig" if model.is_dir() else model.with_name(model.name + ".oms.sig")


password_env_option = click.option(
    "--password-env",
    default=_PASSWORD_ENV,
    show_default=True,
    metavar="NAME",
    help="Environment variable holding the private key's password (prompted for on a terminal otherwise).",
)


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--key", "key_path", required=True, type=click.Path(path_type=Path), help="PEM private key.")
@click.option(
    "--method",
    type=click.Choice(["key", "certificate", "detached"]),
    default=None,
    help="key: OMS bundle (EC key); certificate: OMS bundle with --certificate; "
    "detached: RSA-PSS <file>.sig per file. Default: certificate if --certificate is given, else key.",
)
@click.option("--signature", type=click.Path(path_type=Path), help="Bundle to write [default: PATH/model.sig].")
@click.option("--ignore", multiple=True, metavar="PATH", help="Path relative to the model to leave out (repeatable).")
@click.option("--certificate", type=click.Path(path_type=Path), help="Signing certificate (PEM) for the certificate method.")
@click.option(
    "--certificate-chain", multiple=True, type=click.Path(path_type=Path), help="Intermediate certificates to include."
)
@click.option("--shard-size", type=click.IntRange(min=1), help="Hash in shards of this many bytes (OMS 'shards').")
@password_env_option
def sign(
    path: Path,
    key_path: Path,
    method: str | None,
    signature: Path | None,
    ignore: tuple[str, ...],
    certificate: Path | None,
    certificate_chain: tuple[Path, ...],
    shard_size: int | None,
    password_env: str,
) -> int:
    """Sign the model at PATH (a folder, or one file)."""
    from gate.signing.certs import load_trusted_certificates
    from gate.signing.keys import load_private_key
    from gate.signing.signer import sign_detached, sign_oms

    method = method or ("certificate" if certificate else "key")
    if not path.exists():
        raise UsageError(f"model path {path} does not exist")
    key = load_private_key(key_path, _password(password_env, prompt_if_tty=_is_encrypted(key_path)))
    ignores = _ignore_entries(ignore)
    if method == "detached":
        if signature or certificate or shard_size:
            raise UsageError("--signature, --certificate and --shard-size do not apply to --method detached")
        signed = sign_detached(path, key, ignore=ignores)
    else:
        cert = None
        chain = []
        if method == "certificate":
            if certificate is None:
                raise UsageError("--method certificate needs --certificate")
            cert = load_trusted_certificates([certificate])[0]
            chain = load_trusted_certificates(list(certificate_chain)) if certificate_chain else []
        signed = sign_oms(
            path, key, signature or _default_signature(path), ignore=ignores,
            certificate=cert, chain=chain, shard_size=shard_size,
        )
    where = signed.signatures[0] if len(signed.signatures) == 1 else f"{len(signed.signatures)} .sig files"
    click.echo(f"signed {len(signed.files)} files with {signed.key_fingerprint} -> {where}")
    return 0


def _is_encrypted(path: Path) -> bool:
    try:
        return b"ENCRYPTED" in path.read_bytes()[:200]
    except OSError:
        return False


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--key", "keys", multiple=True, type=click.Path(path_type=Path), help="Trusted PEM public key (repeatable).")
@click.option("--key-fingerprint", "fingerprints", multiple=True, metavar="sha256:HEX", help="Trusted key fingerprint.")
@click.option(
    "--certificate-chain", multiple=True, type=click.Path(path_type=Path), help="Trusted root (and intermediate) PEM."
)
@click.option("--method", type=click.Choice(["key", "certificate", "detached"]), default=None,
              help="Default: certificate if --certificate-chain is given, else key.")
@click.option("--signature", type=click.Path(path_type=Path), help="Bundle to check [default: PATH/model.sig].")
@click.option("--ignore", multiple=True, metavar="PATH", help="Extra path relative to the model to leave out.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify(
    path: Path,
    keys: tuple[Path, ...],
    fingerprints: tuple[str, ...],
    certificate_chain: tuple[Path, ...],
    method: str | None,
    signature: Path | None,
    ignore: tuple[str, ...],
    as_json: bool,
) -> int:
    """Verify the model at PATH against its signature. Exit 1 names every difference."""
    from gate.signing.certs import load_trusted_certificates
    from gate.signing.keys import load_public_key
    from gate.signing.policy import FINGERPRINT
    from gate.signing.verifier import Trust, verify_detached, verify_oms

    method = method or ("certificate" if certificate_chain else "key")
    if not path.exists():
        raise UsageError(f"model path {path} does not exist")
    bad = [f for f in fingerprints if not FINGERPRINT.match(f.lower())]
    if bad:
        raise UsageError(f"--key-fingerprint {bad[0]!r} is not of the form sha256:<64 hex digits>")
    trust = Trust(
        public_keys=[load_public_key(k) for k in keys],
        fingerprints={f.lower() for f in fingerprints},
        roots=load_trusted_certificates(list(certificate_chain)) if method == "certificate" else [],
    )
    if method in ("key", "detached") and not (trust.public_keys or trust.fingerprints):
        raise UsageError(f"--method {method} needs --key (a trusted public key)")
    ignores = _ignore_entries(ignore)
    if method == "detached":
        result = verify_detached(path, trust, ignore=ignores)
    else:
        result = verify_oms(path, signature or _default_signature(path), trust, method=method, ignore=ignores)
    if as_json:
        click.echo(json.dumps({
            "verified": result.ok, "method": result.method, "key_fingerprint": result.key_fingerprint,
            "files": result.files, "problems": result.problems, "seconds": round(result.seconds, 3),
        }, indent=2))
    if not result.ok:
        raise RejectedError(f"signature verification failed for {path}: " + "; ".join(result.problems))
    if not as_json:
        click.echo(f"verified {len(result.files)} files, signed by {result.key_fingerprint}")
    return 0


@click.command()
@click.option("--out-dir", type=click.Path(path_type=Path), default=Path("."), show_default=True)
@click.option("--name", default="model-signing", show_default=True, help="Writes NAME.pem and NAME.pub.pem.")
@click.option("--curve", type=click.Choice(["p256", "p384", "p521"]), default="p256", show_default=True)
@click.option("--encrypt", is_flag=True, help="Encrypt the private key with the password from --password-env.")
@password_env_option
@click.option("--force", is_flag=True, help="Overwrite existing key files.")
def keygen(out_dir: Path, name: str, curve: str, encrypt: bool, password_env: str, force: bool) -> int:
    """Write a new EC key pair (private key readable only by you)."""
    from gate.signing.keys import fingerprint, generate_key_pair, load_public_key

    password = None
    if encrypt:
        password = _password(password_env, prompt_if_tty=True, confirm=True)
        if not password:
            raise UsageError(f"--encrypt needs a password in ${password_env}")
    private, public = generate_key_pair(out_dir, name, curve, password, force=force)
    click.echo(f"wrote {private} (private, mode 600) and {public}; fingerprint {fingerprint(load_public_key(public))}")
    return 0
