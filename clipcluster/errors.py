"""The one error type for bad input, so every message reads the same way."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Bad input: the message is one line naming the file, the row or key, and what was expected."""

    def __init__(self, where: str | Path, problem: str) -> None:
        self.where = str(where)
        self.problem = problem
        super().__init__(f"{where}: {problem}")
