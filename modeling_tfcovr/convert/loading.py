"""Reading checkpoint files safely and finding the state dict inside them.

Checkpoints are read with `torch.load(..., weights_only=True)`, which only rebuilds tensors and
plain containers. A file that needs more (a pickled Python object such as an `argparse.Namespace`,
a training script's scheduler, or a TorchScript archive) is refused with [`UntrustedFileError`]
unless the caller opts in with `trust_pickle=True` (`--trust-pickle` on the command line):
unpickling can run arbitrary code hidden in the file.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import types
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import DataFormatError, UntrustedFileError

logger = logging.getLogger(__name__)

TRUST_HINT = "pass --trust-pickle on the command line (trust_pickle=True in Python)"

# Containers under which training frameworks keep the model weights, in the order they are tried.
STATE_DICT_KEYS = ("state_dict", "model", "model_state_dict", "module", "net", "weights")
# Prefixes that wrappers (DDP, Fabric, torch.compile) add to every parameter name.
WRAPPER_PREFIXES = ("_forward_module.", "module.", "_orig_mod.")


class PlaceholderObject:
    """Stands in, in a trusted checkpoint, for an object whose class cannot be imported here (for
    example the training script's learning-rate scheduler). It keeps what was pickled and does
    nothing else."""

    def __init__(self, *args: Any, **kwargs: Any):
        self.pickled_args = args
        self.pickled_kwargs = kwargs

    def __setstate__(self, state: Any) -> None:
        self.pickled_state = state

    def __repr__(self) -> str:
        return f"<placeholder for {type(self).__module__}.{type(self).__qualname__}>"


class _LenientUnpickler(pickle.Unpickler):
    """An unpickler that replaces classes it cannot import by [`PlaceholderObject`] subclasses."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            logger.warning("%s.%s cannot be imported here; it is replaced by a placeholder", module, name)
            return type(name, (PlaceholderObject,), {"__module__": module, "__qualname__": name})


def _lenient_pickle_module() -> types.ModuleType:
    module = types.ModuleType("tfcovr_lenient_pickle")
    module.__dict__.update({k: v for k, v in vars(pickle).items() if not k.startswith("__")})
    module.Unpickler = _LenientUnpickler
    module.load = lambda file, **kwargs: _LenientUnpickler(file, **kwargs).load()
    return module


def is_torchscript_archive(path: str | os.PathLike) -> bool:
    """Whether `path` is a TorchScript archive (as OpenAI's released CLIP `.pt` files are)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    return any(name.endswith("constants.pkl") for name in names) and any("/code/" in name for name in names)


def _unpickling_reason(error: Exception) -> str:
    match = re.search(r"GLOBAL ([\w.]+)", str(error))
    if match:
        return f"it contains the Python object {match.group(1)!r}, not only tensors"
    return f"torch.load(weights_only=True) refused it ({str(error).strip().splitlines()[-1][:200]})"


def load_checkpoint(path: str | os.PathLike, trust_pickle: bool = False) -> Any:
    """Reads a checkpoint file onto the CPU.

    `.safetensors` files are read with safetensors. Anything else goes through
    `torch.load(weights_only=True)` first; only if that fails and `trust_pickle` is `True` is the
    file unpickled in full (`weights_only=False`), with classes that cannot be imported here
    replaced by [`PlaceholderObject`]s so that checkpoints of other code bases still open.

    Args:
        path: the checkpoint file.
        trust_pickle: allow arbitrary unpickling (and TorchScript archives). Only for files from a
            source you trust.

    Returns:
        Whatever the file holds (usually a dict).

    Raises:
        FileNotFoundError: `path` is not a file.
        UntrustedFileError: the file needs unpickling and `trust_pickle` is `False`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist or is not a file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    if is_torchscript_archive(path):
        if not trust_pickle:
            raise UntrustedFileError(
                f"{str(path)!r} is a TorchScript archive; loading it runs the code stored inside it. "
                f"If you trust its source, {TRUST_HINT}."
            )
        logger.warning("loading the TorchScript archive %s because trust_pickle=True", path)
        return torch.jit.load(str(path), map_location="cpu").state_dict()
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if not trust_pickle:
            raise UntrustedFileError(
                f"{str(path)!r} cannot be read safely: {_unpickling_reason(error)}. Reading it means unpickling, "
                f"which can run arbitrary code hidden in the file. If you trust its source, {TRUST_HINT}."
            ) from error
    logger.warning("unpickling %s with weights_only=False because trust_pickle=True", path)
    return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_lenient_pickle_module())


def _is_state_dict(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and len(value) > 0
        and all(isinstance(key, str) for key in value)
        and all(isinstance(item, torch.Tensor) for item in value.values())
    )


def strip_wrapper_prefixes(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Removes prefixes such as `module.` (DDP) or `_forward_module.` (Fabric) that every key carries."""
    state_dict = dict(state_dict)
    changed = True
    while changed and state_dict:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if all(key.startswith(prefix) for key in state_dict):
                state_dict = {key[len(prefix) :]: value for key, value in state_dict.items()}
                changed = True
    return state_dict


def find_state_dict(checkpoint: Any, key: str | None = None) -> dict[str, torch.Tensor]:
    """The model state dict inside a loaded checkpoint.

    Accepts a plain state dict or a training checkpoint that nests one under `key` (or, when `key`
    is `None`, under the first of `state_dict`, `model`, `model_state_dict`, `module`, ... that
    holds one). Wrapper prefixes (`module.`, `_forward_module.`, `_orig_mod.`) are removed.

    Raises:
        DataFormatError: no state dict was found.
    """
    if key is not None:
        if not isinstance(checkpoint, Mapping) or key not in checkpoint:
            found = sorted(checkpoint)[:20] if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
            raise DataFormatError(f"the checkpoint has no entry {key!r}; it has {found}")
        checkpoint = checkpoint[key]
    if hasattr(checkpoint, "state_dict") and not isinstance(checkpoint, Mapping):
        checkpoint = checkpoint.state_dict()
    if _is_state_dict(checkpoint):
        return strip_wrapper_prefixes(checkpoint)
    if isinstance(checkpoint, Mapping):
        for candidate in STATE_DICT_KEYS:
            if candidate in checkpoint:
                try:
                    return find_state_dict(checkpoint[candidate])
                except DataFormatError:
                    continue
        tensors = {k: v for k, v in checkpoint.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
        if tensors and len(tensors) >= len(checkpoint) - 3:  # a state dict with a few metadata entries
            return strip_wrapper_prefixes(tensors)
        raise DataFormatError(
            f"no model state dict found in the checkpoint (top-level entries: {sorted(map(str, checkpoint))[:20]}); "
            "name the entry that holds it"
        )
    raise DataFormatError(f"expected a state dict or a dict holding one, got {type(checkpoint).__name__}")


def load_state_dict(
    path: str | os.PathLike, trust_pickle: bool = False, key: str | None = None
) -> dict[str, torch.Tensor]:
    """[`load_checkpoint`] followed by [`find_state_dict`]."""
    return find_state_dict(load_checkpoint(path, trust_pickle=trust_pickle), key=key)


__all__ = [
    "PlaceholderObject",
    "TRUST_HINT",
    "find_state_dict",
    "is_torchscript_archive",
    "load_checkpoint",
    "load_state_dict",
    "strip_wrapper_prefixes",
]
