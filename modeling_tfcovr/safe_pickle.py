"""Reading annotation pickles without running code from them.

`pickle.load` can call any importable function named in the file. [`load_data_pickle`] reads a
pickle with an unpickler whose `find_class` refuses every global, so only the pickle opcodes that
build builtin containers and scalars (dict, list, tuple, set, str, bytes, int, float, bool, None)
work; anything else (a class instance, a `__reduce__` payload such as `os.system`) is refused
before it is called, with [`UntrustedFileError`].

FineDiving's annotation pickles (xujinglin/FineDiving `Annotations/`): `train_split.pkl` and
`test_split.pkl` hold only builtins (a list of `(competition, index)` tuples). The fine-grained
and coarse annotations also hold numpy arrays and numpy scalars (their opcodes, listed with
`pickletools`, name exactly `numpy.core.multiarray._reconstruct`, `numpy.ndarray`, `numpy.dtype`
and `numpy.core.multiarray.scalar`). `allow_numpy=True` admits these four and nothing else: they
build arrays and scalars from raw bytes and call no user code (the elements of an object array are
unpickled under the same restrictions).
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

from .errors import DataFormatError, UntrustedFileError

_NUMPY_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }
)


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds builtin containers and scalars only (and, with `allow_numpy`, numpy arrays)."""

    def __init__(self, file, source: str, allow_numpy: bool = False):
        super().__init__(file)
        self.source = source
        self.allow_numpy = allow_numpy

    def find_class(self, module: str, name: str):
        if self.allow_numpy and (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        raise UntrustedFileError(
            f"{self.source}: the pickle asks for {module}.{name}; only builtin containers and scalars"
            f"{' and numpy arrays' if self.allow_numpy else ''} are allowed, so it was refused without running it"
        )

    def persistent_load(self, pid):
        raise UntrustedFileError(f"{self.source}: the pickle uses persistent ids; refused")


def loads_data_pickle(data: bytes, source: str = "<bytes>", allow_numpy: bool = False) -> object:
    """Unpickles `data` with [`RestrictedUnpickler`]; see [`load_data_pickle`]."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), source, allow_numpy).load()
    except UntrustedFileError:
        raise
    except Exception as error:  # truncated or not a pickle: UnpicklingError, EOFError, ValueError, ...
        raise DataFormatError(f"{source}: not a readable pickle ({type(error).__name__}: {error})") from None


def load_data_pickle(path: str | os.PathLike, allow_numpy: bool = False) -> object:
    """Reads a pickle that must hold plain data.

    Raises:
        UntrustedFileError: the pickle would import or call anything (a `__reduce__` payload, a class).
        DataFormatError: the file is not a readable pickle.
    """
    return loads_data_pickle(Path(path).read_bytes(), str(path), allow_numpy)


__all__ = ["RestrictedUnpickler", "load_data_pickle", "loads_data_pickle"]
