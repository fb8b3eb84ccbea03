"""Error types raised by the project.

Every error names the input it is about (a path, a CSV row, a video id) and what is wrong with
it, so that a user can fix the data without reading a traceback.
"""

from __future__ import annotations


class TFCoVRError(Exception):
    """Base class of every error the project raises on purpose."""


class VideoDecodeError(TFCoVRError, ValueError):
    """A video could not be found, opened or decoded."""

    def __init__(self, path: object, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot decode video {self.path!r}: {reason}")


class DataFormatError(TFCoVRError, ValueError):
    """An annotation file, table or embedding does not have the expected form."""


class UnsafePathError(TFCoVRError, ValueError):
    """A video id or path would read outside the directory it must stay in."""


class UntrustedFileError(TFCoVRError, PermissionError):
    """Reading a file would need unpickling, and the user has not said they trust it."""
