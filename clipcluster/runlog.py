"""Logging for rule scripts: everything a job prints goes to its Snakemake ``log:`` file.

Rule scripts call :func:`to_log_file` first. It points file descriptors 1 and 2 at the log, so
messages from C libraries (faiss, Infomap) and tqdm progress bars land there too, and sets up
``logging`` with timestamps.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def to_log_file(path: str | Path, level: int = logging.INFO) -> logging.Logger:
    """Send stdout, stderr and ``logging`` of this process to ``path`` (appending)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    # Line-buffered text streams over the redirected descriptors, so the log follows the job live.
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - lives as long as the process
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    logger = logging.getLogger("clipcluster")
    # where the job ran: on a cluster each job's machine differs from the driver's (provenance.py records that one)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    logger.info("host %s, %s CPUs available, pid %d", platform.node(), cpus, os.getpid())
    return logger


@contextmanager
def timed(label: str, logger: logging.Logger | None = None) -> Iterator[dict[str, float]]:
    """Measure the wall time of a block; the yielded dict gets ``seconds`` when the block ends."""
    out: dict[str, float] = {}
    start = time.perf_counter()
    try:
        yield out
    finally:
        out["seconds"] = time.perf_counter() - start
        if logger is not None:
            logger.info("%s took %.2f s", label, out["seconds"])
