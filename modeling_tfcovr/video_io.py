"""Reading and writing video files.

Three decoders read videos, chosen with `backend`: decord (the default: what the official code and most video
models use), torchcodec (the decoder of transformers v5 and of the `datasets` `Video` feature) and PyAV. All three
return the same frame count, the same frame indices and, on H.264 files, the same pixels; a file that is missing,
empty, not a video or truncated raises the same `VideoDecodeError` naming the file in every backend. A torchcodec
`VideoDecoder` (what a `datasets` `Video` column holds) is read with torchcodec itself. Writing H.264 mp4 files goes
through PyAV, which ships its own FFmpeg build.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UnsafePathError, VideoDecodeError
from .io_utils import atomic_path

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm")
VIDEO_BACKENDS = ("decord", "torchcodec", "pyav")
DEFAULT_VIDEO_BACKEND = "decord"

Indices = Sequence[int] | Callable[[int], Sequence[int]] | None
# FFmpeg opens a single picture as a one-frame video; decord refuses it, and so do the other backends.
_STILL_IMAGE_CODECS = {"png", "mjpeg", "bmp", "tiff", "webp", "jpeg2000", "jpegls", "ppm", "pgm", "pbm", "pam", "qoi"}


def check_video_backend(backend: str) -> str:
    """Returns `backend` if it names a decoder of [`VIDEO_BACKENDS`]; raises `ValueError` otherwise."""
    if backend not in VIDEO_BACKENDS:
        raise ValueError(f"unknown video backend {backend!r}; choose one of {', '.join(VIDEO_BACKENDS)}")
    return backend


def is_video_decoder(video: object) -> bool:
    """Whether `video` is a torchcodec `VideoDecoder` (checked without importing torchcodec)."""
    return type(video).__module__.startswith("torchcodec.") and hasattr(video, "get_frames_at")


@dataclass(frozen=True)
class DatasetVideo:
    """One value of a `datasets` `Video` column, kept encoded (`path` and/or `bytes`) until its frames are read.

    Unlike the `VideoDecoder` that indexing the column returns, it holds no open file and can be sent to DataLoader
    workers; reading it opens a decoder through the column's feature (torchcodec, with the feature's options).
    """

    path: str | None
    bytes: bytes | None = None
    feature: Any = None

    def __str__(self) -> str:
        return self.path or "<video bytes>"

    def open(self):
        """The torchcodec `VideoDecoder` of this video (raises `VideoDecodeError` if it cannot be opened)."""
        if self.bytes is None and self.path and "://" not in self.path and "::" not in self.path:
            _check_file(self.path)
        feature = self.feature
        if feature is None:
            from datasets import Video

            feature = Video()
        try:
            return feature.decode_example({"path": self.path, "bytes": self.bytes})
        except ImportError:
            raise
        except Exception as error:
            raise VideoDecodeError(str(self), f"not a readable video ({_first_line(error)})") from None


def is_dataset_video(video: object) -> bool:
    """Whether `video` is a [`DatasetVideo`], by name: a model saved with its code may load a second copy of this
    module (remote code) beside the package's."""
    return type(video).__name__ == "DatasetVideo" and hasattr(video, "open")


def dataset_videos(dataset, column: str = "video") -> list[DatasetVideo]:
    """The values of `dataset[column]`, a `datasets` `Video` column, as [`DatasetVideo`]s, without opening any."""
    from datasets import Video

    feature = dataset.features[column]
    if not isinstance(feature, Video):
        raise TypeError(f"column {column!r} is a {type(feature).__name__}, not a datasets Video feature")
    raw = dataset.cast_column(column, Video(decode=False))[column]
    return [
        DatasetVideo(value["path"], value["bytes"], feature) if value is not None else DatasetVideo(None)
        for value in raw
    ]


def video_name(video: object) -> str:
    """What error messages and galleries call `video`: its path, or the path a decoder was opened from."""
    if isinstance(video, (str, os.PathLike)):
        return os.fspath(video)
    if is_dataset_video(video):
        return str(video)
    if is_video_decoder(video):
        return str(getattr(video.metadata, "path", None) or "<torchcodec VideoDecoder>")
    return f"<{type(video).__name__}>"


def video_path(video: object) -> str | None:
    """The file a video input stands for (a path, a [`DatasetVideo`]'s path, a decoder's path), or `None`."""
    if isinstance(video, (str, os.PathLike)):
        return os.fspath(video)
    if is_dataset_video(video):
        return video.path
    if is_video_decoder(video):
        return getattr(video.metadata, "path", None)
    return None


