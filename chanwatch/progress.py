"""Progress bars for long CLI work: shown on stderr when it is a terminal, silent otherwise."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


@contextmanager
def _progress(description: str, total: int, columns: tuple) -> Iterator[Callable[[int], None] | None]:
    """Yield a callback that advances a bar, or None when stderr is not a terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), *columns, TimeRemainingColumn(),
                  console=Console(stderr=True)) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


def byte_progress(description: str, total: int) -> AbstractContextManager[Callable[[int], None] | None]:
    """A bar in bytes, with transfer speed (imports)."""
    return _progress(description, total, (DownloadColumn(), TransferSpeedColumn()))


def count_progress(description: str, total: int) -> AbstractContextManager[Callable[[int], None] | None]:
    """A bar in items (files hashed)."""
    return _progress(description, total, (MofNCompleteColumn(),))
