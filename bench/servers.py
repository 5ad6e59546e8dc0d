"""Start the three HTTP servers of the benchmarks as users run them, and stop them.

Each server is its own process group (uvicorn with --workers forks), so that
stopping it ends exactly the processes started here, and its memory is the
sum over the group (psutil).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil


class Server:
    def __init__(
        self,
        name: str,
        command: list[str],
        cwd: Path,
        env: dict[str, str],
        port: int,
        probe: str,
        log: Path,
    ) -> None:
        self.name, self.command, self.cwd = name, command, cwd
        self.env, self.port, self.probe, self.log = env, port, probe, log
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> "Server":
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start; see {self.log}")
            try:
                httpx.get(self.url + self.probe, timeout=2)
                time.sleep(0.5)  # let every worker come up, not just the first
                return self
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(
            f"{self.name} did not answer within {timeout} s; see {self.log}"
        )

    def settle(self, timeout: float = 120) -> None:
        """Wait until the work a finished load left queued is done.

        Hashes queued behind a limiter finish long after wrk stops, and a
        health probe does not wait for them: an idle CPU does.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._cpu_seconds(0.5) > 0.05:
            pass

    def _cpu_seconds(self, window: float) -> float:
        """CPU time the server's processes used during the next `window` seconds."""
        assert self.process is not None
        try:
            root = psutil.Process(self.process.pid)
            processes = [root, *root.children(recursive=True)]
            before = sum(sum(p.cpu_times()[:2]) for p in processes)
            time.sleep(window)
            return sum(sum(p.cpu_times()[:2]) for p in processes) - before
        except psutil.Error:
            return 0.0

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def rss_mib(self) -> float:
        """Resident memory of the server and its workers, in MiB."""
        assert self.process is not None
        try:
            root = psutil.Process(self.process.pid)
            processes = [root, *root.children(recursive=True)]
            return sum(p.memory_info().rss for p in processes) / 2**20
        except psutil.Error:
            return 0.0

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


class PeakMemory:
    """Samples a server's RSS in the background while a load runs."""

    def __init__(self, server: Server) -> None:
        self.server, self.peak = server, 0.0
        import threading

        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.25):
            self.peak = max(self.peak, self.server.rss_mib())

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
