"""Stage 2: train TF-CoVR's text projection and combiner with HN-NCE.

From precomputed video embeddings (the official way; converted TF-CoVR embeddings work):

    python scripts/train_retrieval.py --triplets hub_dataset --embeddings embeddings.parquet \
        --vision-model-path runs/stage1 --text-model-path path/to/clip --output-dir runs/stage2

or from raw videos with `--video-root` instead of `--embeddings`. All `TrainingArguments` options
apply (`--per-device-train-batch-size`, `--fp16`, `--resume-from-checkpoint`, ...); `torchrun` and
`accelerate launch` gather the negatives of all processes.
"""

from __future__ import annotations

import json
import sys

from ..training.stage2 import (
    RetrievalDataArguments,
    RetrievalModelArguments,
    RetrievalTrainingArguments,
    train_retrieval,
)
from . import run, training_parser


def main(argv: list[str] | None = None) -> dict:
    parser = training_parser((RetrievalModelArguments, RetrievalDataArguments, RetrievalTrainingArguments))
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    metrics = train_retrieval(model_args, data_args, training_args)
    print(json.dumps(metrics, indent=2))
    return metrics


def cli() -> None:
    """Console script `tfcovr-train-retrieval`."""
    sys.exit(run(main))
