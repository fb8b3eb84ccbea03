# Copyright 2025 The TF-CoVR-HF authors. Licensed under the MIT License.
"""The storage half of a retrieval index: video ids, display paths and one `(N, D)` float32 array of embeddings
(L2-normalised when asked), validated once, saved as `embeddings.npy` + `retrieval_index.json` and loaded back,
optionally memory-mapped. Searching is the job of `searchers.py`; [`RetrievalIndex`] puts the two together.

Example:

```python
>>> import numpy as np
>>> from modeling_tfcovr.gallery_store import GalleryStore
>>> store = GalleryStore(["a", "b"], np.array([[3.0, 4.0], [0.0, 2.0]]))
>>> store.embeddings.tolist(), store.index_of("b")
([[0.6000000238418579, 0.800000011920929], [0.0, 1.0]], 1)

```
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import DataFormatError
from .io_utils import atomic_write

__all__ = ["GalleryStore", "as_float32_matrix", "first_non_finite_row"]

FORMAT_VERSION = 1
METADATA_FILE = "retrieval_index.json"
EMBEDDINGS_FILE = "embeddings.npy"
# Rows processed at a time by the validation and normalisation passes (bounded temporary memory).
ROW_CHUNK = 65536


def as_float32_matrix(values: Any, name: str) -> tuple[np.ndarray, bool]:
    """Returns `values` as a C-contiguous float32 NumPy array and whether that array is a fresh copy.

    Torch tensors (on any device) and array-likes are accepted; the array shares memory with the input when no
    conversion was needed.
    """
    if isinstance(values, np.ndarray) and values.dtype == np.float32 and values.flags.c_contiguous:
        return values, False  # as is, also a memory-mapped array
    if isinstance(values, torch.Tensor):
        tensor = values.detach()
        converted = tensor.to(device="cpu", dtype=torch.float32).contiguous()
        owned = converted.data_ptr() != tensor.data_ptr() or tensor.device.type != "cpu"
        array = converted.numpy()
    else:
        array = np.asarray(values)
        if array.dtype.kind not in "fiub":
            raise DataFormatError(f"{name} must be numeric, got an array of dtype {array.dtype}")
        original = array
        array = np.ascontiguousarray(array, dtype=np.float32)
        owned = array is not original and not np.may_share_memory(array, original)
    return array, owned


def first_non_finite_row(array: np.ndarray) -> int | None:
    """Index of the first row of `array` (N, D) containing NaN or inf, scanning in bounded chunks."""
    for start in range(0, array.shape[0], ROW_CHUNK):
        bad = ~np.isfinite(array[start : start + ROW_CHUNK]).all(axis=1)
        if bad.any():
            return start + int(np.argmax(bad))
    return None


def _normalized_rows(array: np.ndarray, ids: Sequence[str], in_place: bool) -> np.ndarray:
    """L2-normalises the rows of `array`, chunk by chunk, in place or into one new array."""
    out = array if in_place else np.empty(array.shape, dtype=np.float32)
    for start in range(0, array.shape[0], ROW_CHUNK):
        block = array[start : start + ROW_CHUNK]
        norms = np.sqrt(np.einsum("ij,ij->i", block, block, dtype=np.float64))[:, None]
        zero = np.flatnonzero(norms[:, 0] == 0)
        if zero.size:
            row = start + int(zero[0])
            raise DataFormatError(f"the embedding of video {ids[row]!r} (row {row}) is all zeros; cannot normalise")
        np.divide(block, norms, out=out[start : start + ROW_CHUNK], casting="unsafe")
    return out


class GalleryStore:
    """`N` distinct video ids, optional display paths and their `(N, D)` float32 embeddings, validated.

    Args:
        video_ids: `N` distinct video ids, one per row.
        embeddings: `(N, D)` array or tensor (any float dtype; stored as C-contiguous float32).
        paths: optional `N` display paths (`str`, path-like or `None` each).
        normalize: L2-normalise the rows (then inner products are cosine similarities).
        copy: with `False`, a writeable float32 array is normalised in place and kept instead of being copied.
        normalized: the rows are already normalised (as saved): no normalisation pass.
        validate: scan for NaN/inf rows.

    Raises:
        DataFormatError: on a wrong shape, a row with NaN/inf or (with `normalize`) zero norm, naming its video id;
            on repeated or non-string video ids; on a `paths` list of the wrong length.
    """

    def __init__(
        self,
        video_ids: Sequence[str],
        embeddings: np.ndarray | torch.Tensor,
        paths: Sequence[str | os.PathLike | None] | None = None,
        normalize: bool = True,
        *,
        copy: bool = True,
        normalized: bool = False,
        validate: bool = True,
    ) -> None:
        array, owned = as_float32_matrix(embeddings, "embeddings")
        owned = owned or not copy
        if isinstance(video_ids, str):
            raise DataFormatError("video_ids must be a sequence of strings, got a single string")
        ids = tuple(video_ids)
        if array.ndim != 2:
            raise DataFormatError(f"embeddings must have shape (N, D), got shape {tuple(array.shape)}")
        if array.shape[0] != len(ids):
            raise DataFormatError(f"got {len(ids)} video ids but {array.shape[0]} embedding rows")
        if not ids:
            raise DataFormatError("the gallery is empty: at least one (video_id, embedding) pair is needed")
        if array.shape[1] == 0:
            raise DataFormatError("embeddings have dimension 0")

        id_to_index: dict[str, int] = {}
        for position, video_id in enumerate(ids):
            if not isinstance(video_id, str):
                raise DataFormatError(f"video id at position {position} is not a string: {video_id!r}")
            if video_id in id_to_index:
                raise DataFormatError(
                    f"video id {video_id!r} appears twice in the gallery (positions {id_to_index[video_id]} and "
                    f"{position})"
                )
            id_to_index[video_id] = position

        if paths is not None:
            if isinstance(paths, str):
                raise DataFormatError("paths must be a sequence with one entry per video, got a single string")
            paths = tuple(None if p is None else os.fspath(p) for p in paths)
            if len(paths) != len(ids):
                raise DataFormatError(f"got {len(ids)} video ids but {len(paths)} paths")

        if validate:
            bad = first_non_finite_row(array)
            if bad is not None:
                raise DataFormatError(f"the embedding of video {ids[bad]!r} (row {bad}) contains NaN or inf")

        if normalize and not normalized:
            array = _normalized_rows(array, ids, in_place=owned and array.flags.writeable)

        self.video_ids: tuple[str, ...] = ids
        self.paths: tuple[str | None, ...] | None = paths
        self.array = array
        self.normalize = normalize
        self._id_to_index = id_to_index

    def __len__(self) -> int:
        return len(self.video_ids)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self._id_to_index

    @property
    def dim(self) -> int:
        return int(self.array.shape[1])

    @property
    def embeddings(self) -> np.ndarray:
        """The `(N, D)` float32 rows as a read-only view."""
        view = self.array.view()
        view.flags.writeable = False
        return view

    @property
    def is_memory_mapped(self) -> bool:
        return isinstance(self.array, np.memmap)

    def index_of(self, video_id: str) -> int:
        """Row of `video_id`; `KeyError` naming it when it is not in the gallery."""
        try:
            return self._id_to_index[video_id]
        except KeyError:
            raise KeyError(f"video id {video_id!r} is not in the gallery") from None

    def position_or_none(self, video_id: str | None) -> int:
        """Row of `video_id`, or `-1` for `None` or an id not in the gallery."""
        return -1 if video_id is None else self._id_to_index.get(video_id, -1)

    def prepare_queries(self, query_embeds: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Validates `(Q, D)` queries against the gallery and returns them as float32 (normalised when `normalize`)."""
        array, _ = as_float32_matrix(query_embeds, "query_embeds")
        if array.ndim != 2:
            raise DataFormatError(f"query_embeds must have shape (Q, D), got shape {tuple(array.shape)}")
        if array.shape[1] != self.dim:
            raise DataFormatError(
                f"query embeddings have dimension {array.shape[1]} but the gallery's embeddings have dimension "
                f"{self.dim}"
            )
        bad = first_non_finite_row(array)
        if bad is not None:
            raise DataFormatError(f"query embedding {bad} contains NaN or inf")
        queries = torch.from_numpy(array)
        if self.normalize and queries.shape[0]:
            norms = torch.linalg.vector_norm(queries, dim=1, keepdim=True)
            zero = torch.nonzero(norms[:, 0] == 0)
            if zero.numel():
                raise DataFormatError(f"query embedding {int(zero[0, 0])} is all zeros; cannot normalise")
            queries = queries / norms
        return queries

    # ------------------------------------------------------------------------------------------------------------------
    # Files
    # ------------------------------------------------------------------------------------------------------------------

    def save(self, directory: str | os.PathLike, extra: dict[str, Any] | None = None) -> None:
        """Writes `embeddings.npy` (the stored, normalised rows) and then `retrieval_index.json` (ids, paths, settings
        and the `extra` keys), each atomically; the JSON file, written last, marks a complete save."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_write(directory / EMBEDDINGS_FILE) as handle:
            np.lib.format.write_array(handle, self.array, allow_pickle=False)
        metadata = {
            "format_version": FORMAT_VERSION,
            "num_videos": len(self),
            "dim": self.dim,
            "dtype": "float32",
            "normalize": self.normalize,
            "normalized": self.normalize,
            "embeddings_file": EMBEDDINGS_FILE,
            **(extra or {}),
            "video_ids": list(self.video_ids),
            "paths": None if self.paths is None else list(self.paths),
        }
        with atomic_write(directory / METADATA_FILE) as handle:
            handle.write(json.dumps(metadata, ensure_ascii=False).encode("utf-8"))

    @classmethod
    def load(
        cls, directory: str | os.PathLike, mmap: bool = True, validate: bool = True
    ) -> tuple[GalleryStore, dict[str, Any]]:
        """Reads a folder written by [`~GalleryStore.save`]; returns the store and the metadata (with `extra`)."""
        directory = Path(directory)
        metadata_path = directory / METADATA_FILE
        if not metadata_path.is_file():
            raise FileNotFoundError(f"no retrieval index in {str(directory)!r}: {METADATA_FILE} is missing")
        try:
            metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError is a ValueError
            raise DataFormatError(f"{metadata_path} is not a valid {METADATA_FILE} ({error})") from None
        if not isinstance(metadata, dict):
            raise DataFormatError(f"{metadata_path} holds a {type(metadata).__name__}, expected a JSON object")
        if metadata.get("format_version") != FORMAT_VERSION:
            raise DataFormatError(
                f"{metadata_path} has format version {metadata.get('format_version')!r}; expected {FORMAT_VERSION}"
            )
        missing = [
            key
            for key in ("embeddings_file", "num_videos", "dim", "video_ids", "paths", "normalize", "normalized")
            if key not in metadata
        ]
        if missing:
            raise DataFormatError(f"{metadata_path} lacks the key(s) {', '.join(missing)}")
        embeddings_path = directory / metadata["embeddings_file"]
        try:
            embeddings = np.load(embeddings_path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (OSError, ValueError, EOFError) as error:  # missing, empty, truncated or not a .npy file
            raise DataFormatError(f"cannot read the gallery embeddings {str(embeddings_path)!r} ({error})") from None
        expected_shape = (metadata["num_videos"], metadata["dim"])
        if embeddings.shape != expected_shape or embeddings.dtype != np.float32:
            raise DataFormatError(
                f"{embeddings_path} holds a {embeddings.dtype} array of shape {embeddings.shape}; "
                f"{METADATA_FILE} expects float32 {expected_shape}"
            )
        store = cls(
            metadata["video_ids"],
            embeddings,
            metadata["paths"],
            normalize=metadata["normalize"],
            copy=mmap,
            normalized=metadata["normalized"],
            validate=validate,
        )
        return store, metadata
