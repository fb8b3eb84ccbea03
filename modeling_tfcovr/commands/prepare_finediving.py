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
from pathlib import Path

from ..preparation.finediving import prepare_finediving
from ..preparation.jobs import FAILURES_FILE, add_job_arguments, job_options
from . import command_parser


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(__doc__)
    parser.add_argument("--frames", type=Path, required=True, help="folder of <competition>/<index>/<NNNNN>.jpg")
    parser.add_argument("--output", type=Path, required=True, help="folder the clips are written to")
    parser.add_argument(
        "--annotations",
        type=Path,
        nargs="*",
        default=[],
        help="FineDiving annotation pickles: encode only their (competition, index) keys and write "
        "their dive codes to <output>/finediving_labels.csv",
    )
    parser.add_argument(
        "--skip-bad-frames",
        action="store_true",
        help="write a clip without its unreadable or differently sized frames (still reported)",
    )
    add_job_arguments(parser, "encode")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    summary = prepare_finediving(
        args.frames,
        args.output,
        annotation_files=args.annotations,
        skip_bad_frames=args.skip_bad_frames,
        **job_options(parser, args),
    )
    print(json.dumps({**summary.as_dict(), "failures": str(args.output / FAILURES_FILE)}))
    return 0
