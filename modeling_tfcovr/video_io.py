"""Reading and writing video files.

Decoding goes through decord (what the official code and most video models use); writing
H.264 mp4 files goes through PyAV, which ships its own FFmpeg build.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .errors import UnsafePathError, VideoDecodeError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm")


def open_video(path: str | os.PathLike):
    """Opens `path` with decord and returns the `VideoReader`.

    Raises:
        VideoDecodeError: the file is missing, empty, not a video, or has no frames.
    """
    import decord

    path = str(path)
    if not os.path.exists(path):
        raise VideoDecodeError(path, "file does not exist")
    if os.path.isdir(path):
        raise VideoDecodeError(path, "is a directory, not a video file")
    if os.path.getsize(path) == 0:
        raise VideoDecodeError(path, "file is empty (0 bytes)")
    try:
        reader = decord.VideoReader(path, num_threads=1)
    except Exception as error:  # decord raises its own DECORDError, or RuntimeError
        raise VideoDecodeError(path, f"not a readable video ({_first_line(error)})") from None
    if len(reader) == 0:
        raise VideoDecodeError(path, "video has no frames")
    return reader


def read_frames(
    path: str | os.PathLike, indices: Sequence[int] | Callable[[int], Sequence[int]] | None = None
) -> np.ndarray:
    """Decodes frames of a video as a uint8 array of shape (T, H, W, 3), RGB.

    Args:
        path: the video file.
        indices: frame indices to decode, or a function of the video's frame count that returns
            them (the file is opened once); all frames when `None`.
    """
    reader = open_video(path)
    if callable(indices):
        indices = indices(len(reader))
    if indices is None:
        indices = range(len(reader))
    indices = [int(i) for i in indices]
    bad = [i for i in indices if not 0 <= i < len(reader)]
    if bad:
        raise VideoDecodeError(path, f"frame index {bad[0]} out of range for {len(reader)} frames")
    try:
        frames = reader.get_batch(indices).asnumpy()
    except Exception as error:
        if "size must exactly match" not in str(error):
            raise VideoDecodeError(path, f"decoding failed, the file may be truncated ({_first_line(error)})") from None
        # decord cannot copy frames whose rows it pads (widths that are not a multiple of 32).
        frames = _read_frames_with_pyav(path, indices)
    if frames.ndim != 4 or frames.shape[0] != len(indices):
        raise VideoDecodeError(path, f"decoder returned frames of shape {frames.shape}")
    return frames


def _read_frames_with_pyav(path: str, indices: list[int]) -> np.ndarray:
    """Decodes the frames at `indices` sequentially with PyAV (the fallback decoder)."""
    import av

    wanted = sorted(set(indices))
    found: dict[int, np.ndarray] = {}
    try:
        with av.open(path) as container:
            for index, frame in enumerate(container.decode(video=0)):
                if index in wanted:
                    found[index] = frame.to_ndarray(format="rgb24")
                if index >= wanted[-1]:
                    break
    except Exception as error:
        raise VideoDecodeError(path, f"decoding failed, the file may be truncated ({_first_line(error)})") from None
    missing = [i for i in wanted if i not in found]
    if missing:
        raise VideoDecodeError(path, f"frame {missing[0]} could not be decoded; the file may be truncated")
    return np.stack([found[i] for i in indices])


def count_frames(path: str | os.PathLike) -> int:
    """Number of frames decord reports for `path`."""
    return len(open_video(path))


def write_mp4(path: str | os.PathLike, frames: np.ndarray, fps: int = 16, crf: int = 18, preset: str = "veryfast",
              deterministic: bool = True) -> None:
    """Writes uint8 frames (T, H, W, 3) RGB as an H.264 mp4 (yuv420p; H and W must be even).

    The file is written to a temporary name and renamed, so a killed job never leaves a
    half-written video under the final name. With `deterministic` (the default) the bytes depend
    only on `frames`, `fps`, `crf` and `preset`: x264's assembly kernels are off, because on CPUs with
    AVX-512 they made identical frames encode differently from run to run (a few milliseconds more
    per small clip). `deterministic=False` keeps them on: several times faster for large frames,
    equally costly to decode.
    """
    import av

    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 of shape (T, H, W, 3), got {frames.dtype} {frames.shape}")
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(f"H.264 with yuv420p needs even sizes, got {height}x{width}")
    path = Path(path)
    tmp_path = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    container = av.open(str(tmp_path), mode="w", format="mp4")
    try:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        # Deterministic output: fixed preset, one thread, no scene-cut heuristics.
        stream.options = {"crf": str(crf), "preset": preset, "threads": "1", "sc_threshold": "0"}
        if deterministic:
            stream.options = {**stream.options, "x264-params": "asm=0"}
        stream.codec_context.thread_count = 1
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    os.replace(tmp_path, path)


def resolve_video_path(video_root: str | os.PathLike, video_id: str, extension: str = ".mp4") -> Path:
    """Path of `<video_root>/<video_id><extension>`, refusing ids that leave `video_root`.

    Raises:
        UnsafePathError: the id is absolute, contains a path separator or `..`, or is empty.
    """
    video_id = str(video_id)
    if not video_id or video_id in {".", ".."} or "/" in video_id or "\\" in video_id or "\x00" in video_id:
        raise UnsafePathError(f"video id {video_id!r} is not a plain file name; refusing to read outside {str(video_root)!r}")
    if ".." in Path(video_id).parts or video_id.startswith(".."):
        raise UnsafePathError(f"video id {video_id!r} contains '..'; refusing to read outside {str(video_root)!r}")
    root = Path(video_root).resolve()
    name = video_id if Path(video_id).suffix.lower() in VIDEO_EXTENSIONS else video_id + extension
    # Checked lexically: a video that the user linked into the root (a symlink to another disk) is theirs to read.
    path = Path(os.path.normpath(root / name))
    if path.parent != root:
        raise UnsafePathError(f"video id {video_id!r} resolves outside {str(root)!r}")
    return path


def resolve_relative_video_path(video_root: str | os.PathLike, relative_path: str | os.PathLike) -> Path:
    """Path of `<video_root>/<relative_path>` (sub-folders allowed, e.g. `videos/a.mp4`), refusing paths that leave
    `video_root`.

    Raises:
        UnsafePathError: the path is empty, absolute, contains `..`, or otherwise leaves `video_root`.
    """
    text = os.fspath(relative_path)
    if not text or "\x00" in text or os.path.isabs(text) or text.startswith(("/", "\\")):
        raise UnsafePathError(f"video path {text!r} is not a relative path; refusing to read outside {str(video_root)!r}")
    if ".." in Path(text.replace("\\", "/")).parts:
        raise UnsafePathError(f"video path {text!r} contains '..'; refusing to read outside {str(video_root)!r}")
    root = Path(video_root).resolve()
    path = Path(os.path.normpath(root / text))  # lexically, as in `resolve_video_path`
    if root not in path.parents:
        raise UnsafePathError(f"video path {text!r} resolves outside {str(root)!r}")
    return path


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__
