"""Converts the official TF-CoVR embeddings (a stream of pickled {video_id: tensor} dicts) to parquet.

Example:
    python scripts/convert_embeddings.py aim_embeddings_12f_all_files.pkl --output aim.parquet --trust-pickle

Unpickling a file can execute arbitrary code hidden in it, so the conversion only runs with
--trust-pickle: pass it only for files from a source you trust.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..data.embeddings import convert_pickle_embeddings
from ..errors import TFCoVRError
from . import command_parser, existing_path, report_error


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(__doc__)
    parser.add_argument("input", type=existing_path, help="the pickle stream of {video_id: tensor} dicts")
    parser.add_argument("--output", type=Path, required=True, help="parquet file to write")
    parser.add_argument("--trust-pickle", action="store_true", help="I trust this file: allow unpickling it")
    parser.add_argument("--dim", type=int, default=None, help="expected embedding dimension (e.g. 768)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = convert_pickle_embeddings(
            args.input, args.output, trust_pickle=args.trust_pickle, expected_dim=args.dim
        )
    except TFCoVRError as error:
        return report_error(error)
    print(f"wrote {result['num_embeddings']} embeddings of dimension {result['dim']} to {result['output']}")
    return 0
