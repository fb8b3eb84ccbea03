"""Finding checkpoints to resume from, and recording a run's history next to its model."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import Trainer, TrainingArguments

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def latest_complete_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest `checkpoint-N` folder of `output_dir` that `Trainer` finished writing.

    `Trainer` writes `trainer_state.json` after the weights, optimizer and RNG states, so a folder
    without it (a run killed while saving) is never taken for a finished checkpoint.
    """
    candidates = []
    for path in Path(output_dir).glob("checkpoint-*"):
        match = _CHECKPOINT.match(path.name)
        if match and (path / "trainer_state.json").is_file() and any(path.glob("*.safetensors")):
            candidates.append((int(match.group(1)), path))
    return str(max(candidates)[1]) if candidates else None


def resolve_resume(training_args: TrainingArguments) -> str | bool | None:
    """`resume_from_checkpoint` with `"latest"` resolved to the newest complete checkpoint (or `None`)."""
    value = training_args.resume_from_checkpoint
    if value == "latest":
        return latest_complete_checkpoint(training_args.output_dir)
    return value


def write_log_history(trainer: Trainer, output_dir: str | os.PathLike) -> Path:
    """Writes `trainer.state.log_history` (losses, learning rates, metrics per step) as JSON."""
    path = Path(output_dir) / "log_history.json"
    path.write_text(json.dumps(trainer.state.log_history, indent=1), encoding="utf-8")
    return path


__all__ = ["latest_complete_checkpoint", "resolve_resume", "write_log_history"]
