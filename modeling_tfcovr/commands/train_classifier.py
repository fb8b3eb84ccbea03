"""Stage 1: fine-tune the AIM video encoder on clip -> label classification.

    python scripts/train_classifier.py --dataset-dir data/synthetic --output-dir runs/stage1 \
        --num-frames 8 --image-size 32 --patch-size 8 --hidden-size 64 ... --train-backbone

Every `TrainingArguments` option is accepted (`--num-train-epochs`, `--per-device-train-batch-size`,
`--bf16`, `--resume-from-checkpoint`, ...); `accelerate launch` / `torchrun` run it on several GPUs.
"""

from __future__ import annotations

import json
import sys

from ..training.stage1 import (
    ClassifierDataArguments,
    ClassifierModelArguments,
    ClassifierTrainingArguments,
    train_classifier,
)
from . import run, training_parser


def main(argv: list[str] | None = None) -> dict:
    parser = training_parser((ClassifierModelArguments, ClassifierDataArguments, ClassifierTrainingArguments))
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    metrics = train_classifier(model_args, data_args, training_args)
    print(json.dumps(metrics, indent=2))
    return metrics


def cli() -> None:
    """Console script `tfcovr-train-classifier`."""
    sys.exit(run(main))
