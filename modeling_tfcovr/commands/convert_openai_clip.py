"""Converts OpenAI CLIP weights (the `clip` package's naming) to a transformers model folder: a
CLIPModel for ViT models, a CLIPTextModelWithProjection (text tower only) for ResNet models.

Example:
    python scripts/convert_openai_clip.py ViT-B-16.pt --output clip-vit-b16 --trust-pickle

OpenAI's released .pt files are TorchScript archives, which are only loaded with --trust-pickle
(they run the code stored inside them); a state dict saved with torch.save or safetensors is read
safely without it.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..convert import convert_openai_clip_checkpoint
from ..errors import TFCoVRError
from . import command_parser, report_error


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(__doc__)
    parser.add_argument("checkpoint", type=Path, help="OpenAI CLIP weights (.pt, .pth or .safetensors)")
    parser.add_argument("--output", type=Path, required=True, help="folder to save the converted model in")
    parser.add_argument("--trust-pickle", action="store_true", help="I trust this file: allow unpickling / TorchScript")
    parser.add_argument("--text-num-heads", type=int, default=None, help="text attention heads (default: width // 64)")
    parser.add_argument(
        "--vision-num-heads", type=int, default=None, help="image attention heads (default: width // 64)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        model = convert_openai_clip_checkpoint(
            args.checkpoint,
            args.output,
            trust_pickle=args.trust_pickle,
            text_num_attention_heads=args.text_num_heads,
            vision_num_attention_heads=args.vision_num_heads,
        )
    except (TFCoVRError, FileNotFoundError) as error:
        return report_error(error)
    print(f"saved {type(model).__name__} to {args.output}")
    return 0
