"""Converts the official TF-CoVR stage-2 checkpoint (Lightning Fabric state with `combiner.*`,
`text_proj.*` and OpenAI CLIP RN50 under `clip_model.*`) to a TFCoVRModel folder.

Examples:
    # stage 2 only (the video encoder is left random: use precomputed AIM embeddings)
    python scripts/convert_tfcovr_checkpoint.py best_val.ckpt --output tfcovr-base --trust-pickle

    # with the fine-tuned AIM encoder, to encode raw videos
    python scripts/convert_tfcovr_checkpoint.py best_val.ckpt --output tfcovr-base \
        --vision-checkpoint aim_stage1.pth --vision-preset tfcovr-stage1 --trust-pickle

The checkpoint is read with torch.load(weights_only=True). The official one also stores its
scheduler object, which needs unpickling: pass --trust-pickle only for files from a source you
trust (unpickling can run arbitrary code hidden in the file).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from ..convert import convert_tfcovr_checkpoint
from ..convert.aim import aim_preset_names
from ..errors import TFCoVRError
from . import command_parser, report_error


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(__doc__)
    parser.add_argument("checkpoint", type=Path, help="the official stage-2 checkpoint (.ckpt, .pt or .safetensors)")
    parser.add_argument("--output", type=Path, required=True, help="folder to save the converted model in")
    parser.add_argument(
        "--vision-checkpoint",
        default=None,
        help="AIM / stage-1 checkpoint file, converted folder or hub id for the video encoder "
        "(default: random encoder)",
    )
    parser.add_argument("--vision-revision", default=None, help="branch, tag or commit of a --vision-checkpoint hub id")
    parser.add_argument(
        "--vision-config",
        type=str,
        default=None,
        help="JSON (or a .json file) of TFCoVRVisionConfig fields for the default encoder, when no --vision-checkpoint",
    )
    parser.add_argument("--trust-pickle", action="store_true", help="I trust this file: allow unpickling it")
    parser.add_argument("--text-num-heads", type=int, default=None, help="text attention heads (default: width // 64)")
    parser.add_argument(
        "--vision-preset",
        choices=aim_preset_names(),
        default=None,
        help="official AIM configuration of an AIM checkpoint file given as --vision-checkpoint "
        "(TF-CoVR's: tfcovr-stage1)",
    )
    parser.add_argument(
        "--vision-num-heads",
        type=int,
        default=None,
        help="attention heads of an AIM checkpoint file (default: from --vision-preset)",
    )
    parser.add_argument(
        "--vision-adapter-scale",
        type=float,
        default=None,
        help="joint-adapter scale of an AIM checkpoint file (default: from --vision-preset)",
    )
    parser.add_argument("--state-dict-key", default=None, help="checkpoint entry that holds the model (default: found)")
    parser.add_argument("--no-processor", action="store_true", help="do not save a processor with the model")
    return parser


def _read_json_argument(value: str | None) -> dict | None:
    if value is None:
        return None
    path = Path(value)
    return json.loads(path.read_text(encoding="utf-8") if path.suffix == ".json" and path.is_file() else value)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        model = convert_tfcovr_checkpoint(
            args.checkpoint,
            args.output,
            vision_checkpoint=args.vision_checkpoint,
            vision_revision=args.vision_revision,
            vision_config=_read_json_argument(args.vision_config),
            trust_pickle=args.trust_pickle,
            text_num_attention_heads=args.text_num_heads,
            vision_num_attention_heads=args.vision_num_heads,
            state_dict_key=args.state_dict_key,
            save_processor=not args.no_processor,
            vision_preset=args.vision_preset,
            vision_mlp_adapter_scale=args.vision_adapter_scale,
        )
    except (TFCoVRError, FileNotFoundError, json.JSONDecodeError) as error:
        return report_error(error)
    print(f"saved TFCoVRModel (embed_dim {model.config.embed_dim}) to {args.output}")
    return 0
