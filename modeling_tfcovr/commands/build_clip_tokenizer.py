"""Builds OpenAI's CLIP tokenizer as a transformers CLIPTokenizer folder, without downloads, from the
BPE vocabulary that ships with OpenAI's CLIP package (pip install clip-anytorch).

Example:
    python scripts/build_clip_tokenizer.py --output clip-tokenizer
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..convert.clip_tokenizer import build_clip_tokenizer
from . import command_parser, report_error


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(__doc__)
    parser.add_argument("--output", type=Path, required=True, help="folder to save the tokenizer in")
    parser.add_argument(
        "--bpe-path", type=Path, default=None, help="bpe_simple_vocab_16e6.txt.gz (default: from the clip package)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        tokenizer = build_clip_tokenizer(args.output, bpe_path=args.bpe_path)
    except (ImportError, ValueError, OSError) as error:
        return report_error(error)
    print(f"saved a CLIP tokenizer of {len(tokenizer)} tokens to {args.output}")
    return 0
