"""Promotion and audit tags: the only registry writes the gate makes.

Promotion runs under a registry lock (see Registry.acquire_lock) and checks
that the champion is still the one the candidate was compared with; if
another run moved it meanwhile, nothing is written and the gate fails loudly.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from gate.policy import LoadedPolicy, PromotionPolicy
from gate.registry import ModelVersionInfo, Registry
from gate.results import CheckResult, Status

TAG_PREFIX = "model_gate."
LOCK_TIMEOUT_S = 120.0
LOCK_STALE_AFTER_S = 600.0


@dataclass(frozen=True)
class Target:
    """Where a promotion lands and who holds that place now."""

    mode: str  # alias | stage | copy_to
    model_name: str  # registered model that holds the alias or stage
    alias: str | None
    stage: str | None
    holder: str | None  # version currently holding it (the previous champion)


@dataclass
class PromotionResult:
    check: CheckResult
    promoted_name: str | None = None
    promoted_version: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def current_target(registry: Registry, policy: PromotionPolicy, candidate_name: str) -> Target:
    if policy.mode == "stage":
        holders = registry.versions_in_stage(candidate_name, policy.stage) if _model_exists(registry, candidate_name) else []
        return Target("stage", candidate_name, None, policy.stage, holders[-1] if holders else None)
    name = policy.copy_to.name if policy.copy_to is not None else candidate_name
    alias = policy.effective_alias
    holder = registry.alias_holder(name, alias) if _model_exists(registry, name) else None
    return Target(policy.mode, name, alias, None, holder)


def _model_exists(registry: Registry, name: str) -> bool:
    from gate.errors import UsageError

    try:
        registry.require_model(name)
        return True
    except UsageError:
        return False


def github_context(env: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if env is None else env)
    context = {}
    if env.get("GITHUB_SHA"):
        context["commit"] = env["GITHUB_SHA"]
    if env.get("GITHUB_REPOSITORY") and env.get("GITHUB_RUN_ID"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        context["run_url"] = f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    if env.get("GITHUB_ACTOR"):
        context["actor"] = env["GITHUB_ACTOR"]
    return context


def audit_tags(status: str, loaded: LoadedPolicy, previous: str | None, target: Target | None,
               decided_at: datetime | None = None) -> dict[str, str]:
    decided_at = decided_at or datetime.now(timezone.utc)
    tags = {
        f"{TAG_PREFIX}status": status,
        f"{TAG_PREFIX}policy_sha256": loaded.sha256,
        f"{TAG_PREFIX}previous_champion": previous or "none",
        f"{TAG_PREFIX}decided_at": decided_at.isoformat(timespec="seconds"),
    }
    if target is not None:
        tags[f"{TAG_PREFIX}target"] = (f"{target.model_name}@{target.alias}" if target.alias
                                       else f"{target.model_name}/{target.stage}")
    for key, value in github_context().items():
        tags[f"{TAG_PREFIX}{key}"] = value
    return tags


def recheck_tags(status: str, loaded: LoadedPolicy, failed_checks: str | None = None) -> dict[str, str]:
    """Tags for re-gating a version that already holds its place: the promotion record stays as it is."""
    tags = {f"{TAG_PREFIX}recheck_status": status, f"{TAG_PREFIX}recheck_policy_sha256": loaded.sha256,
            f"{TAG_PREFIX}rechecked_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if failed_checks is not None:
        tags[f"{TAG_PREFIX}recheck_failed_checks"] = failed_checks
    return tags


def promote(registry: Registry, loaded: LoadedPolicy, candidate: ModelVersionInfo, expected: Target,
            content_sha256: str | None = None) -> PromotionResult:
    """Move the alias/stage to the candidate if the target still holds what we compared against.

    content_sha256: the digest of the files that were gated (gate.content), recorded with the decision.
    """
    policy = loaded.policy.promotion
    content = {f"{TAG_PREFIX}content_sha256": content_sha256} if content_sha256 else {}
    started = time.perf_counter()
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    lock = registry.acquire_lock(expected.model_name, owner, LOCK_TIMEOUT_S, LOCK_STALE_AFTER_S)
    try:
        now = current_target(registry, policy, candidate.name)
        if now.holder != expected.holder:
            return PromotionResult(CheckResult(
                "promotion", "promotion", Status.FAILED,
                f"{_place(expected)} moved from version {expected.holder or 'none'} to {now.holder or 'none'} "
                "while this gate ran (another promotion?); nothing was promoted. Re-run the gate to compare "
                "against the new champion.", duration_s=time.perf_counter() - started))
        if expected.mode != "copy_to" and now.holder == candidate.version:
            # Re-gating the champion: nothing moves, and its promotion record (previous champion,
            # the rollback target) must survive; only the re-check is recorded.
            registry.set_version_tags(candidate.name, candidate.version,
                                      {**recheck_tags("passed", loaded), **_prefixed_keys(content, "recheck_")})
            return PromotionResult(CheckResult(
                "promotion", "promotion", Status.PASSED,
                f"{candidate.uri} already holds {_place(expected)}; nothing moved, its promotion record is kept",
                value=candidate.version, baseline=expected.holder, duration_s=time.perf_counter() - started),
                promoted_name=candidate.name, promoted_version=candidate.version,
                details={"mode": expected.mode, "alias": expected.alias, "stage": expected.stage,
                         "model": candidate.name, "version": candidate.version, "previous_version": expected.holder,
                         "unchanged": True})
        promoted = candidate
        if expected.mode == "copy_to":
            promoted = registry.copy_version(candidate, expected.model_name)
            registry.wait_ready(promoted, loaded.policy.registry.ready_timeout_s, loaded.policy.registry.poll_interval_s)
        if expected.mode == "stage":
            registry.transition_stage(candidate.name, candidate.version, expected.stage, policy.archive_existing)
            holders = registry.versions_in_stage(candidate.name, expected.stage)
            if holders != [candidate.version]:
                return PromotionResult(CheckResult(
                    "promotion", "promotion", Status.FAILED,
                    f"after the transition, stage {expected.stage} of {candidate.name} is held by versions "
                    f"{holders} instead of only {candidate.version}", duration_s=time.perf_counter() - started))
        else:
            registry.set_alias(expected.model_name, expected.alias, promoted.version)
            holder = registry.alias_holder(expected.model_name, expected.alias)
            if holder != promoted.version:
                return PromotionResult(CheckResult(
                    "promotion", "promotion", Status.FAILED,
                    f"alias {expected.alias} of {expected.model_name} points to version {holder} right after "
                    f"it was set to {promoted.version}: another writer is moving it", duration_s=time.perf_counter() - started))
        tags = {**policy.tags, **audit_tags("promoted", loaded, expected.holder, expected), **content}
        registry.set_version_tags(promoted.name, promoted.version, tags)
        if promoted is not candidate:
            registry.set_version_tags(candidate.name, candidate.version,
                                      {**tags, f"{TAG_PREFIX}copied_to": promoted.uri})
    finally:
        registry.release_lock(lock)
    return PromotionResult(
        CheckResult("promotion", "promotion", Status.PASSED,
                    f"{_place(expected)} now points to {promoted.uri} (was version {expected.holder or 'none'})",
                    value=promoted.version, baseline=expected.holder, duration_s=time.perf_counter() - started),
        promoted_name=promoted.name, promoted_version=promoted.version,
        details={"mode": expected.mode, "alias": expected.alias, "stage": expected.stage,
                 "model": promoted.name, "version": promoted.version, "previous_version": expected.holder},
    )


def _prefixed_keys(tags: dict[str, str], prefix: str) -> dict[str, str]:
    """model_gate.x -> model_gate.<prefix>x: a re-check's record beside the promotion's."""
    return {f"{TAG_PREFIX}{prefix}{key.removeprefix(TAG_PREFIX)}": value for key, value in tags.items()}


def _place(target: Target) -> str:
    if target.alias:
        return f"alias {target.alias!r} of {target.model_name}"
    return f"stage {target.stage} of {target.model_name}"


def rollback(registry: Registry, name: str, alias: str) -> dict[str, Any]:
    """Point the alias back to the previous champion recorded by the last promotion."""
    from gate.errors import UsageError
    from gate.uris import alias_problem, require_model_name

    require_model_name(name, "--model")
    if problem := alias_problem(alias):  # before any registry call: MLflow answers "latest" itself
        raise UsageError(f"--alias: {problem}")
    current = registry.alias_holder(name, alias)
    if current is None:
        raise UsageError(f"model {name!r} has no alias {alias!r} to roll back (tracking URI {registry.display_uri})")
    info = registry.get_version(name, current)
    previous = info.tags.get(f"{TAG_PREFIX}previous_champion")
    if not previous or previous == "none":
        raise UsageError(f"{info.uri} (alias {alias}) has no recorded previous champion "
                         f"({TAG_PREFIX}previous_champion tag); nothing to roll back to")
    target_info = registry.get_version(name, previous)
    if target_info.version == current:
        raise UsageError(f"{info.uri} (alias {alias}) records itself as the previous champion; nothing to roll back to")
    lock = registry.acquire_lock(name, f"rollback:{os.getpid()}", LOCK_TIMEOUT_S, LOCK_STALE_AFTER_S)
    try:
        if registry.alias_holder(name, alias) != current:
            raise UsageError(f"alias {alias} of {name} moved during the rollback; nothing changed")
        registry.set_alias(name, alias, target_info.version)
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        context = {f"{TAG_PREFIX}{k}": v for k, v in github_context().items()}
        registry.set_version_tags(name, current, {f"{TAG_PREFIX}status": "rolled-back",
                                                  f"{TAG_PREFIX}rolled_back_at": now, **context})
        registry.set_version_tags(name, target_info.version, {f"{TAG_PREFIX}rollback_from": current,
                                                              f"{TAG_PREFIX}rolled_back_at": now, **context})
    finally:
        registry.release_lock(lock)
    return {"model": name, "alias": alias, "from_version": current, "to_version": target_info.version}
