"""Encodes TF-CoVR's FineDiving clips from the FineDiving frame folders.

Example:
    python scripts/prepare_finediving.py --frames FINADiving_MTL_256s/ --output clips/ --workers 8 \
        --annotations Annotations/FineDiving_fine-grained_annotation.pkl

Each `<competition>/<index>/` folder of 5-digit jpgs becomes `<competition>_<index>.mp4`, all frames
in natural order at 30 fps. Rerunning skips finished clips; missing, unreadable or differently sized
frames are listed per clip in `<output>/failures.jsonl`. Annotation pickles are read with a restricted
unpickler that builds only builtin containers, scalars and numpy arrays (no --trust-pickle needed);
a pickle that asks for anything else is refused without running it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..preparation.finediving import prepare_finediving
from ..preparation.jobs import FAILURES_FILE, parse_shard, read_id_list
from . import run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=Path, required=True, help="folder of <competition>/<index>/<NNNNN>.jpg")
    parser.add_argument("--output", type=Path, required=True, help="folder the clips are written to")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--only-ids", type=Path, nargs="+", default=None,
                        help="encode only these clips: text files of ids (one a line) or TF-CoVR CSVs")
    parser.add_argument("--annotations", type=Path, nargs="*", default=[],
                        help="FineDiving annotation pickles: encode only their (competition, index) keys and write "
                             "their dive codes to <output>/finediving_labels.csv")
    parser.add_argument("--skip-bad-frames", action="store_true",
                        help="write a clip without its unreadable or differently sized frames (still reported)")
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
    summary = prepare_finediving(args.frames, args.output, workers=args.workers, only_ids=only_ids,
                                 annotation_files=args.annotations, skip_bad_frames=args.skip_bad_frames,
                                 progress=not args.no_progress, shard=shard)
    print(json.dumps({**summary.as_dict(), "failures": str(args.output / FAILURES_FILE)}))
    return 0


def cli() -> None:
    """Console script `tfcovr-prepare-finediving`."""
    sys.exit(run(main))
