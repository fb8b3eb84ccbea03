# Copyright 2025 The TF-CoVR-HF authors. Licensed under the MIT License.
"""Atomic file writes: a file appears under its final name complete or not at all.

Every writer of the package goes through [`atomic_path`] (for libraries that write to a path: parquet, FAISS, PyAV)
or [`atomic_write`] (for an open file handle). The data go to a hidden temporary file next to the target (same
folder, so the final rename is atomic), are flushed to disk, and are renamed onto the target only when writing
succeeded; on any error the temporary file is removed and an existing target is left as it was.

Example:

```python
>>> import tempfile, pathlib
>>> from modeling_tfcovr.io_utils import atomic_write
>>> target = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
>>> with atomic_write(target, "w") as handle:
...     _ = handle.write("hello")
>>> target.read_text()
'hello'

```
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_path", "atomic_write", "temporary_name"]


def temporary_name(path: Path) -> Path:
    """A hidden, unique name next to `path` that keeps its suffix (writers that infer the format from it still work);
    it matches `.*` and `*.tmp*`, which loaders and uploads skip."""
    return path.with_name(f".{path.stem}.tmp-{uuid.uuid4().hex[:12]}{path.suffix}")


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


@contextmanager
def atomic_path(path: str | os.PathLike, durable: bool = True) -> Iterator[Path]:
    """Yields a temporary path to write to; on success it is renamed onto `path` (parent folders are created).

    Args:
        path: the final file.
        durable: flush the written file to disk (`fsync`) before the rename, so that a crash right after it cannot
            leave an empty file under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = temporary_name(path)
    try:
        yield tmp_path
        if durable:
            _fsync(tmp_path)
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "wb", encoding: str | None = None, durable: bool = True
) -> Iterator[IO[Any]]:
    """Opens a temporary file for writing (`mode` `"wb"` or `"w"`; text defaults to UTF-8) and renames it onto `path`
    when the block ends without an error; see [`atomic_path`]."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write writes new files: mode must be 'w' or 'wb', got {mode!r}")
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    with atomic_path(path, durable=False) as tmp_path, open(tmp_path, mode, encoding=encoding) as handle:
        yield handle
        handle.flush()
        if durable:
            os.fsync(handle.fileno())
