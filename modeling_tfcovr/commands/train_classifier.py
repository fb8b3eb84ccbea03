"""Stage 1: fine-tune the AIM video encoder on clip -> label classification.

    python scripts/train_classifier.py --dataset_dir data/synthetic --output_dir runs/stage1 \
        --num_frames 8 --image_size 32 --patch_size 8 --hidden_size 64 ... --train_backbone

Every `TrainingArguments` option is accepted (`--num_train_epochs`, `--per_device_train_batch_size`,
`--bf16`, `--resume_from_checkpoint`, ...); `accelerate launch` / `torchrun` run it on several GPUs.
"""

from __future__ import annotations

import json
import sys

from transformers import HfArgumentParser

from ..training.stage1 import (
    ClassifierDataArguments,
    ClassifierModelArguments,
    ClassifierTrainingArguments,
    train_classifier,
)
from . import run


def main(argv: list[str] | None = None) -> dict:
    parser = HfArgumentParser((ClassifierModelArguments, ClassifierDataArguments, ClassifierTrainingArguments))
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    metrics = train_classifier(model_args, data_args, training_args)
    print(json.dumps(metrics, indent=2))
    return metrics


def cli() -> None:
    """Console script `tfcovr-train-classifier`."""
    sys.exit(run(main))
