"""Stage 1: fine-tune the AIM video encoder on clip -> label classification.

    python scripts/train_classifier.py --dataset-dir data/synthetic --output-dir runs/stage1 \
        --num-frames 8 --image-size 32 --patch-size 8 --hidden-size 64 ... --train-backbone

Every `TrainingArguments` option is accepted (`--num-train-epochs`, `--per-device-train-batch-size`,
`--bf16`, `--resume-from-checkpoint`, ...); `accelerate launch` / `torchrun` run it on several GPUs.
"""

from __future__ import annotations

from ..training.stage1 import (
    ClassifierDataArguments,
    ClassifierModelArguments,
    ClassifierTrainingArguments,
    train_classifier,
)
from . import run_training


def main(argv: list[str] | None = None) -> dict:
    arguments = (ClassifierModelArguments, ClassifierDataArguments, ClassifierTrainingArguments)
    return run_training(arguments, train_classifier, argv)
