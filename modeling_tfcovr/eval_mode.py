"""A context manager that runs a module in evaluation mode and puts every submodule back as it was."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Puts `module` in evaluation mode (no dropout, no drop path) for the block, then restores the
    `training` flag of each submodule, so that a model that keeps its frozen encoders in evaluation
    mode during training is left exactly as it was."""
    modes = [(submodule, submodule.training) for submodule in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for submodule, training in modes:
            submodule.training = training


__all__ = ["eval_mode"]
