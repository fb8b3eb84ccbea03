"""Builds the synthetic gym: rendered clips, TF-CoVR-style triplets, clip tables and a dataset card.

Example:
    python scripts/build_synthetic.py --output synthetic_gym --seed 0
    python scripts/build_synthetic.py --output synthetic_gym_64 --size 64 --rotations 0.5..3
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from ..data.synthetic import SyntheticConfig, build_synthetic_benchmark
from . import command_parser


def parse_rotations(text: str) -> tuple[float, ...]:
    """`"1,2,3"` -> (1.0, 2.0, 3.0); `"0.5..3"` -> every half turn from 0.5 to 3 inclusive."""
    if ".." in text:
        low, high = (float(part) for part in text.split("..", 1))
        count = round((high - low) * 2) + 1
        if count < 1:
            raise argparse.ArgumentTypeError(f"empty rotation range {text!r}")
        return tuple(low + 0.5 * step for step in range(count))
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"rotations must be numbers like '1,2,3' or a range like '0.5..3', got {text!r}"
        ) from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def build_parser() -> argparse.ArgumentParser:
    defaults = SyntheticConfig()
    parser = command_parser(__doc__)
    parser.add_argument("--output", required=True, type=Path, help="directory to write the dataset to")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed -> identical dataset)")
    parser.add_argument("--size", type=int, default=defaults.size, help="frame height and width in pixels (even)")
    parser.add_argument("--frames", type=int, default=defaults.num_frames, help="frames per clip")
    parser.add_argument("--fps", type=int, default=defaults.fps, help="frame rate written in the mp4 files")
    parser.add_argument(
        "--apparatus", type=_names, default=defaults.apparatus, help="comma list among floor,beam,vault,water"
    )
    parser.add_argument("--elements", type=_names, default=defaults.elements, help="comma list among salto,turn")
    parser.add_argument(
        "--rotations",
        type=parse_rotations,
        default=defaults.rotations,
        help="e.g. '1,2,3' or '0.5..3' (half-turn steps)",
    )
    parser.add_argument("--directions", type=_names, default=defaults.directions, help="comma list among cw,ccw")
    for split in ("train", "val", "test"):
        parser.add_argument(f"--{split}-clips-per-label", type=int, default=defaults.clips_per_label(split))
        parser.add_argument(f"--{split}-triplets-per-query", type=int, default=defaults.triplets_per_query(split))
    parser.add_argument("--two-change-probability", type=float, default=defaults.two_change_probability)
    parser.add_argument(
        "--body-scale", type=float, default=defaults.body_scale, help="body size relative to the base size"
    )
    parser.add_argument("--quiet", action="store_true", help="print only errors")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    try:
        config = SyntheticConfig(
            size=args.size,
            num_frames=args.frames,
            fps=args.fps,
            apparatus=args.apparatus,
            elements=args.elements,
            rotations=args.rotations,
            directions=args.directions,
            train_clips_per_label=args.train_clips_per_label,
            val_clips_per_label=args.val_clips_per_label,
            test_clips_per_label=args.test_clips_per_label,
            train_triplets_per_query=args.train_triplets_per_query,
            val_triplets_per_query=args.val_triplets_per_query,
            test_triplets_per_query=args.test_triplets_per_query,
            two_change_probability=args.two_change_probability,
            body_scale=args.body_scale,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    stats = build_synthetic_benchmark(args.output, seed=args.seed, config=config)
    elapsed = time.perf_counter() - start
    if not args.quiet:
        for split, split_stats in stats["splits"].items():
            targets = split_stats["targets_per_query"]
            print(
                f"{split}: {split_stats['clips']} clips, {split_stats['triplets']} triplets, targets per query "
                f"mean {targets['mean']:g} min {targets['min']} max {targets['max']}"
            )
        print(f"built {args.output} ({stats['num_labels']} labels) in {elapsed:.1f} s")
    return 0
