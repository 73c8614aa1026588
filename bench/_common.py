"""Shared by the benchmarks: a process tree's peak resident memory, and a child process run and measured."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

GIB = 1024**3


@contextmanager
def peak_rss(pid: int) -> Iterator[list[int]]:
    """Sample the resident memory of process ``pid`` and its children every 100 ms while the block runs.

    Yields:
        A holder whose only item is the peak so far, in bytes (final once the block has left).
    """
    import psutil

    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        parent = psutil.Process(pid)
        while not stop.is_set():
            try:
                procs = [parent, *parent.children(recursive=True)]
                peak[0] = max(peak[0], sum(p.memory_info().rss for p in procs if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.1)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


def run_measured(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> tuple[float, int]:
    """Run ``cmd`` with its output in ``log``; its seconds and the peak resident memory of its process tree.

    Raises:
        SystemExit: the command failed, naming the log.
    """
    started = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        with peak_rss(proc.pid) as peak:
            code = proc.wait()
    if code:
        raise SystemExit(f"{' '.join(str(c) for c in cmd[:5])} failed ({code}); see {log}")
    return time.perf_counter() - started, peak[0]
