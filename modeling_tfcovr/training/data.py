"""Datasets and collators for both training stages.

Stage 1 reads clips (video file + label); frames are decoded and sampled in the dataset (random
segment sampling for training, middle frames for evaluation) and normalised in batches by the
collator through [`TFCoVRVideoProcessor`]. Stage 2 reads triplets as indices into tables of
precomputed video embeddings and cached text features, or as raw videos and texts.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import TFCoVRError
from ..video_io import DEFAULT_VIDEO_BACKEND
from ..video_processing_tfcovr import TFCoVRVideoProcessor, decode_video, segment_frame_indices

logger = logging.getLogger(__name__)


def _sampling_seed() -> int:
    # Drawn from torch's global RNG, which Trainer seeds and restores on resume, so a resumed run
    # samples the same frames as an uninterrupted one.
    return int(torch.randint(0, 2**31 - 1, (1,)).item())


class VideoClipDataset(torch.utils.data.Dataset):
    """Clips with integer labels for stage-1 classification.

    Each item is `{"frames": uint8 (T, H, W, 3), "labels": int}`; [`VideoCollator`] turns a list of
    them into `pixel_values_videos` and `labels`.

    Args:
        video_paths: one video per clip: a file, or a `datasets` `Video` value ([`DatasetVideo`] or torchcodec
            `VideoDecoder`, read with torchcodec).
        labels: class index per clip.
        num_frames: frames sampled per clip.
        training: random frame inside each segment (`True`) or the middle frame (`False`).
        preload: decode every clip fully into memory once (fast epochs for small clips).
        backend: decoder of video files (`"decord"`, `"torchcodec"` or `"pyav"`).
    """

    def __init__(
        self,
        video_paths: Sequence,
        labels: Sequence[int],
        num_frames: int,
        training: bool,
        preload: bool = False,
        backend: str = DEFAULT_VIDEO_BACKEND,
    ):
        if len(video_paths) != len(labels):
            raise ValueError(f"{len(video_paths)} videos but {len(labels)} labels")
        self.video_paths = [os.fspath(p) if isinstance(p, (str, os.PathLike)) else p for p in video_paths]
        self.labels = [int(label) for label in labels]
        self.num_frames = num_frames
        self.training = training
        self.backend = backend
        self._frames: list[np.ndarray] | None = None
        if preload:
            self._frames = [decode_video(path, None, backend)[0] for path in self.video_paths]

    def __len__(self) -> int:
        return len(self.video_paths)

    def _indices(self, total: int) -> np.ndarray:
        if self.training:
            return segment_frame_indices(total, self.num_frames, "random", np.random.default_rng(_sampling_seed()))
        return segment_frame_indices(total, self.num_frames, "middle")

    def _sample_indices(self, metadata) -> np.ndarray:
        return self._indices(metadata.total_num_frames)

    def __getitem__(self, index: int) -> dict:
        if self._frames is not None:
            clip = self._frames[index]
            frames = clip[self._indices(len(clip))]
        else:
            frames, _ = decode_video(self.video_paths[index], self._sample_indices, self.backend)
        return {"frames": frames, "labels": self.labels[index]}


@dataclass
class VideoCollator:
    """Stacks clip items into a batch, normalising frames with the video processor in one call.

    Keys other than `frames` are stacked as tensors (ints become `torch.long`).
    """

    video_processor: TFCoVRVideoProcessor

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        batch = {
            "pixel_values_videos": self.video_processor(
                [item["frames"] for item in items], do_sample_frames=False, return_tensors="pt"
            )["pixel_values_videos"]
        }
        for key in items[0]:
            if key != "frames":
                batch[key] = torch.as_tensor([item[key] for item in items])
        return batch


class EmbeddingTripletDataset(torch.utils.data.Dataset):
    """Stage-2 triplets over precomputed tables: each item holds the query video embedding, the
    cached text feature (or the text's token ids), the target video embedding and the row index.

    Args:
        video_embeds (`torch.Tensor` of shape `(num_videos, embed_dim)`): embeddings by video row.
        query_rows / target_rows: per triplet, the row of its query / target video.
        text_embeds (`torch.Tensor` of shape `(num_texts, text_dim)`, *optional*): cached
            `encode_text` outputs; with `text_rows`, the row of each triplet's text.
        texts: per triplet, the modification text (used when the text encoder trains).
    """

    def __init__(
        self,
        video_embeds: torch.Tensor,
        query_rows: Sequence[int],
        target_rows: Sequence[int],
        text_rows: Sequence[int] | None = None,
        text_embeds: torch.Tensor | None = None,
        texts: Sequence[str] | None = None,
    ):
        if (text_embeds is None) == (texts is None):
            raise ValueError("pass either cached text_embeds (with text_rows) or raw texts")
        self.video_embeds = video_embeds
        self.query_rows = torch.as_tensor(query_rows, dtype=torch.long)
        self.target_rows = torch.as_tensor(target_rows, dtype=torch.long)
        self.text_rows = torch.as_tensor(text_rows, dtype=torch.long) if text_rows is not None else None
        self.text_embeds = text_embeds
        self.texts = list(texts) if texts is not None else None

    def __len__(self) -> int:
        return len(self.query_rows)

    def __getitem__(self, index: int) -> dict:
        item = {
            "query_video_embeds": self.video_embeds[self.query_rows[index]],
            "target_video_embeds": self.video_embeds[self.target_rows[index]],
            "query_index": index,
        }
        if self.text_embeds is not None:
            item["text_embeds"] = self.text_embeds[self.text_rows[index]]
        else:
            item["text"] = self.texts[index]
        return item


class VideoTripletDataset(torch.utils.data.Dataset):
    """Stage-2 triplets from raw videos: query frames, target frames, modification text."""

    def __init__(
        self,
        query_paths: Sequence[str],
        target_paths: Sequence[str],
        texts: Sequence[str],
        num_frames: int,
        training: bool,
        backend: str = DEFAULT_VIDEO_BACKEND,
    ):
        self.query_paths, self.target_paths, self.texts = list(query_paths), list(target_paths), list(texts)
        self.num_frames, self.training, self.backend = num_frames, training, backend

    def __len__(self) -> int:
        return len(self.query_paths)

    def _frames(self, path: str) -> np.ndarray:
        mode = "random" if self.training else "middle"
        rng = np.random.default_rng(_sampling_seed()) if self.training else None
        frames, _ = decode_video(
            path,
            lambda metadata: segment_frame_indices(metadata.total_num_frames, self.num_frames, mode, rng),
            self.backend,
        )
        return frames

    def __getitem__(self, index: int) -> dict:
        return {
            "frames": self._frames(self.query_paths[index]),
            "target_frames": self._frames(self.target_paths[index]),
            "text": self.texts[index],
            "query_index": index,
        }


@dataclass
class TripletCollator:
    """Batches stage-2 items: stacks tensors, tokenises raw `text` with the processor's tokenizer
    (after the official normalisation), normalises raw frames with its video processor."""

    processor: object | None = None

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        batch: dict[str, torch.Tensor] = {}
        for key in items[0]:
            values = [item[key] for item in items]
            if key == "text":
                batch.update(self.processor(text=values))
            elif key in ("frames", "target_frames"):
                pixels = self.processor.video_processor(values, do_sample_frames=False, return_tensors="pt")[
                    "pixel_values_videos"
                ]
                batch["pixel_values_videos" if key == "frames" else "target_pixel_values_videos"] = pixels
            elif isinstance(values[0], torch.Tensor):
                batch[key] = torch.stack(values)
            else:
                batch[key] = torch.as_tensor(values)
        return batch


def rows_for_ids(ids: Sequence[str], table_ids: Sequence[str], what: str) -> list[int]:
    """Row of each id in `table_ids`; a clear error lists the ids that are missing."""
    position = {video_id: row for row, video_id in enumerate(table_ids)}
    missing = [i for i in ids if i not in position]
    if missing:
        raise TFCoVRError(f"{len(set(missing))} {what} have no embedding, e.g. {sorted(set(missing))[:5]}")
    return [position[i] for i in ids]


__all__ = [
    "VideoClipDataset",
    "VideoCollator",
    "EmbeddingTripletDataset",
    "VideoTripletDataset",
    "TripletCollator",
    "rows_for_ids",
]
