"""The embeddings dataset format, and the converter from the official pickle stream.

An embeddings dataset is a parquet table (one file, or several shards in a directory) with two
columns:

- `video_id`: string, the video file stem (unique);
- `embedding`: fixed-size list of float32 (`pa.list_(pa.float32(), dim)`), finite values.

It is what `scripts/convert_embeddings.py` writes from the official TF-CoVR release, and what the
project's own feature extraction writes; `read_embeddings` returns `(ids, float32 array (N, D))`.

The official release stores embeddings as a stream of pickled dicts `{video_id: tensor[768]}`.
Unpickling can run arbitrary code hidden in the file, so `load_pickle_embeddings` refuses unless the
caller says it trusts the file (`trust_pickle=True`, `--trust-pickle`).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import DataFormatError, UntrustedFileError
from .tfcovr_csv import write_parquet_atomic

ID_COLUMN = "video_id"
EMBEDDING_COLUMN = "embedding"


def embeddings_schema(dim: int) -> pa.Schema:
    """Arrow schema of an embeddings table of dimension `dim`."""
    return pa.schema(
        [
            pa.field(ID_COLUMN, pa.string(), nullable=False),
            pa.field(EMBEDDING_COLUMN, pa.list_(pa.float32(), dim), nullable=False),
        ]
    )


def validate_embeddings(video_ids: Sequence[str], embeddings: np.ndarray, expected_dim: int | None = None) -> None:
    """Checks ids and embeddings before they are written or used.

    Raises:
        DataFormatError: naming the offending video id(s) for a non-string or empty id, a duplicate id,
            a wrong dimension, or NaN/inf values; or when the counts of ids and rows differ.
    """
    embeddings = np.asarray(embeddings)
    if embeddings.ndim != 2:
        raise DataFormatError(f"embeddings must be a 2-D array (N, D), got shape {embeddings.shape}")
    if len(video_ids) != embeddings.shape[0]:
        raise DataFormatError(f"{len(video_ids)} video ids but {embeddings.shape[0]} embeddings")
    if embeddings.shape[1] == 0:
        raise DataFormatError("embeddings have dimension 0")
    if expected_dim is not None and embeddings.shape[1] != expected_dim:
        example = video_ids[0] if len(video_ids) else "<none>"
        raise DataFormatError(
            f"embedding of video {example!r} has dimension {embeddings.shape[1]}, expected {expected_dim}"
        )
    bad_ids = [video_id for video_id in video_ids if not isinstance(video_id, str) or not video_id]
    if bad_ids:
        raise DataFormatError(f"video ids must be non-empty strings, got {bad_ids[0]!r}")
    seen: set[str] = set()
    duplicates: list[str] = []
    for video_id in video_ids:
        if video_id in seen and video_id not in duplicates:
            duplicates.append(video_id)
        seen.add(video_id)
    if duplicates:
        raise DataFormatError(f"duplicate video id(s): {_first(duplicates)}")
    if not np.issubdtype(embeddings.dtype, np.number):
        raise DataFormatError(f"embeddings must be numeric, got dtype {embeddings.dtype}")
    finite = np.isfinite(embeddings).all(axis=1)
    if not finite.all():
        rows = np.flatnonzero(~finite)
        raise DataFormatError(f"NaN or inf in the embedding of video(s) {_first([video_ids[i] for i in rows])}")


def embeddings_to_table(video_ids: Sequence[str], embeddings: np.ndarray, expected_dim: int | None = None) -> pa.Table:
    """Validated arrow table (see `embeddings_schema`) from ids and an (N, D) array."""
    video_ids = list(video_ids)
    embeddings = np.asarray(embeddings)
    validate_embeddings(video_ids, embeddings, expected_dim)
    values = np.ascontiguousarray(embeddings, dtype=np.float32)
    dim = values.shape[1]
    column = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1), type=pa.float32()), dim)
    return pa.Table.from_arrays([pa.array(video_ids, type=pa.string()), column], schema=embeddings_schema(dim))


def write_embeddings_parquet(
    path: str | os.PathLike, video_ids: Sequence[str], embeddings: np.ndarray, expected_dim: int | None = None
) -> Path:
    """Validates and writes an embeddings parquet file atomically (temporary file + rename).

    Args:
        path: the `.parquet` file to write.
        video_ids: one unique, non-empty id per row.
        embeddings: array-like (N, D); stored as float32.
        expected_dim: if given, the dimension the embeddings must have.

    Raises:
        DataFormatError: see `validate_embeddings`.
    """
    table = embeddings_to_table(video_ids, embeddings, expected_dim)
    return write_parquet_atomic(table, path)


def read_embeddings(source: Any, expected_dim: int | None = None) -> tuple[list[str], np.ndarray]:
    """Reads an embeddings dataset.

    Args:
        source: a parquet file, a directory of parquet shards (read in sorted path order, searched
            recursively, hidden files skipped), a `datasets.Dataset`, or a `pyarrow.Table`.
        expected_dim: if given, the dimension the embeddings must have.

    Returns:
        `(video_ids, embeddings)` with embeddings a float32 array of shape (N, D).

    Raises:
        DataFormatError: missing columns, null or ragged embeddings, wrong dimension, NaN/inf, or
            duplicate ids (across shards too), naming the video id where there is one.
    """
    table = _as_table(source)
    missing = [name for name in (ID_COLUMN, EMBEDDING_COLUMN) if name not in table.column_names]
    if missing:
        raise DataFormatError(
            f"embeddings table lacks column(s) {', '.join(missing)} (has {', '.join(table.column_names)})"
        )
    ids_column = table.column(ID_COLUMN)
    if ids_column.null_count:
        raise DataFormatError("embeddings table has a row with no video_id")
    video_ids = [str(video_id) for video_id in ids_column.to_pylist()]
    column = table.column(EMBEDDING_COLUMN)
    if not (
        pa.types.is_list(column.type) or pa.types.is_large_list(column.type) or pa.types.is_fixed_size_list(column.type)
    ):
        raise DataFormatError(f"column 'embedding' must be a list of floats, got {column.type}")
    if len(video_ids) == 0:
        dim = column.type.list_size if pa.types.is_fixed_size_list(column.type) else 0
        return [], np.zeros((0, dim), dtype=np.float32)
    if column.null_count:
        nulls = pc.is_null(column).to_pylist()
        raise DataFormatError(f"video(s) {_first([v for v, null in zip(video_ids, nulls) if null])} have no embedding")
    lengths = np.asarray(pc.list_value_length(column).to_numpy(zero_copy_only=False))
    if (lengths != lengths[0]).any():
        odd = int(np.flatnonzero(lengths != lengths[0])[0])
        raise DataFormatError(
            f"embedding of video {video_ids[odd]!r} has dimension {lengths[odd]}, "
            f"but video {video_ids[0]!r} has {lengths[0]}"
        )
    flat = pc.list_flatten(column)
    if flat.null_count:
        raise DataFormatError("embeddings contain null values")
    values = np.asarray(flat.to_numpy(), dtype=np.float32).reshape(len(video_ids), int(lengths[0]))
    validate_embeddings(video_ids, values, expected_dim)
    return video_ids, values


def load_pickle_embeddings(path: str | os.PathLike, trust_pickle: bool = False) -> dict[str, np.ndarray]:
    """Reads the official embeddings file: a stream of pickled dicts `{video_id: tensor}`.

    `pickle.load` is called until the end of the file; values may be torch tensors or numpy arrays
    (a leading dimension of size 1 is dropped). An id seen twice with the same values is kept once.

    Args:
        path: the `.pkl` file.
        trust_pickle: must be `True`; unpickling can execute code, so only files from a trusted source
            may be read.

    Raises:
        UntrustedFileError: `trust_pickle` is not `True` (nothing is read).
        DataFormatError: an object in the stream is not a dict, a value is not a 1-D numeric vector, or
            an id appears twice with different values.
    """
    path = Path(path)
    if trust_pickle is not True:
        raise UntrustedFileError(
            f"refusing to read {str(path)!r}: it is a pickle stream, and unpickling a file can execute "
            "arbitrary code hidden in it. Convert it only if it comes from a source you trust (e.g. the "
            "official TF-CoVR release), and say so explicitly: pass --trust-pickle to "
            "scripts/convert_embeddings.py, or trust_pickle=True in Python."
        )
    if not path.is_file():
        raise DataFormatError(f"embeddings file {str(path)!r} does not exist")
    embeddings: dict[str, np.ndarray] = {}
    with open(path, "rb") as handle:
        index = 0
        while True:
            try:
                chunk = pickle.load(handle)  # noqa: S301  (only reached with trust_pickle=True)
            except EOFError:
                break
            except (pickle.UnpicklingError, ValueError, TypeError, AttributeError, ImportError) as error:
                raise DataFormatError(
                    f"{str(path)!r}: object {index} of the pickle stream is unreadable ({error})"
                ) from None
            if not isinstance(chunk, dict):
                raise DataFormatError(
                    f"{str(path)!r}: object {index} of the pickle stream is a {type(chunk).__name__}, expected a dict"
                )
            for key, value in chunk.items():
                video_id = str(key)
                vector = _to_vector(value, video_id)
                previous = embeddings.get(video_id)
                if previous is not None and (previous.shape != vector.shape or not np.array_equal(previous, vector)):
                    raise DataFormatError(
                        f"video {video_id!r} appears twice in {str(path)!r} with different embeddings"
                    )
                embeddings[video_id] = vector
            index += 1
    return embeddings


def convert_pickle_embeddings(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    trust_pickle: bool = False,
    expected_dim: int | None = None,
) -> dict[str, Any]:
    """Converts the official pickle stream into an embeddings parquet file.

    Returns:
        `{"num_embeddings": N, "dim": D, "output": path}`.

    Raises:
        UntrustedFileError: `trust_pickle` is not `True`.
        DataFormatError: see `load_pickle_embeddings` and `validate_embeddings`.
    """
    embeddings = load_pickle_embeddings(input_path, trust_pickle=trust_pickle)
    if not embeddings:
        raise DataFormatError(f"{str(input_path)!r} holds no embeddings")
    video_ids = list(embeddings)
    dims = {vector.shape[0] for vector in embeddings.values()}
    if len(dims) > 1:
        first_dim = embeddings[video_ids[0]].shape[0]
        odd = next(video_id for video_id in video_ids if embeddings[video_id].shape[0] != first_dim)
        raise DataFormatError(
            f"embedding of video {odd!r} has dimension {embeddings[odd].shape[0]}, "
            f"but video {video_ids[0]!r} has {first_dim}"
        )
    matrix = np.stack([embeddings[video_id] for video_id in video_ids])
    path = write_embeddings_parquet(output_path, video_ids, matrix, expected_dim=expected_dim)
    return {"num_embeddings": len(video_ids), "dim": int(matrix.shape[1]), "output": str(path)}


def _to_vector(value: Any, video_id: str) -> np.ndarray:
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        value = value.detach().cpu().float().numpy()
    try:
        array = np.asarray(value)
    except Exception:
        raise DataFormatError(f"embedding of video {video_id!r} is a {type(value).__name__}, not an array") from None
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise DataFormatError(f"embedding of video {video_id!r} has non-numeric dtype {array.dtype}")
    if array.ndim > 1 and all(size == 1 for size in array.shape[:-1]):
        array = array.reshape(-1)
    if array.ndim != 1:
        raise DataFormatError(f"embedding of video {video_id!r} has shape {tuple(array.shape)}, expected a vector")
    return array.astype(np.float32)


def _as_table(source: Any) -> pa.Table:
    if isinstance(source, pa.Table):
        return source
    if hasattr(source, "with_format") and hasattr(source, "column_names"):  # a datasets.Dataset
        return source.with_format("arrow")[:]
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            shards = sorted(
                p
                for p in path.rglob("*.parquet")
                if not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not shards:
                raise DataFormatError(f"no parquet files under {str(path)!r}")
            return _concat([_read_parquet(shard) for shard in shards])
        if path.is_file():
            return _read_parquet(path)
        raise DataFormatError(f"embeddings source {str(path)!r} does not exist")
    raise DataFormatError(
        f"cannot read embeddings from a {type(source).__name__}; "
        "pass a parquet file, a directory of parquet files, or a datasets.Dataset"
    )


def _read_parquet(path: Path) -> pa.Table:
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise DataFormatError(f"cannot read parquet file {str(path)!r} ({error})") from None


def _concat(tables: Iterable[pa.Table]) -> pa.Table:
    tables = list(tables)
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except pa.ArrowException as error:
        raise DataFormatError(f"embedding shards have incompatible schemas ({error})") from None


def _first(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(repr(item) for item in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
