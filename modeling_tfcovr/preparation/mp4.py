"""A streaming H.264 mp4 writer for clips (frames arrive one at a time, too many to hold in memory).

Same encoding as [`modeling_tfcovr.video_io.write_mp4`] (libx264, yuv420p, one thread per encoder:
parallelism comes from worker processes) and the same atomic write: the file appears under its
final name only when [`ClipWriter.close`] finished; [`ClipWriter.abort`] removes the partial file.
"""

from __future__ import annotations

import contextlib
import os
from fractions import Fraction
from pathlib import Path

import numpy as np


class ClipWriter:
    """Writes frames at a constant `rate` (frames per second, a `Fraction` such as 30000/1001) to `path`.

    Odd widths or heights lose their last column or row (H.264 with yuv420p needs even sizes).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        rate: Fraction | int,
        width: int,
        height: int,
        crf: int = 18,
        preset: str = "veryfast",
    ):
        import av

        self.path = Path(path)
        self.tmp_path = self.path.with_name(f".{self.path.stem}.tmp{os.getpid()}{self.path.suffix}")
        self.width, self.height = width - width % 2, height - height % 2
        self.source_size = (width, height)
        self.rate = Fraction(rate)
        self.count = 0
        self._container = av.open(str(self.tmp_path), mode="w", format="mp4")
        self._stream = self._container.add_stream("libx264", rate=self.rate)
        self._stream.width, self._stream.height, self._stream.pix_fmt = self.width, self.height, "yuv420p"
        self._stream.options = {"crf": str(crf), "preset": preset, "threads": "1"}
        self._stream.codec_context.thread_count = 1
        self._time_base = 1 / self.rate

    def write_frame(self, frame) -> None:
        """Encodes an `av.VideoFrame` (any pixel format) or a uint8 RGB array (H, W, 3)."""
        import av
        from av.video.frame import PictureType

        if isinstance(frame, np.ndarray):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[: self.height, : self.width]), format="rgb24")
        elif (frame.width, frame.height) != (self.width, self.height):
            rgb = frame.to_ndarray(format="rgb24")[: self.height, : self.width]
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        elif frame.format.name != "yuv420p":
            frame = frame.reformat(format="yuv420p")
        frame.pts, frame.time_base = self.count, self._time_base
        frame.pict_type = PictureType.NONE  # the source's I/P/B decisions must not force the encoder's
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.count += 1

    def close(self) -> None:
        """Flushes the encoder and moves the file to its final name."""
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        os.replace(self.tmp_path, self.path)

    def abort(self) -> None:
        """Drops the partial file."""
        with contextlib.suppress(Exception):  # a container that failed mid-write may not close cleanly
            self._container.close()
        self.tmp_path.unlink(missing_ok=True)


__all__ = ["ClipWriter"]
