"""Cuts TF-CoVR's FineGym sub-action clips from the raw FineGym videos.

Example:
    python scripts/prepare_finegym.py --annotations finegym_annotation_info_v1.1.json --videos raw/ \
        --output clips/ --workers 8 --only-ids train_finegd.csv val_finegd.csv test_finegd.csv

Each clip `<youtube_id>_<E key>_<A key>.mp4` holds the frames from its first stage's start to its
last stage's end (seconds relative to its event), decoded and re-encoded (H.264, source frame rate,
no audio). Rerunning skips finished clips; clips that cannot be made are listed with the reason in
`<output>/failures.jsonl`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..preparation.finegym import prepare_finegym
from ..preparation.jobs import FAILURES_FILE, add_job_arguments, job_options
from . import command_parser


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(__doc__)
    parser.add_argument("--annotations", type=Path, required=True, help="finegym_annotation_info_v1.1.json")
    parser.add_argument("--videos", type=Path, required=True, help="folder of raw videos <youtube_id>.<ext>")
    parser.add_argument("--output", type=Path, required=True, help="folder the clips are written to")
    parser.add_argument(
        "--event-clips", action="store_true", help="also write the event clips <youtube_id>_<E key>.mp4"
    )
    add_job_arguments(parser, "cut")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    summary = prepare_finegym(
        args.annotations, args.videos, args.output, event_clips=args.event_clips, **job_options(parser, args)
    )
    print(json.dumps({**summary.as_dict(), "failures": str(args.output / FAILURES_FILE)}))
    return 0
