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
import sys
from pathlib import Path

from ..preparation.finegym import prepare_finegym
from ..preparation.jobs import FAILURES_FILE, parse_shard, read_id_list
from . import run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotations", type=Path, required=True, help="finegym_annotation_info_v1.1.json")
    parser.add_argument("--videos", type=Path, required=True, help="folder of raw videos <youtube_id>.<ext>")
    parser.add_argument("--output", type=Path, required=True, help="folder the clips are written to")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--only-ids", type=Path, nargs="+", default=None,
                        help="cut only these clips: text files of ids (one a line) or TF-CoVR CSVs / stage-1 tables")
    parser.add_argument("--event-clips", action="store_true", help="also write the event clips <youtube_id>_<E key>.mp4")
    parser.add_argument("--shard", default=None, metavar="I/N",
                        help="only the I-th of N disjoint parts (0 <= I < N), e.g. one per machine")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        shard = parse_shard(args.shard)
    except ValueError as error:
        parser.error(str(error))
    only_ids = set().union(*(read_id_list(path) for path in args.only_ids)) if args.only_ids else None
    summary = prepare_finegym(args.annotations, args.videos, args.output, workers=args.workers, only_ids=only_ids,
                              event_clips=args.event_clips, progress=not args.no_progress, shard=shard)
    print(json.dumps({**summary.as_dict(), "failures": str(args.output / FAILURES_FILE)}))
    return 0


def cli() -> None:
    """Console script `tfcovr-prepare-finegym`."""
    sys.exit(run(main))
