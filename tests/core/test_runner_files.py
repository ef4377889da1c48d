"""The runner's command files are put back exactly, whatever model code did to them, without the
gate being aimed elsewhere (symlinks) or stalled (FIFOs)."""

from __future__ import annotations

import os

import pytest

from gate import runner_files
from gate.runner_files import RunnerFiles


@pytest.fixture()
def files(tmp_path):
    paths = {name: tmp_path / name for name in ("output", "env", "summary")}
    paths["output"].write_text("decision<<EOF\nx\nEOF\n")
    paths["env"].write_text("")
    paths["summary"].write_text("# summary\n")
    noted = RunnerFiles({"GITHUB_OUTPUT": str(paths["output"]), "GITHUB_ENV": str(paths["env"]),
                         "GITHUB_STEP_SUMMARY": str(paths["summary"])})
    return paths, noted


def test_untouched_files_are_not_reported(files):
    _, noted = files
    assert noted.restore_changed() == ([], [])


def test_appended_overwritten_and_deleted_files_are_put_back(files):
    paths, noted = files
    with paths["env"].open("a") as env:
        env.write("LD_PRELOAD=/tmp/evil.so\n")
    paths["output"].write_text("decision=promoted\n")
    paths["summary"].unlink()
    assert noted.restore_changed() == (["GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_STEP_SUMMARY"], [])
    assert [paths[n].read_text() for n in ("output", "env", "summary")] == ["decision<<EOF\nx\nEOF\n", "", "# summary\n"]


def test_a_symlink_is_removed_not_written_through(files, tmp_path):
    paths, noted = files
    victim = tmp_path / "victim"
    victim.write_text("not the runner's\n")
    paths["summary"].unlink()
    paths["summary"].symlink_to(victim)
    assert noted.restore_changed() == (["GITHUB_STEP_SUMMARY"], [])
    assert not paths["summary"].is_symlink() and paths["summary"].read_text() == "# summary\n"
    assert victim.read_text() == "not the runner's\n"


@pytest.mark.timeout(20)
def test_a_fifo_does_not_stall_the_gate(files):
    paths, noted = files
    paths["env"].unlink()
    os.mkfifo(paths["env"])
    assert noted.restore_changed() == (["GITHUB_ENV"], [])
    assert paths["env"].is_file() and paths["env"].read_text() == ""


def test_a_large_file_is_cut_back_when_only_appended_to(tmp_path, monkeypatch):
    monkeypatch.setattr(runner_files, "KEEP_BYTES", 8)  # the gate keeps no copy of this one
    summary = tmp_path / "summary"
    summary.write_text("# a long summary\n")
    noted = RunnerFiles({"GITHUB_STEP_SUMMARY": str(summary)})
    with summary.open("a") as handle:
        handle.write("forged\n")
    assert noted.restore_changed() == (["GITHUB_STEP_SUMMARY"], [])
    assert summary.read_text() == "# a long summary\n"
    summary.write_text("# rewritten in place\n")  # not an append, and no copy to restore from
    assert noted.restore_changed() == ([], ["GITHUB_STEP_SUMMARY"])
