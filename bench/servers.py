"""Start, watch and stop the servers under test, all on 127.0.0.1 free ports."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.client import HOST


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def read_status(pid: int) -> dict[str, int]:
    """Return VmRSS and VmHWM of a process in kB (empty if it is gone)."""
    out: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def children(pid: int) -> list[int]:
    """Return the direct children of a process (gunicorn's workers)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces or parentheses: split after the last ")".
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


@dataclass
class Server:
    """One server process (and its workers) under test."""

    name: str
    argv: Sequence[str]
    port: int
    cwd: Path
    log: Path
    env: Mapping[str, str] = field(default_factory=dict)
    ready_path: str = "/"
    forks_workers: bool = False  # gunicorn: measure the workers, not the master
    proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> None:
        """Start the process and wait until it answers HTTP."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env}
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                list(self.argv),
                cwd=self.cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own group: stopping it stops its workers
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}; see {self.log}"
                )
            if self._answers() and (not self.forks_workers or self.worker_pids()):
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer within {timeout:.0f} s")

    def _answers(self) -> bool:
        """True when the server returns any HTTP response on ready_path."""
        conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        try:
            conn.request("GET", self.ready_path)
            conn.getresponse().read()
            return True
        except OSError:
            return False
        finally:
            conn.close()

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: gunicorn's workers, or the server."""
        if self.proc is None:
            return []
        if self.forks_workers:
            return children(self.proc.pid)
        return [self.proc.pid]

    def stop(self) -> None:
        """Stop the server: SIGTERM its process group, SIGKILL after 15 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    @property
    def command(self) -> str:
        """The command line, for the report, with paths relative to the cwd."""
        prefix = str(self.cwd) + "/"
        return " ".join(_quote(a.replace(prefix, "")) for a in self.argv)


def _quote(arg: str) -> str:
    """Quote an argument for display when it holds shell-special characters."""
    if arg and all(c.isalnum() or c in "-_./:=,@" for c in arg):
        return arg
    return "'" + arg.replace("'", "'\\''") + "'"


class RssSampler:
    """Sample VmRSS of some processes every few ms while a request runs."""

    def __init__(self, pids: Sequence[int], interval: float = 0.01) -> None:
        self.pids = list(pids)
        self.interval = interval
        self.baseline = {p: read_status(p).get("VmRSS", 0) for p in self.pids}
        self.peak = dict(self.baseline)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        """Record the highest VmRSS seen per process until stopped."""
        while not self._stop.is_set():
            for pid in self.pids:
                rss = read_status(pid).get("VmRSS", 0)
                if rss > self.peak.get(pid, 0):
                    self.peak[pid] = rss
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def growth_mb(self) -> float:
        """Largest rise of one process's RSS over its baseline, in MB."""
        rises = [self.peak[p] - self.baseline.get(p, 0) for p in self.pids]
        return max(rises, default=0) / 1024

    def peak_mb(self) -> float:
        """Highest RSS of any one process, in MB."""
        return max(self.peak.values(), default=0) / 1024

    def hwm_mb(self) -> float:
        """Highest VmHWM (lifetime peak RSS) of any one process, in MB."""
        return (
            max((read_status(p).get("VmHWM", 0) for p in self.pids), default=0) / 1024
        )
