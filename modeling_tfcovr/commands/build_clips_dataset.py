"""Builds a stage-1 clips dataset (for `train_classifier.py --dataset-dir`) from clips and label tables.

Example:
    python scripts/build_clips_dataset.py --videos clips/ --output stage1-data \
        --split train=train_finegd.csv --split val=val_finegd.csv

Label tables: TF-CoVR's stage-1 table (video_file,label), TF-CoVR's train/val CSVs (query_video/label1,
target_video/label2) or FineGym element lists (`<clip id> <label>` lines). Labels are indexed in the
named label set (default tfcovr-306, the official stage-1 order; `--label-set from-tables` for your own
labels); rows with other labels or without a clip file are left out and listed in <output>/report.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..data.label_sets import LABEL_SETS
from ..preparation.clips_dataset import build_clips_dataset, parse_split_arguments
from . import command_parser


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(__doc__)
    parser.add_argument("--videos", type=Path, required=True, help="folder of clips <clip id>.mp4")
    parser.add_argument("--output", type=Path, required=True, help="dataset folder to write")
    parser.add_argument(
        "--split",
        action="append",
        required=True,
        metavar="SPLIT=FILE",
        help="a label table for a split (repeatable, several files per split are merged)",
    )
    parser.add_argument(
        "--label-set",
        default="tfcovr-306",
        choices=[*sorted(LABEL_SETS), "from-tables"],
        help="label space: a named one (default tfcovr-306, TF-CoVR's stage 1) or from-tables (the "
        "sorted labels found in the tables, for your own videos)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        splits = parse_split_arguments(args.split)
    except ValueError as error:
        parser.error(str(error))
    label_set = None if args.label_set == "from-tables" else args.label_set
    report = build_clips_dataset(args.output, args.videos, splits, label_set)
    print(
        json.dumps(
            {
                split: {k: v for k, v in info.items() if not isinstance(v, list)}
                for split, info in report["splits"].items()
            }
        )
    )
    return 0
