"""Real servers for the tests, started on free loopback ports and stopped afterwards.

Imported by conftest files of every test area (core, storage, action), so the
way a server is started lives in one place.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout_s: float, process: subprocess.Popen | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            detail = log.read_text()[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"server exited with {process.returncode} before {url} answered:\n{detail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return
        except OSError:
            time.sleep(0.25)
    raise RuntimeError(f"{url} did not answer within {timeout_s}s")


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    workdir: Path
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            # The server runs in its own process group: stop the workers too.
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)


def start_process(argv: list[str], workdir: Path, health_url: str, env: dict | None = None,
                  timeout_s: float = 90, name: str = "server") -> subprocess.Popen:
    log = workdir / f"{name}.log"
    process = subprocess.Popen(
        argv, cwd=workdir, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})}, start_new_session=True,
    )
    try:
        wait_http(health_url, timeout_s, process, log)
    except BaseException:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        raise
    return process


def start_mlflow(workdir: Path, *, backend_uri: str | None = None, artifacts_destination: str | None = None,
                 env: dict | None = None, workers: int = 1) -> Server:
    """`mlflow server` with a SQLite backend (default) and proxied artifacts in `workdir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    backend_uri = backend_uri or f"sqlite:///{workdir / 'mlflow.db'}"
    artifacts_destination = artifacts_destination or str(workdir / "artifacts")
    argv = [
        str(VENV_BIN / "mlflow"), "server",
        "--backend-store-uri", backend_uri,
        "--artifacts-destination", artifacts_destination, "--serve-artifacts",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
    ]
    url = f"http://127.0.0.1:{port}"
    process = start_process(argv, workdir, f"{url}/health", env=env, timeout_s=120, name="mlflow")
    return Server(url=url, process=process, workdir=workdir, log=workdir / "mlflow.log")


def start_moto(workdir: Path) -> Server:
    """moto's standalone S3-compatible server (a real HTTP endpoint for boto3)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    exe = shutil.which("moto_server", path=str(VENV_BIN)) or str(VENV_BIN / "moto_server")
    url = f"http://127.0.0.1:{port}"
    process = start_process([exe, "-H", "127.0.0.1", "-p", str(port)], workdir, f"{url}/moto-api/",
                            timeout_s=60, name="moto")
    return Server(url=url, process=process, workdir=workdir, log=workdir / "moto.log")


def _postgres_bin(name: str) -> str | None:
    import glob

    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def start_postgres(workdir: Path) -> tuple[str, subprocess.Popen]:
    """A throwaway PostgreSQL cluster on a free loopback port; returns (SQLAlchemy URI, process).

    PostgreSQL refuses to run as root, so when the tests run as root (CI does) the
    cluster runs as the `postgres` system user.
    """
    initdb, postgres = _postgres_bin("initdb"), _postgres_bin("postgres")
    if not initdb or not postgres:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "pgdata"
    as_user: list[str] = []
    if os.geteuid() == 0:
        import pwd

        user = pwd.getpwnam("postgres")
        os.chown(workdir, user.pw_uid, user.pw_gid)
        os.chmod(workdir, 0o755)
        for parent in workdir.parents:  # the postgres user must be able to reach its data folder
            if str(parent).startswith(tempfile_root()):
                os.chmod(parent, os.stat(parent).st_mode | 0o005)
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "gate", "--no-sync"],
                   check=True, capture_output=True)
    port = free_port()
    log = workdir / "postgres.log"
    process = subprocess.Popen(
        [*as_user, postgres, "-D", str(data), "-p", str(port), "-h", "127.0.0.1", "-k", str(workdir),
         "-c", "fsync=off", "-c", "max_connections=100"],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        if process.poll() is not None:
            raise RuntimeError(f"postgres exited: {log.read_text()[-2000:]}")
        time.sleep(0.2)
    time.sleep(0.5)  # accepting TCP a moment before it accepts logins
    return f"postgresql+psycopg2://gate@127.0.0.1:{port}/postgres", process


def tempfile_root() -> str:
    import tempfile

    return tempfile.gettempdir()
