"""Video-embedding extraction: run a TF-CoVR video encoder over a set of videos and write the
embeddings dataset (parquet shards of `video_id`, `embedding`).

Shards are written atomically, so a rerun skips finished shards and never mistakes a partial file
for a finished one; videos that fail to decode go to the shard's failures file (one
[`~video_embedding.failure_record`] per line, `index` counted over the whole video list) and the run goes on;
under `torchrun` / `accelerate launch` each process takes every `world_size`-th shard. The embeddings come from
[`~video_embedding.embed_videos`], the package's one ingest path.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data.embeddings import embeddings_schema, write_embeddings_parquet
from ..errors import TFCoVRError
from ..io_utils import atomic_path, atomic_write
from ..video_embedding import embed_videos
from ..video_io import dataset_videos
from ..video_processing_tfcovr import TFCoVRVideoProcessor

logger = logging.getLogger(__name__)

SHARD_PATTERN = "embeddings-{index:05d}-of-{total:05d}.parquet"
FAILURES_PATTERN = "failures-{index:05d}-of-{total:05d}.jsonl"


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
    [`embed_videos`], `num_workers` DataLoader workers decoding).

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
        for failure in failures:  # positions in the whole video list, not in the shard
            failure["index"] += shard * shard_size
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


__all__ = [
    "embed_videos",
    "extract_embeddings",
    "dataset_video_pairs",
    "read_failures",
    "ExtractionSummary",
    "process_share",
    "SHARD_PATTERN",
]
