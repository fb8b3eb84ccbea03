"""Video-embedding extraction: run a TF-CoVR video encoder over a set of videos and write the
embeddings dataset (parquet shards of `video_id`, `embedding`).

Shards are written atomically, so a rerun skips finished shards and never mistakes a partial file
for a finished one; videos that fail to decode go to the shard's failures file and the run goes on;
under `torchrun` / `accelerate launch` each process takes every `world_size`-th shard.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.embeddings import embeddings_schema, write_embeddings_parquet
from ..errors import TFCoVRError
from ..eval_mode import eval_mode
from ..io_utils import atomic_path, atomic_write
from ..video_io import DEFAULT_VIDEO_BACKEND, dataset_videos, read_frames, video_name
from ..video_processing_tfcovr import TFCoVRVideoProcessor, segment_frame_indices, to_rgb_frames

logger = logging.getLogger(__name__)

SHARD_PATTERN = "embeddings-{index:05d}-of-{total:05d}.parquet"
FAILURES_PATTERN = "failures-{index:05d}-of-{total:05d}.jsonl"


class _DecodedVideos(torch.utils.data.Dataset):
    """Decodes each video's frames at the processor's inference sampling; a failure is returned, not raised."""

    def __init__(self, paths: Sequence, num_frames: int, sampling_mode: str = "middle",
                 backend: str = DEFAULT_VIDEO_BACKEND):
        self.paths, self.num_frames, self.sampling_mode, self.backend = list(paths), num_frames, sampling_mode, backend

    def __len__(self) -> int:
        return len(self.paths)

    def _indices(self, total_frames: int) -> np.ndarray:
        return segment_frame_indices(total_frames, self.num_frames, self.sampling_mode)

    def __getitem__(self, index: int) -> tuple[int, np.ndarray | None, str | None]:
        path = self.paths[index]
        try:
            frames = read_frames(path, self._indices, self.backend)
            return index, to_rgb_frames(frames, video_name(path)), None
        except (TFCoVRError, OSError, ValueError, RuntimeError) as error:
            return index, None, str(error)


def _keep_items(items):
    return items


@torch.no_grad()
def embed_videos(
    vision_model: torch.nn.Module,
    video_processor: TFCoVRVideoProcessor,
    video_ids: Sequence[str],
    paths: Sequence,
    batch_size: int = 32,
    num_workers: int = 0,
    progress: bool = False,
) -> tuple[list[str], np.ndarray, list[dict]]:
    """Pooled video embeddings of `paths` (the processor's sampling: middle of each segment, or the official
    extraction's indices with [`official_aim_video_processor`]).

    Args:
        vision_model: a video encoder mapping `pixel_values_videos` `(B, T, 3, H, W)` to an output with
            `pooler_output` `(B, hidden_size)` and with `config.hidden_size`: a [`TFCoVRVisionModel`], or the
            `vision_model` of a [`~modeling_zero_shot.ZeroShotCLIPComposer`].
        video_processor: its video processor (`num_frames` frames per video, decoded with its `video_backend`).
        video_ids / paths: one id and one video per video: a file, a torchcodec `VideoDecoder` or a
            [`DatasetVideo`] (a `datasets` `Video` value; DataLoader workers need these rather than decoders).

    Returns:
        `(ids of the decoded videos, float32 embeddings (N, hidden_size), failures)`, where each
        failure is `{"video_id", "path", "error"}`; the order of `video_ids` is kept.
    """
    from tqdm.auto import tqdm

    device = next(vision_model.parameters()).device
    # "random" is the training mode; extraction always samples deterministically.
    mode = "middle" if video_processor.sampling_mode == "random" else video_processor.sampling_mode
    paths = [os.fspath(p) if isinstance(p, (str, os.PathLike)) else p for p in paths]
    dataset = _DecodedVideos(paths, video_processor.num_frames, mode, video_processor.video_backend)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=_keep_items)
    kept_ids, outputs, failures = [], [], []
    # Evaluation mode for the embeddings, and the encoder's modes restored afterwards (stage 2 may call this on an
    # encoder that is training).
    with eval_mode(vision_model):
        for batch in tqdm(loader, desc="embedding videos", disable=not progress, unit="batch"):
            good = [(index, frames) for index, frames, error in batch if error is None]
            failures += [{"video_id": video_ids[i], "path": video_name(dataset.paths[i]), "error": e}
                         for i, _, e in batch if e is not None]
            if not good:
                continue
            pixels = video_processor([frames for _, frames in good], do_sample_frames=False,
                                     return_tensors="pt")["pixel_values_videos"]
            embeds = vision_model(pixels.to(device=device, dtype=next(vision_model.parameters()).dtype)).pooler_output
            outputs.append(embeds.float().cpu().numpy())
            kept_ids += [video_ids[index] for index, _ in good]
    dim = vision_model.config.hidden_size
    return kept_ids, np.concatenate(outputs) if outputs else np.zeros((0, dim), np.float32), failures


@dataclass
class ExtractionSummary:
    """What one process did: shards written now, shards already there, videos embedded, failures."""

    shards_written: int
    shards_skipped: int
    videos_embedded: int
    failures: int


def dataset_video_pairs(dataset, video_column: str = "video", id_column: str = "video_id") -> list[tuple[str, object]]:
    """`(video_id, video)` pairs of a `datasets.Dataset` with a `Video` column, for [`extract_embeddings`]: ids from
    `id_column` when the dataset has it, else the file stems; videos as [`DatasetVideo`]s (opened when read)."""
    videos = dataset_videos(dataset, video_column)
    if id_column in dataset.column_names:
        ids = [str(video_id) for video_id in dataset[id_column]]
    else:
        ids = [Path(video.path).stem if video.path else f"video_{i}" for i, video in enumerate(videos)]
    return list(zip(ids, videos))


def process_share(num_shards: int) -> list[int]:
    """Shard indices of this process under torchrun / accelerate (`RANK`, `WORLD_SIZE`)."""
    rank, world_size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    return list(range(rank, num_shards, world_size))


def extract_embeddings(
    vision_model: torch.nn.Module,
    video_processor: TFCoVRVideoProcessor,
    videos,
    output_dir: str | os.PathLike,
    shard_size: int = 1024,
    batch_size: int = 32,
    num_workers: int = 0,
    progress: bool = True,
) -> ExtractionSummary:
    """Embeds `videos` (`(video_id, path)` pairs, or a `datasets.Dataset` with a `Video` column `video` and
    optionally `video_id`) into parquet shards in `output_dir`, with the video encoder `vision_model` (as in
    [`embed_videos`]).

    The shard layout depends only on the video list and `shard_size`, so a rerun with the same
    arguments finds the finished shards and skips them.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if hasattr(videos, "column_names"):
        videos = dataset_video_pairs(videos)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    ids = [video_id for video_id, _ in videos]
    if len(set(ids)) != len(ids):
        duplicates = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise TFCoVRError(f"video ids must be unique; repeated: {duplicates}")
    num_shards = max(1, -(-len(videos) // shard_size))
    written = skipped = embedded = failed = 0
    for shard in process_share(num_shards):
        shard_path = output_dir / SHARD_PATTERN.format(index=shard, total=num_shards)
        failures_path = output_dir / FAILURES_PATTERN.format(index=shard, total=num_shards)
        if shard_path.exists():
            skipped += 1
            continue
        part = videos[shard * shard_size : (shard + 1) * shard_size]
        kept, embeds, failures = embed_videos(
            vision_model, video_processor, [v for v, _ in part], [p for _, p in part], batch_size, num_workers, progress
        )
        # Failures first: the shard file is the marker of a finished shard.
        with atomic_write(failures_path, "w") as handle:
            handle.write("".join(json.dumps(f) + "\n" for f in failures))
        if kept:
            write_embeddings_parquet(shard_path, kept, embeds)
        else:
            with atomic_path(shard_path) as tmp:
                pq.write_table(pa.Table.from_pylist([], schema=embeddings_schema(vision_model.config.hidden_size)), tmp)
        written, embedded, failed = written + 1, embedded + len(kept), failed + len(failures)
        for failure in failures:
            logger.warning("skipped %s: %s", failure["video_id"], failure["error"])
    return ExtractionSummary(written, skipped, embedded, failed)


def read_failures(output_dir: str | os.PathLike) -> list[dict]:
    """All failure records of an extraction folder."""
    records = []
    for path in sorted(Path(output_dir).glob("failures-*.jsonl")):
        records += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return records


__all__ = ["embed_videos", "extract_embeddings", "dataset_video_pairs", "read_failures", "ExtractionSummary", "process_share", "SHARD_PATTERN"]
