"""The integrity stage of the gate: verify the model's signature right after download.

Runs before anything in the model is loaded; it only hashes files.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from gate.results import CheckResult, Status
from gate.signing.policy import IntegrityPolicy, SignaturePolicy

NAME = "integrity.signature"
STAGE = "integrity"


def _resolve(base_dir: Path, raw: str) -> Path:
    path = Path(raw).expanduser()
    return path if path.is_absolute() else base_dir / path


def _find_signature(policy: SignaturePolicy, model_dir: Path, base_dir: Path) -> Path | None:
    inside = model_dir / policy.signature
    if not Path(policy.signature).is_absolute() and inside.is_file():
        return inside
    outside = _resolve(base_dir, policy.signature)
    return outside if outside.is_file() else None


def _trust(policy: SignaturePolicy, base_dir: Path):
    # UsageError propagates: an unreadable trusted key is a policy problem, not a bad model.
    from gate.signing.certs import load_trusted_certificates
    from gate.signing.keys import load_public_key
    from gate.signing.verifier import Trust

    return Trust(
        public_keys=[load_public_key(_resolve(base_dir, k)) for k in policy.public_keys],
        fingerprints=set(policy.key_fingerprints),
        roots=(
            load_trusted_certificates([_resolve(base_dir, c) for c in policy.certificate_chain])
            if policy.method == "certificate"
            else []
        ),
    )


def check_integrity(
    policy: IntegrityPolicy,
    model_dir: Path,
    *,
    base_dir: Path,
    precomputed_digests: Mapping[str, str] | None = None,
) -> list[CheckResult]:
    """One "integrity.signature" result (or none when the policy has no signature section)."""
    sig_policy = policy.signature
    if sig_policy is None:
        return []
    from gate.signing.verifier import verify_detached, verify_oms

    started = time.perf_counter()
    trust = _trust(sig_policy, base_dir)
    if sig_policy.method == "detached":
        from gate.signing.walk import list_model_files

        # Our own walk (not rglob): it never follows symlinks, so a link cycle cannot hang it.
        has_signature = any(f.name.endswith(".sig") for f in list_model_files(model_dir, [".git"]).files)
        where = f"*.sig files in {model_dir}"
    else:
        signature = _find_signature(sig_policy, model_dir, base_dir)
        has_signature = signature is not None
        where = f"{sig_policy.signature} (in the model or next to the policy)"
    if not has_signature:
        status = Status.FAILED if sig_policy.required else Status.SKIPPED
        why = "required but" if sig_policy.required else "not required and"
        return [CheckResult(NAME, STAGE, status, f"signature {why} not found: {where}",
                            duration_s=time.perf_counter() - started, details={"verified": False,
                                                                            "method": sig_policy.method})]
    if sig_policy.method == "detached":
        result = verify_detached(model_dir, trust, ignore=sig_policy.ignore, precomputed=precomputed_digests)
    else:
        assert signature is not None
        result = verify_oms(model_dir, signature, trust, method=sig_policy.method, ignore=sig_policy.ignore,
                            precomputed=precomputed_digests)
    details = {
        "verified": result.ok,
        "method": result.method,
        "key_fingerprint": result.key_fingerprint,
        "files": result.files if result.ok else [],
    }
    if result.ok:
        message = f"signature verified: {len(result.files)} files signed by {result.key_fingerprint}"
        status = Status.PASSED
    else:
        details["problems"] = result.problems
        message = "signature verification failed: " + "; ".join(result.problems)
        status = Status.FAILED
    return [CheckResult(NAME, STAGE, status, message, value=len(result.files),
                        duration_s=time.perf_counter() - started, details=details)]
