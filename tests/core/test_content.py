"""The content digest of what was gated: reproducible with coreutils, recorded on the version."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from gate.content import content_digest


def _tree(root):
    (root / "sub dir").mkdir(parents=True)
    (root / "MLmodel").write_text("flavors: {}\n")
    (root / "sub dir" / "weights.bin").write_bytes(bytes(range(256)) * 1000)
    (root / "Zeta.txt").write_text("capital letters sort before lower case in C order\n")
    (root / "empty").write_bytes(b"")
    return root


def test_digest_is_what_the_documented_shell_recipe_prints(tmp_path):
    root = _tree(tmp_path / "model")
    recipe = ("find . -type f | sed 's|^\\./||' | LC_ALL=C sort | xargs -d '\\n' sha256sum | sha256sum")
    shell = subprocess.run(["bash", "-c", recipe], cwd=root, capture_output=True, text=True, check=True).stdout
    result = content_digest(root)
    assert result.digest == "sha256:" + shell.split()[0] and result.files == 4


def test_precomputed_digests_are_used_and_any_change_shows(tmp_path):
    root = _tree(tmp_path / "model")
    original = content_digest(root).digest
    assert content_digest(root, {"empty": "00" * 32}).digest != original  # the given digest was used
    (root / "sub dir" / "weights.bin").write_bytes(b"tampered")
    assert content_digest(root).digest != original
    (root / "link").symlink_to(root / "MLmodel")
    assert content_digest(root).digest is None and "symlink" in content_digest(root).problem


def test_promotion_records_the_digest_of_the_files_it_gated(gate, policy, register, client, tmp_path):
    import mlflow.artifacts

    name, version = register("good")
    result = gate("check", "--policy", str(policy()), "--model-uri", f"models:/{name}/{version}",
                  "--report-dir", str(tmp_path / "reports"))
    assert result.code == 0, result.out + result.err
    info = client.get_model_version(name, version)
    local = mlflow.artifacts.download_artifacts(artifact_uri=client.get_model_version_download_uri(name, version),
                                                dst_path=str(tmp_path / "again"))
    expected = content_digest(Path(local))
    assert info.tags["model_gate.content_sha256"] == expected.digest
    report = json.loads((tmp_path / "reports" / "report.json").read_text())
    assert report["model"]["content_sha256"] == expected.digest and report["model"]["files"] == expected.files
    # A rejected version records what it was rejected for, too.
    strict = policy(thresholds={"accuracy": {"direction": "higher", "min": 0.999}})
    _, second = register("bad", name)
    assert gate("check", "--policy", str(strict), "--model-uri", f"models:/{name}/{second}").code == 1
    assert client.get_model_version(name, second).tags["model_gate.content_sha256"].startswith("sha256:")


def test_digest_command_tells_a_deployment_whether_it_ships_the_promoted_files(gate, policy, register, tmp_path):
    import mlflow.artifacts

    name, version = register("good")
    assert gate("check", "--policy", str(policy()), "--model-uri", f"models:/{name}/{version}").code == 0
    # The usual deployment download: models:/ adds MLflow's registered_model_meta beside the artifacts.
    shipped = Path(mlflow.artifacts.download_artifacts(f"models:/{name}@champion", dst_path=str(tmp_path / "ship")))
    assert (shipped / "registered_model_meta").is_file()
    ok = gate("digest", str(shipped), "--expect", f"models:/{name}@champion", "--json")
    assert ok.code == 0, ok.out + ok.err
    answer = json.loads(ok.out)
    assert answer["verified"] and answer["expected"] == f"models:/{name}/{version}"
    assert answer["recorded_sha256"] == content_digest(shipped, exclude=("registered_model_meta",)).digest
    plain = gate("digest", str(shipped))
    assert plain.code == 0 and plain.out.split()[0] == content_digest(shipped).digest

    (shipped / "MLmodel").write_text((shipped / "MLmodel").read_text() + "# edited after the gate\n")
    tampered = gate("digest", str(shipped), "--expect", f"models:/{name}@champion")
    assert tampered.code == 1 and "does not hold the files gated as" in tampered.out

    strict = policy(thresholds={"accuracy": {"direction": "higher", "min": 0.999}})
    _, rejected = register("bad", name)
    assert gate("check", "--policy", str(strict), "--model-uri", f"models:/{name}/{rejected}").code == 1
    fetched = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{rejected}", dst_path=str(tmp_path / "rej")))
    refused = gate("digest", str(fetched), "--expect", f"models:/{name}/{rejected}")
    assert refused.code == 1 and "decision on it was 'rejected'" in refused.out

    _, ungated = register("good", name)
    never = gate("digest", str(fetched), "--expect", f"models:/{name}/{ungated}")
    assert never.code == 1 and "has no model_gate.content_sha256 tag" in never.out
    missing = gate("digest", str(tmp_path / "nowhere"))
    assert missing.code == 2 and "does not exist" in missing.err