def is_video_file_input(video: object) -> bool:
    """Whether `video` is read by [`read_frames`]: a path, a torchcodec `VideoDecoder` or a [`DatasetVideo`]."""
    return isinstance(video, (str, os.PathLike)) or is_dataset_video(video) or is_video_decoder(video)


def open_video(path: str | os.PathLike):
    """Opens `path` with decord and returns the `VideoReader`.

    Raises:
        VideoDecodeError: the file is missing, empty, not a video, or has no frames.
    """
    import decord

    path = _check_file(path)
    try:
        reader = decord.VideoReader(path, num_threads=1)
    except Exception as error:  # decord raises its own DECORDError, or RuntimeError
        raise VideoDecodeError(path, f"not a readable video ({_first_line(error)})") from None
    if len(reader) == 0:
        raise VideoDecodeError(path, "video has no frames")
    return reader


def read_frames(video, indices: Indices = None, backend: str = DEFAULT_VIDEO_BACKEND) -> np.ndarray:
    """Decodes frames of a video as a uint8 array of shape (T, H, W, 3), RGB.

    Args:
        video: a video file; or a torchcodec `VideoDecoder` / [`DatasetVideo`] (a `datasets` `Video` value), read
            with torchcodec whatever `backend` says.
        indices: frame indices to decode (any order, repeats allowed), or a function of the video's frame count that
            returns them (the file is opened once); all frames when `None`.
        backend: `"decord"`, `"torchcodec"` or `"pyav"`.

    Raises:
        VideoDecodeError: naming the file: it is missing, empty, not a video, has no frames, an index is out of
            range, or decoding failed (a truncated file).
    """
    check_video_backend(backend)
    if is_dataset_video(video):
        return _read_decoder(video.open(), indices, str(video))
    if is_video_decoder(video):
        return _read_decoder(video, indices, video_name(video))
    path = _check_file(video)
    return _READERS[backend](path, indices)


def count_frames(video, backend: str = DEFAULT_VIDEO_BACKEND) -> int:
    """Number of frames `backend` reports for `video` (the same in every backend for mp4, mkv, webm and avi files)."""
    counted: list[int] = []
    read_frames(video, lambda total: counted.append(total) or [], backend)
    return counted[0]


def _read_decord(path: str, indices: Indices) -> np.ndarray:
    # decord's count is the container's frame count, or duration x frame rate where the container has none (mkv, webm).
    reader = open_video(path)
    indices = _resolve_indices(path, indices, len(reader))
    if not indices:
        return np.zeros((0, 0, 0, 3), np.uint8)
    try:
        frames = reader.get_batch(indices).asnumpy()
    except Exception as error:
        if "size must exactly match" not in str(error):
            raise VideoDecodeError(path, f"decoding failed, the file may be truncated ({_first_line(error)})") from None
        # decord cannot copy frames whose rows it pads (some widths that are not a multiple of 32).
        frames = _decode_sequentially(path, indices)
    return _checked(path, frames, len(indices))


def _read_torchcodec(path: str, indices: Indices) -> np.ndarray:
    try:
        from torchcodec.decoders import VideoDecoder
    except ImportError as error:
        raise ImportError(
            "the torchcodec backend needs `pip install torchcodec` (and FFmpeg's shared libraries)"
        ) from error
    try:
        decoder = VideoDecoder(path, dimension_order="NHWC", num_ffmpeg_threads=1, seek_mode="exact")
    except Exception as error:  # torchcodec raises RuntimeError or ValueError
        raise VideoDecodeError(path, f"not a readable video ({_first_line(error)})") from None
    return _read_decoder(decoder, indices, path)


def _read_decoder(decoder, indices: Indices, name: str) -> np.ndarray:
    """Frames of an open torchcodec `VideoDecoder` (either dimension order), as (T, H, W, 3) uint8."""
    metadata = decoder.metadata
    if metadata.codec in _STILL_IMAGE_CODECS and metadata.duration_seconds_from_header is None:
        raise VideoDecodeError(name, f"not a readable video (a still {metadata.codec} image)")
    total = int(metadata.num_frames or 0)
    if total == 0:
        raise VideoDecodeError(name, "video has no frames")
    indices = _resolve_indices(name, indices, total)
    if not indices:
        return np.zeros((0, 0, 0, 3), np.uint8)
    try:
        frames = decoder.get_frames_at(indices).data.numpy()
    except Exception as error:
        raise VideoDecodeError(name, f"decoding failed, the file may be truncated ({_first_line(error)})") from None
    if frames.ndim == 4 and frames.shape[1:] == (3, metadata.height, metadata.width):
        frames = frames.transpose(0, 2, 3, 1)  # a decoder opened with dimension_order="NCHW", as datasets does
    return _checked(name, np.ascontiguousarray(frames), len(indices))


