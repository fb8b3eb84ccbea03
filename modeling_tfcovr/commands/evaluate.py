"""Evaluate composed video retrieval on a triplets split: TF-CoVR and the baselines that show what
composition adds (text only, query video only, average of both).

    tfcovr evaluate --model runs/stage2 --triplets data/synthetic --split test \
        --video-root data/synthetic/videos --output-dir runs/eval

Video embeddings come from `--embeddings` (an embeddings dataset, e.g. the released TF-CoVR
embeddings converted with scripts/convert_embeddings.py) or are computed from `--video-root` with
the model's video encoder. Two protocols are scored: `official` (the official TF-CoVR test's gallery of one
entry per row's target video, duplicates kept, and its counting: the numbers comparable with the paper) and
`unique` (every valid target once, the query's own video never returned). `--gallery` (an embeddings dataset)
replaces the unique gallery and skips the official protocol. Writes metrics.json (`results`: unique,
`official.results`: official) and predictions.jsonl and prints both tables.

Zero-shot (the paper's protocol) from any transformers CLIP checkpoint: frame-averaged image
features composed with the text features by sum or average:

    tfcovr evaluate --zero-shot-clip openai/clip-vit-base-patch16 --triplets ... \
        --video-root ... --output-dir runs/zero-shot
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from .. import TFCoVRModel, TFCoVRProcessor
from ..data.embeddings import read_embeddings
from ..retrieval_evaluation import evaluate_split, format_results_table, load_triplet_split
from ..video_embedding import embed_videos
from ..video_io import VIDEO_BACKENDS, resolve_video_path
from . import command_parser, path_or_repo_id, positive_ints


def load_model(args):
    """The TF-CoVR model and processor, or a zero-shot CLIP composer with a CLIP tokenizer."""
    if args.model:
        model = TFCoVRModel.from_pretrained(args.model, revision=args.revision).eval()
        return model, TFCoVRProcessor.from_pretrained(args.model, revision=args.revision)
    from transformers import AutoTokenizer

    from .. import TFCoVRVideoProcessor
    from ..modeling_zero_shot import ZeroShotCLIPComposer

    composer = ZeroShotCLIPComposer.from_pretrained(
        args.zero_shot_clip, mode=args.zero_shot_mode, revision=args.revision
    )
    size = composer.clip_model.config.vision_config.image_size
    video_processor = TFCoVRVideoProcessor(
        num_frames=args.num_frames, size={"shortest_edge": size}, crop_size={"height": size, "width": size}
    )
    return composer, TFCoVRProcessor(
        video_processor, AutoTokenizer.from_pretrained(args.zero_shot_clip, revision=args.revision)
    )


def main(argv: list[str] | None = None) -> dict:
    parser = command_parser(__doc__)
    parser.add_argument("--model", type=path_or_repo_id, help="a TFCoVRModel folder or hub id (from_pretrained)")
    parser.add_argument("--revision", default=None, help="branch, tag or commit of --model / --zero-shot-clip hub ids")
    parser.add_argument(
        "--triplets-revision", default=None, help="branch, tag or commit of a --triplets hub dataset id"
    )
    parser.add_argument(
        "--zero-shot-clip",
        type=path_or_repo_id,
        help="evaluate a transformers CLIP checkpoint zero-shot instead of --model",
    )
    parser.add_argument("--zero-shot-mode", default="sum", choices=["sum", "avg"])
    parser.add_argument("--num-frames", type=int, default=12, help="frames per clip for --zero-shot-clip")
    parser.add_argument("--triplets", required=True, help="triplets dataset folder, parquet file or hub dataset id")
    parser.add_argument("--split", default="test")
    parser.add_argument("--embeddings", help="embeddings dataset with the query and gallery videos")
    parser.add_argument("--video-root", help="folder of <video_id>.mp4, to compute the embeddings")
    parser.add_argument(
        "--video-backend",
        choices=VIDEO_BACKENDS,
        default=None,
        help="decoder of --video-root's files (default: the model's video processor's, else decord)",
    )
    parser.add_argument("--gallery", help="embeddings dataset to use as the gallery instead of the split's targets")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--k", type=positive_ints, default="5,10,25,50", help="comma-separated K values")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-queries", type=int)
    args = parser.parse_args(argv)
    if (args.embeddings is None) == (args.video_root is None):
        parser.error("pass exactly one of --embeddings and --video-root")
    if (args.model is None) == (args.zero_shot_clip is None):
        parser.error("pass exactly one of --model and --zero-shot-clip")

    start = time.perf_counter()
    k_values = args.k
    # The split first: a split that does not exist is reported before the model is loaded.
    split = load_triplet_split(args.triplets, args.split, revision=args.triplets_revision)
    model, processor = load_model(args)
    if args.video_backend:
        processor.video_processor.video_backend = args.video_backend
    if args.max_queries:
        split = split.subset(args.max_queries)

    gallery_ids = None
    failures: list[dict] = []
    if args.embeddings:
        video_ids, video_embeds = read_embeddings(args.embeddings, expected_dim=model.config.embed_dim)
    else:
        wanted = sorted(set(split.query_videos) | set(split.gallery_ids()))
        paths = [str(resolve_video_path(args.video_root, video_id)) for video_id in wanted]
        video_ids, video_embeds, failures = embed_videos(
            model.vision_model, processor.video_processor, wanted, paths, batch_size=args.batch_size, progress=True
        )
    if args.gallery:
        gallery_ids, gallery_embeds = read_embeddings(args.gallery, expected_dim=model.config.embed_dim)
        known = set(video_ids)
        extra = [i for i, g in enumerate(gallery_ids) if g not in known]
        video_ids = list(video_ids) + [gallery_ids[i] for i in extra]
        video_embeds = torch.cat([torch.as_tensor(video_embeds), torch.as_tensor(gallery_embeds[extra])]).numpy()

    report, predictions = evaluate_split(
        model, processor, split, video_ids, video_embeds, gallery_ids, k_values=k_values
    )
    if args.zero_shot_clip:  # the composed row is CLIP's zero-shot composition, not TF-CoVR
        for section in (report, report.get("official", {})):
            if "results" in section:
                section["results"] = {
                    (f"zero_shot_{args.zero_shot_mode}" if k == "tfcovr" else k): v
                    for k, v in section["results"].items()
                }
    report.update(
        model=str(args.model or args.zero_shot_clip),
        data={
            "triplets": str(args.triplets),
            "split": args.split,
            "embeddings": args.embeddings,
            "video_root": args.video_root,
            "gallery": args.gallery or "split targets",
        },
        decode_failures=failures,
        seconds=round(time.perf_counter() - start, 2),
    )
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    (output / "metrics.json").write_text(json.dumps(report, indent=2))
    with open(output / "predictions.jsonl", "w", encoding="utf-8") as handle:
        for record in predictions["tfcovr"]:
            handle.write(json.dumps(record) + "\n")
    if "official" in report:
        official = report["official"]
        print(
            f"Official protocol (comparable with the paper): gallery of {official['gallery_size']} rows' target videos "
            f"({official['distinct_gallery_videos']} distinct)"
        )
        print(format_results_table(official["results"], k_values))
    print(f"Unique protocol: gallery of {report['gallery_size']} distinct valid targets, own video excluded")
    print(format_results_table(report["results"], k_values))
    print(
        f"{report['num_queries']} queries"
        + (f", {report['skipped_queries']} queries skipped (no video embedding)" if report["skipped_queries"] else "")
    )
    return report
