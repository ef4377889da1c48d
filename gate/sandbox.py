"""Run a model in a child process with deadlines (the parent side of gate.worker).

A hang, a crash or an `os._exit` in model code becomes a ModelProcessError
with a message saying what happened and during what; the gate survives.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping


class ModelProcessError(Exception):
    """The model's process failed, timed out or died."""


class ModelProcess:
    """One child process that will hold one model; started early so its imports overlap the download."""

    def __init__(self, workdir: Path, label: str, pass_env: frozenset[str] = frozenset(),
                 run_as: tuple[int, int] | None = None) -> None:
        self.workdir = workdir
        self.pass_env = pass_env
        self.run_as = run_as  # (uid, gid) for model code, when the gate runs as root (see model_user)
        self.label = label
        self.log_path = workdir / f"{label}.log"
        self._process: subprocess.Popen | None = None
        self._answers: Any = None
        self._commands: Any = None

    def __enter__(self) -> ModelProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        hide_gate_process()
        cmd_read, cmd_write = (_above_stdio(fd) for fd in os.pipe())
        answer_read, answer_write = (_above_stdio(fd) for fd in os.pipe())
        env = {**model_environment(os.environ, self.pass_env),
               "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
        as_user: dict[str, Any] = {}
        if self.run_as is not None:
            uid, gid = self.run_as
            # Its own folder is its home and temp: the only place it may write. Its parent (the gate's
            # workdir) may be passed through, not listed.
            os.chown(self.workdir, uid, gid)
            self.workdir.chmod(0o700)
            self.workdir.parent.chmod(0o711)
            env.update(HOME=str(self.workdir), TMPDIR=str(self.workdir))
            as_user = {"user": uid, "group": gid, "extra_groups": []}
        with self.log_path.open("wb") as log:
            try:
                self._process = subprocess.Popen(
                    [sys.executable, "-m", "gate.worker", "--cmd-fd", str(cmd_read), "--answer-fd", str(answer_write)],
                    pass_fds=(cmd_read, answer_write), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env=env, start_new_session=True, cwd=self.workdir, **as_user,
                )
            except PermissionError as error:
                if self.run_as is None:
                    raise
                from gate.errors import UsageError

                raise UsageError(f"MODEL_GATE_MODEL_USER: uid {self.run_as[0]} cannot start "
                                 f"{os.path.realpath(sys.executable)} "
                                 f"({error.strerror}); the interpreter and its packages must be readable by "
                                 "that user") from None
        os.close(cmd_read)
        os.close(answer_write)
        self._commands = os.fdopen(cmd_write, "w")
        self._answers = answer_read
        self._buffer = b""
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._process is None:
            return
        try:
            if self._process.poll() is None:
                try:
                    self._commands.write(json.dumps({"op": "exit"}) + "\n")
                    self._commands.flush()
                    self._process.wait(timeout=5)
                except (OSError, subprocess.TimeoutExpired):
                    pass
        finally:
            self._kill()
            for closer in (self._commands.close, lambda: os.close(self._answers)):
                try:
                    closer()
                except OSError:
                    pass
            self._process = None

    def _kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            try:
                os.killpg(self._process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._process.wait(timeout=10)

    def call(self, command: dict[str, Any], timeout_s: float, during: str,
             budget_s: float | None = None) -> dict[str, Any]:
        """Send one command; return its answer, or raise ModelProcessError naming what went wrong.

        budget_s: the configured timeout to name in messages when timeout_s is what is left of it.
        """
        assert self._process is not None
        try:
            self._commands.write(json.dumps(command) + "\n")
            self._commands.flush()
        except BrokenPipeError:
            raise ModelProcessError(self._death_message(during)) from None
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._kill()
                raise ModelProcessError(f"{during} timed out after {budget_s or timeout_s:g}s; "
                                        "the model process was killed"
                                        f"{self._log_tail()}")
            ready, _, _ = select.select([self._answers], [], [], min(remaining, 0.5))
            if ready:
                chunk = os.read(self._answers, 1 << 16)
                if not chunk:
                    self._process.wait(timeout=10)
                    raise ModelProcessError(self._death_message(during))
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        answer = json.loads(line)
        if not answer.get("ok"):
            raise ModelProcessError(f"{during} raised {_one_line(answer.get('error') or 'an error')}")
        return answer

    def _death_message(self, during: str) -> str:
        code = self._process.wait(timeout=10) if self._process else None
        if code is not None and code < 0:
            try:
                how = f"was killed by signal {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        return f"the model process {how} during {during}{self._log_tail()}"

    def _log_tail(self) -> str:
        try:
            lines = [line for line in self.log_path.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            return ""
        return f"; last output: {lines[-1][:300]}" if lines else ""


# What model code never sees: credentials, the registry's address, and the runner's command
# files (writing to GITHUB_OUTPUT or GITHUB_ENV would let a model forge the gate's decision or
# change the environment of the workflow's later steps).
_WITHHELD_NAMES = frozenset({
    "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_CLIENT_CERT_PATH", "DATABRICKS_HOST",
    "GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_PATH", "GITHUB_STATE", "GITHUB_STEP_SUMMARY",
    "GOOGLE_APPLICATION_CREDENTIALS", "AZURE_STORAGE_CONNECTION_STRING", "MODEL_GATE_KEY_PASSWORD",
})
_WITHHELD_PREFIXES = ("AWS_", "ACTIONS_", "INPUT_", "AZURE_CLIENT_", "DATABRICKS_")
_WITHHELD_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "PRIVATE_KEY", "API_KEY", "ACCESS_KEY")


def model_environment(environ: Mapping[str, str], pass_env: frozenset[str] = frozenset()) -> dict[str, str]:
    """The environment for model code: the gate's, without secrets or registry access.

    `pass_env` (the policy's load.pass_env) names variables a model needs anyway.
    """
    return {name: value for name, value in environ.items() if name in pass_env or not withheld(name)}


def withheld(name: str) -> bool:
    """Is this an environment variable model code must not see (a credential, the registry, a runner file)?"""
    upper = name.upper()
    return (upper in _WITHHELD_NAMES or upper.startswith(_WITHHELD_PREFIXES)
            or any(word in upper for word in _WITHHELD_WORDS))


def model_user(environ: Mapping[str, str] | None = None) -> tuple[int, int] | None:
    """(uid, gid) that model code runs as: MODEL_GATE_MODEL_USER (a user name, or uid[:gid]) when the
    gate runs as root, as in the Action's container. Another user cannot read the gate's /proc files
    at all, nor files only root may read, nor write to the runner's command files. None: same user."""
    from gate.errors import UsageError

    value = (os.environ if environ is None else environ).get("MODEL_GATE_MODEL_USER", "").strip()
    if not value or os.geteuid() != 0:
        return None  # not root: the gate cannot switch users, and model code is already unprivileged
    import pwd

    uid_text, _, gid_text = value.partition(":")
    try:
        if uid_text.isdigit():
            uid = int(uid_text)
            gid = int(gid_text) if gid_text.isdigit() else uid
            if gid_text and not gid_text.isdigit():
                raise ValueError
        else:
            entry = pwd.getpwnam(value)
            uid, gid = entry.pw_uid, entry.pw_gid
    except (KeyError, ValueError):
        raise UsageError(f"MODEL_GATE_MODEL_USER={value!r}: no such user (give a user name or uid[:gid])") from None
    if uid == 0 or gid == 0:
        raise UsageError(f"MODEL_GATE_MODEL_USER={value!r}: model code must not run as root")
    return uid, gid


def open_to_model_user(tree: Path, workdir: Path) -> None:
    """Let another user read a model the gate downloaded into workdir (folders a+rx, files a+r, and
    the folders between workdir and it passable); nothing else changes."""
    import stat

    for folder in tree.resolve().parents:
        if not folder.is_relative_to(workdir.resolve()):
            break
        os.chmod(folder, stat.S_IMODE(os.stat(folder).st_mode) | 0o111)

    for root, dirs, files in os.walk(tree):
        for name in [*dirs, *files]:
            path = os.path.join(root, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISDIR(mode):
                os.chmod(path, stat.S_IMODE(mode) | 0o555)
            elif stat.S_ISREG(mode):
                os.chmod(path, stat.S_IMODE(mode) | 0o444)
    os.chmod(tree, stat.S_IMODE(os.stat(tree).st_mode) | 0o555)


PR_SET_CHILD_SUBREAPER = 36


def adopt_orphans() -> set[int]:
    """Make the gate the reaper of its descendants' orphans (Linux), so a daemon that model code
    detaches with setsid() and a double fork stays findable; returns the gate's children now, which
    are not model code's."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    return child_pids()


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process in /proc (empty where there is no /proc)."""
    parents: dict[int, int] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return parents
    for entry in entries:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as stat:
                    parents[int(entry)] = int(stat.read().rsplit(b")", 1)[1].split()[1])  # field 4: ppid
            except (OSError, ValueError, IndexError):
                continue
    return parents


def child_pids() -> set[int]:
    """The gate's direct children."""
    me = os.getpid()
    return {pid for pid, parent in _parents().items() if parent == me}


def kill_leftovers(before: set[int]) -> list[int]:
    """After the model processes are stopped: kill whatever model code left running - daemons it
    detached (adopted by the gate, see adopt_orphans) and their descendants - so nothing of it can
    write the runner's files once they were checked. Only the gate's own descendants: other
    processes of the same user are not model code's. One look at /proc when nothing was left."""
    me, killed = os.getpid(), set()  # a set: a killed grandchild comes back once it is the gate's zombie
    while True:
        parents = _parents()
        tree = {pid for pid, parent in parents.items() if parent == me and pid not in before}
        frontier = set(tree)
        while frontier:
            frontier = {pid for pid, parent in parents.items() if parent in frontier} - tree
            tree |= frontier
        if not tree:
            return sorted(killed)
        for pid in tree:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except ProcessLookupError:
                pass
        for pid in tree:
            if parents.get(pid) == me:
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
        time.sleep(0.02)  # what was forked meanwhile reaches the gate once its parent is gone


_URL_SECRETS = re.compile(rb"(?<=://)[^/@\s\x00]*:([^/@\s\x00]+)(?=@)|(?<=[?&;])[^=&;#\s\x00]+=([^&;#\s\x00]*)")


def _mask_arguments(arg_start: int, arg_end: int) -> None:
    """/proc/<gate>/cmdline is readable by every user: mask passwords and query values of URLs
    given as arguments (`--tracking-uri https://user:pw@host`), in place (sys.argv is a copy)."""
    import ctypes

    block = ctypes.string_at(arg_start, arg_end - arg_start)
    for match in _URL_SECRETS.finditer(block):
        # only in arguments that hold a URL: a "?" or ";" elsewhere is not a query
        argument_start = block.rfind(b"\0", 0, match.start()) + 1
        if b"://" not in block[argument_start:match.start()] and match.group(1) is None:
            continue
        group = 1 if match.group(1) is not None else 2
        if match.end(group) > match.start(group):
            ctypes.memset(arg_start + match.start(group), ord("*"), match.end(group) - match.start(group))


_hidden = False


def hide_gate_process() -> None:
    """Keep the gate's secrets out of reach of model code that runs as the same user (Linux).

    Two doors lead to them. /proc/<gate>/mem and ptrace: closed by making the gate non-dumpable, for
    every process without CAP_SYS_PTRACE (which Docker and podman drop by default, so this holds for
    root in the Action's container too). /proc/<gate>/environ, the environment block the gate was
    started with: non-dumpable closes it only for other users than root, so the withheld variables'
    values are overwritten in that block, after libc is given copies of any it still uses (getenv,
    and Python's os.environ, which copied the block at start-up, keep the real values).
    Root with CAP_SYS_PTRACE (a privileged container, root on a host) can still read the gate's memory.
    """
    global _hidden
    if _hidden or not sys.platform.startswith("linux"):
        return
    _hidden = True
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_dumpable = 4
        libc.prctl(pr_set_dumpable, 0, 0, 0, 0)
        with open("/proc/self/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        env_start, env_end = int(fields[47]), int(fields[48])  # fields 50 and 51 of proc(5)
        environ = ctypes.POINTER(ctypes.c_void_p).in_dll(libc, "environ")
    except (OSError, AttributeError, ValueError, IndexError):
        return

    def in_use() -> dict[int, bytes]:
        used, index = {}, 0
        while environ[index]:
            used[environ[index]] = ctypes.string_at(environ[index]).partition(b"=")[0]
            index += 1
        return used

    _mask_arguments(int(fields[45]), int(fields[46]))  # fields 48 and 49: the command line
    used = in_use()
    block = ctypes.string_at(env_start, env_end - env_start)
    offset = 0
    for entry in block.split(b"\0"):
        address, offset = env_start + offset, offset + len(entry) + 1
        name, sep, value = entry.partition(b"=")
        if not sep or not value or not withheld(name.decode(errors="replace")):
            continue
        if address in used:  # libc still reads this copy: give it one of its own first
            if libc.setenv(name, value, 1) != 0 or address in in_use():
                continue
        ctypes.memset(address + len(name) + 1, ord("*"), len(value))


def _one_line(error: str, limit: int = 300) -> str:
    """Model errors can span pages (MLflow prints whole DataFrames); reports need one line."""
    first = error.strip().splitlines()[0] if error.strip() else error
    if "Failed to enforce schema" in error:
        # MLflow's signature check: "Failed to enforce schema of data '<the whole frame>' with schema
        # '<schema>'. Error: <what is wrong>". Only the part after the last "Error: " says what.
        _, found, tail = error.rpartition("Error: ")
        detail = tail.strip().splitlines()[0].strip() if found and tail.strip() else ""
        first = "the input does not match the model's input schema" + (f" ({detail})" if detail else "")
    return first if len(first) <= limit else first[: limit - 1] + "…"


def _above_stdio(fd: int) -> int:
    """If the gate was started with fd 0, 1 or 2 closed, a pipe can get that number and the
    child's stdout/stderr redirection would overwrite it: move it above 2."""
    if fd > 2:
        return fd
    import fcntl

    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    os.close(fd)
    return moved