def _read_pyav(path: str, indices: Indices) -> np.ndarray:
    total = _pyav_frame_count(path)
    indices = _resolve_indices(path, indices, total)
    if not indices:
        return np.zeros((0, 0, 0, 3), np.uint8)
    return _checked(path, _decode_sequentially(path, indices), len(indices))


def _pyav_frame_count(path: str) -> int:
    """The container's frame count, or the number of video packets where it has none (as torchcodec counts)."""
    import av

    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise VideoDecodeError(path, "not a readable video (the file has no video stream)")
            if container.format.name.endswith("_pipe") or container.format.name == "image2":
                codec = container.streams.video[0].codec_context.name
                raise VideoDecodeError(path, f"not a readable video (a still {codec} image)")
            stream = container.streams.video[0]
            total = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
    except VideoDecodeError:
        raise
    except Exception as error:  # av.error.FFmpegError and its subclasses, or OSError
        raise VideoDecodeError(path, f"not a readable video ({_first_line(error)})") from None
    if total == 0:
        raise VideoDecodeError(path, "video has no frames")
    return total


def _decode_sequentially(path: str, indices: list[int]) -> np.ndarray:
    """Decodes the frames at `indices` with PyAV, from the first frame on, stopping after the last one wanted."""
    import av

    wanted = set(indices)
    last = max(indices)
    found: dict[int, np.ndarray] = {}
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_count = 1
            for index, frame in enumerate(container.decode(stream)):
                if index in wanted:
                    found[index] = frame.to_ndarray(format="rgb24")
                if index >= last:
                    break
    except Exception as error:
        raise VideoDecodeError(path, f"decoding failed, the file may be truncated ({_first_line(error)})") from None
    missing = [i for i in sorted(wanted) if i not in found]
    if missing:
        raise VideoDecodeError(path, f"frame {missing[0]} could not be decoded; the file may be truncated")
    return np.stack([found[i] for i in indices])


_READERS = {"decord": _read_decord, "torchcodec": _read_torchcodec, "pyav": _read_pyav}


def _check_file(path: str | os.PathLike) -> str:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise VideoDecodeError(path, "file does not exist")
    if os.path.isdir(path):
        raise VideoDecodeError(path, "is a directory, not a video file")
    if os.path.getsize(path) == 0:
        raise VideoDecodeError(path, "file is empty (0 bytes)")
    return path


def _resolve_indices(name: str, indices: Indices, total: int) -> list[int]:
    if callable(indices):
        indices = indices(total)
    if indices is None:
        indices = range(total)
    indices = [int(i) for i in indices]
    bad = [i for i in indices if not 0 <= i < total]
    if bad:
        raise VideoDecodeError(name, f"frame index {bad[0]} out of range for {total} frames")
    return indices


def _checked(name: str, frames: np.ndarray, count: int) -> np.ndarray:
    if frames.ndim != 4 or frames.shape[0] != count:
        raise VideoDecodeError(name, f"decoder returned frames of shape {frames.shape}")
    return frames


def write_mp4(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: int = 16,
    crf: int = 18,
    preset: str = "veryfast",
    deterministic: bool = True,
) -> None:
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
    with atomic_path(path) as tmp_path:
        _encode_mp4(av, tmp_path, frames, fps, crf, preset, deterministic)


def _encode_mp4(
    av: Any, tmp_path: Path, frames: np.ndarray, fps: int, crf: int, preset: str, deterministic: bool
) -> None:
    height, width = frames.shape[1:3]
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


def resolve_video_path(video_root: str | os.PathLike, video_id: str, extension: str = ".mp4") -> Path:
    """Path of `<video_root>/<video_id><extension>`, refusing ids that leave `video_root`.

    Raises:
        UnsafePathError: the id is absolute, contains a path separator or `..`, or is empty.
    """
    video_id = str(video_id)
    if not video_id or video_id in {".", ".."} or "/" in video_id or "\\" in video_id or "\x00" in video_id:
        raise UnsafePathError(
            f"video id {video_id!r} is not a plain file name; refusing to read outside {str(video_root)!r}"
        )
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
        raise UnsafePathError(
            f"video path {text!r} is not a relative path; refusing to read outside {str(video_root)!r}"
        )
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
