"""Video embeddings of a list of videos: the one ingest path of the package.

[`embed_videos`] decodes and samples every video with the video processor ([`TFCoVRVideoProcessor.load_frames`]:
its `fetch_videos` and `sample_frames`), in DataLoader workers when `num_workers > 0`, turns each batch into pixels
with the processor, and runs the video encoder over it. `pipe.index`, the extraction (`extract_embeddings`), the
stage-2 galleries, the `evaluate` command and the web app embed videos through it.

A video that cannot be read does not stop the run; it gets a failure record (see [`failure_record`]):

    {"index": 3, "video_id": "clip_3", "video": "/data/clip_3.mp4", "path": "/data/clip_3.mp4",
     "error": "VideoDecodeError: cannot decode video '/data/clip_3.mp4': file does not exist"}

This module imports only modules of its own folder, so it travels with a saved model as remote code.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from .errors import TFCoVRError
from .eval_mode import eval_mode
from .video_io import is_video_file_input, video_name, video_path

if TYPE_CHECKING:
    from .video_processing_tfcovr import TFCoVRVideoProcessor

# What a video that cannot be read raises (a `TypeError` for an unsupported input is a caller's mistake: it is raised).
DECODE_ERRORS = (TFCoVRError, OSError, ValueError, RuntimeError)


def failure_record(index: int, video_id: str, video: object, error: BaseException | str) -> dict:
    """The record of a video that could not be embedded, the same in every caller of [`embed_videos`].

    Keys: `index` (its position in the caller's list of videos), `video_id`, `video` (its name: the path, or
    `<array 3>` for frames given as an array), `path` (its file, `None` for frames) and `error`
    (`"<exception type>: <message>"`, e.g. `"VideoDecodeError: cannot decode video 'a.mp4': file does not exist"`).
    """
    if isinstance(error, BaseException):
        error = f"{type(error).__name__}: {error}"
    name = video_name(video) if is_video_file_input(video) else f"<array {index}>"
    return {"index": index, "video_id": video_id, "video": name, "path": video_path(video), "error": error}


class _SampledVideos(torch.utils.data.Dataset):
    """Each video decoded and sampled by the processor; a video that cannot be read gives its error, not frames."""

    def __init__(self, videos: Sequence, video_processor: TFCoVRVideoProcessor, sampling_mode: str):
        self.videos, self.video_processor, self.sampling_mode = videos, video_processor, sampling_mode

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> tuple[int, np.ndarray | None, str | None]:
        try:
            frames, _ = self.video_processor.load_frames([self.videos[index]], sampling_mode=self.sampling_mode)
            return index, frames[0], None
        except DECODE_ERRORS as error:
            return index, None, f"{type(error).__name__}: {error}"


@dataclass
class _PixelBatch:
    """Collates sampled videos into `(positions, pixel_values_videos or None, [(position, error)])`, in the worker."""

    video_processor: TFCoVRVideoProcessor

    def __call__(self, items: list) -> tuple[list[int], torch.Tensor | None, list[tuple[int, str]]]:
        decoded = [(index, frames) for index, frames, error in items if error is None]
        failed = [(index, error) for index, _, error in items if error is not None]
        if not decoded:
            return [], None, failed
        pixels = self.video_processor([frames for _, frames in decoded], do_sample_frames=False, return_tensors="pt")[
            "pixel_values_videos"
        ]
        return [index for index, _ in decoded], pixels, failed


@torch.no_grad()
def embed_videos(
    vision_model: torch.nn.Module,
    video_processor: TFCoVRVideoProcessor,
    video_ids: Sequence[str],
    videos: Sequence,
    batch_size: int = 32,
    num_workers: int = 0,
    progress: bool = False,
) -> tuple[list[str], np.ndarray, list[dict]]:
    """Pooled video embeddings of `videos`, `batch_size` at a time, decoded by `num_workers` DataLoader workers (in
    this process when 0).

    Frames are sampled by the processor's `sample_frames`, deterministically: its `"random"` (training) mode samples
    the middle of each segment here; `"middle"` and `"official"` are kept.

    Args:
        vision_model: a video encoder mapping `pixel_values_videos` `(B, T, 3, H, W)` to an output with
            `pooler_output` `(B, hidden_size)` and with `config.hidden_size`: a [`TFCoVRVisionModel`], the
            `vision_model` of a [`TFCoVRModel`], or that of a [`ZeroShotCLIPComposer`]. It runs in evaluation mode
            (its modes are restored afterwards).
        video_processor: its video processor (`num_frames` frames per video, decoded with its `video_backend`).
        video_ids: one id per video.
        videos: files, torchcodec `VideoDecoder`s, [`DatasetVideo`]s (a `datasets` `Video` value; DataLoader workers
            need these rather than open decoders), frame arrays `(T, H, W, 3)` or lists of PIL images.

    Returns:
        `(ids of the embedded videos, float32 embeddings (N, hidden_size), failures)`, in the order of `videos`; each
        failure is a [`failure_record`].
    """
    from tqdm.auto import tqdm

    if len(video_ids) != len(videos):
        raise ValueError(f"{len(videos)} videos but {len(video_ids)} video ids")
    parameter = next(vision_model.parameters())
    mode = "middle" if video_processor.sampling_mode == "random" else video_processor.sampling_mode
    videos = [os.fspath(video) if isinstance(video, os.PathLike) else video for video in videos]
    loader = torch.utils.data.DataLoader(
        _SampledVideos(videos, video_processor, mode),
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=_PixelBatch(video_processor),
    )
    kept_ids, outputs, failures = [], [], []
    with eval_mode(vision_model):
        for positions, pixels, failed in tqdm(loader, desc="embedding videos", disable=not progress, unit="batch"):
            failures += [failure_record(index, video_ids[index], videos[index], error) for index, error in failed]
            if pixels is None:
                continue
            embeds = vision_model(pixels.to(device=parameter.device, dtype=parameter.dtype)).pooler_output
            outputs.append(embeds.float().cpu().numpy())
            kept_ids += [video_ids[index] for index in positions]
    dim = vision_model.config.hidden_size
    return kept_ids, np.concatenate(outputs) if outputs else np.zeros((0, dim), np.float32), failures


__all__ = ["DECODE_ERRORS", "embed_videos", "failure_record"]
