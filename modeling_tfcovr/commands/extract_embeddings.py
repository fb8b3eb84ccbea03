"""Embed a set of videos with a TF-CoVR video encoder into an embeddings dataset.

    python scripts/extract_embeddings.py --model runs/stage1 --videos data/synthetic/videos \
        --output runs/embeddings

`--videos` is a folder of video files (ids = file stems), a text file with one path per line, a
clips/triplets parquet with a `video` or `video_id` column (with `--video-root`), or a `datasets` folder
(`save_to_disk`) with a `Video` column `video` (and `video_id`). `--video-backend` picks the decoder of
files (decord, torchcodec or PyAV); a `Video` column is read with torchcodec. Rerunning skips
finished shards; undecodable videos are listed in `failures-*.jsonl`. Under `torchrun` each
process takes its own shards.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..modeling_tfcovr import load_vision_encoder
from ..training.extract import dataset_video_pairs, extract_embeddings, read_failures
from ..video_io import VIDEO_BACKENDS, VIDEO_EXTENSIONS, resolve_relative_video_path, resolve_video_path
from ..video_processing_tfcovr import TFCoVRVideoProcessor
from . import command_parser, path_or_repo_id


def list_videos(source: str, video_root: str | None = None) -> list[tuple[str, object]]:
    """`(video_id, path)` pairs from a folder, a list file, or a parquet table; `(video_id, DatasetVideo)` pairs
    from a `datasets` folder saved with `save_to_disk`."""
    path = Path(source)
    if path.is_dir() and (path / "dataset_info.json").is_file():
        import datasets

        return dataset_video_pairs(datasets.load_from_disk(str(path)))
    if path.is_dir():
        return [(p.stem, str(p)) for p in sorted(path.iterdir()) if p.suffix.lower() in VIDEO_EXTENSIONS]
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
        root = Path(video_root or path.parent)
        # Paths and ids in a table are data, not trusted: none may lead outside the video root.
        if rows and "video" in rows[0]:
            return sorted({(Path(r["video"]).stem, str(resolve_relative_video_path(root, r["video"]))) for r in rows})
        return sorted({(r["video_id"], str(resolve_video_path(root, r["video_id"]))) for r in rows})
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return [(Path(line).stem, line) for line in lines]


def main(argv: list[str] | None = None) -> dict:
    parser = command_parser(__doc__)
    parser.add_argument(
        "--model",
        required=True,
        type=path_or_repo_id,
        help="TF-CoVR folder or hub id (stage 1 or 2), or a transformers CLIP checkpoint",
    )
    parser.add_argument("--revision", default=None, help="branch, tag or commit of a hub id (default: main)")
    parser.add_argument("--videos", required=True)
    parser.add_argument("--video-root", default=None)
    parser.add_argument("--output", required=True, help="output folder of parquet shards")
    parser.add_argument("--shard-size", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--video-backend",
        choices=VIDEO_BACKENDS,
        default=None,
        help="decoder of video files (default: the model's video processor's, else decord)",
    )
    args = parser.parse_args(argv)

    if torch.cuda.is_available() and "LOCAL_RANK" in __import__("os").environ:
        args.device = f"cuda:{__import__('os').environ['LOCAL_RANK']}"
    encoder = load_vision_encoder(args.model, revision=args.revision).to(args.device)
    try:
        video_processor = TFCoVRVideoProcessor.from_pretrained(args.model, revision=args.revision)
    except (OSError, ValueError):
        size = encoder.config.image_size
        video_processor = TFCoVRVideoProcessor(
            num_frames=encoder.config.num_frames,
            size={"shortest_edge": size},
            crop_size={"height": size, "width": size},
        )
    if args.video_backend:
        video_processor.video_backend = args.video_backend
    videos = list_videos(args.videos, args.video_root)
    summary = extract_embeddings(
        encoder, video_processor, videos, args.output, args.shard_size, args.batch_size, args.num_workers
    )
    result = {**summary.__dict__, "videos": len(videos), "failures_total": len(read_failures(args.output))}
    print(json.dumps(result, indent=2))
    return result
