"""Converts an AIM checkpoint (mmaction's `backbone.*` + `cls_head.fc_cls.*`, or the TF-CoVR code's
stage-1 AIM) to a TFCoVRForVideoClassification folder, or to a TFCoVRVisionModel folder with
--vision-only.

Examples:
    python scripts/convert_aim_checkpoint.py aim_stage1.pth --output tfcovr-aim --preset tfcovr-stage1
    python scripts/convert_aim_checkpoint.py aim_stage1.pth --output tfcovr-aim-encoder --preset tfcovr-stage1 \
        --vision-only
    python scripts/convert_aim_checkpoint.py my_aim.pth --output my-aim --num-attention-heads 12 --adapter-scale 0.5

The architecture (width, layers, patch and image size, frames, adapters, num_tadapter) is read off the
weights. The attention heads and the joint-adapter scale cannot be: they come from --preset (an official
configuration, listed below) or from --num-attention-heads and --adapter-scale; without them the
conversion is refused. A preset that contradicts the weights is refused too.

The checkpoint is read with torch.load(weights_only=True); mmaction checkpoints whose metadata needs
unpickling are refused unless you pass --trust-pickle (only for files from a source you trust).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..convert import convert_aim_checkpoint
from ..convert.aim import aim_preset_names, load_aim_preset
from ..errors import TFCoVRError
from . import command_parser, report_error


def _presets_help() -> str:
    return "presets:\n" + "\n".join(f"  {name:22} {load_aim_preset(name).description}" for name in aim_preset_names())


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(__doc__, epilog=_presets_help())
    parser.add_argument("checkpoint", type=Path, help="the AIM checkpoint (.pth, .ckpt, .pt or .safetensors)")
    parser.add_argument("--output", type=Path, required=True, help="folder to save the converted model in")
    parser.add_argument(
        "--preset",
        choices=aim_preset_names(),
        default=None,
        help="official configuration giving heads, adapter scale, drop path (and class names for tfcovr-stage1)",
    )
    parser.add_argument("--vision-only", action="store_true", help="save the video encoder without the classifier")
    parser.add_argument(
        "--labels", type=Path, default=None, help="text file with one class name per line, in class order"
    )
    parser.add_argument("--trust-pickle", action="store_true", help="I trust this file: allow unpickling it")
    parser.add_argument(
        "--num-attention-heads",
        "--num-heads",
        dest="num_heads",
        type=int,
        default=None,
        help="attention heads (not stored in the weights; default: from --preset)",
    )
    parser.add_argument(
        "--adapter-scale",
        "--mlp-adapter-scale",
        dest="adapter_scale",
        type=float,
        default=None,
        help="AIM's joint-adapter scale, adapter_scale (not stored in the weights; default: from --preset)",
    )
    parser.add_argument(
        "--num-temporal-adapters",
        type=int,
        choices=(1, 2),
        default=None,
        help="AIM's num_tadapter; read off the weights, checked when given",
    )
    parser.add_argument(
        "--num-frames", type=int, default=None, help="frames per clip; read off the weights, checked when given"
    )
    parser.add_argument(
        "--state-dict-key", default=None, help="checkpoint entry that holds the weights (default: found)"
    )
    parser.add_argument("--no-processor", action="store_true", help="do not save a video processor with the model")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    id2label = None
    if args.labels is not None:
        names = [line.strip() for line in args.labels.read_text(encoding="utf-8").splitlines() if line.strip()]
        id2label = dict(enumerate(names))
    try:
        model = convert_aim_checkpoint(
            args.checkpoint,
            args.output,
            preset=args.preset,
            vision_only=args.vision_only,
            id2label=id2label,
            trust_pickle=args.trust_pickle,
            num_attention_heads=args.num_heads,
            mlp_adapter_scale=args.adapter_scale,
            num_temporal_adapters=args.num_temporal_adapters,
            num_frames=args.num_frames,
            state_dict_key=args.state_dict_key,
            save_video_processor=not args.no_processor,
        )
    except (TFCoVRError, FileNotFoundError) as error:
        return report_error(error)
    print(f"saved {type(model).__name__} to {args.output}")
    return 0
