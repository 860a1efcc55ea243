"""A lock file shared by processes: the pipeline, the registry, jobs and server starts take turns
on one."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (made if missing) until the block ends.

    Other processes (and other open files of this one) wait; the lock goes with the file's
    closing, so a process that dies holding it frees it.
    """
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
