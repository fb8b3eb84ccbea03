"""Stage 2: train TF-CoVR's text projection and combiner with HN-NCE.

From precomputed video embeddings (the official way; converted TF-CoVR embeddings work):

    python scripts/train_retrieval.py --triplets hub_dataset --embeddings embeddings.parquet \
        --vision-model-path runs/stage1 --text-model-path path/to/clip --output-dir runs/stage2

or from raw videos with `--video-root` instead of `--embeddings`. All `TrainingArguments` options
apply (`--per-device-train-batch-size`, `--fp16`, `--resume-from-checkpoint`, ...); `torchrun` and
`accelerate launch` gather the negatives of all processes.
"""

from __future__ import annotations

from ..training.stage2 import (
    RetrievalDataArguments,
    RetrievalModelArguments,
    RetrievalTrainingArguments,
    train_retrieval,
)
from . import run_training


def main(argv: list[str] | None = None) -> dict:
    arguments = (RetrievalModelArguments, RetrievalDataArguments, RetrievalTrainingArguments)
    return run_training(arguments, train_retrieval, argv)
