# Copyright 2025 The TF-CoVR-HF authors. Licensed under the MIT License.
"""A searchable gallery of video embeddings: exact top-k search, optional FAISS search, save and memory-mapped load.

Example:

```python
>>> import numpy as np
>>> from modeling_tfcovr.retrieval_index import RetrievalIndex
>>> index = RetrievalIndex(["a", "b", "c"], np.eye(3, dtype=np.float32))
>>> result = index.search(np.array([[1.0, 0.5, 0.0]], dtype=np.float32), top_k=2, exclude_ids=["a"])
>>> result.video_ids  # "a" scores highest but is the query's own video, so it is removed
[['b', 'c']]

```
"""

from __future__ import annotations

import json
import math
import os
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from .errors import DataFormatError

if TYPE_CHECKING:
    import datasets
    import faiss

__all__ = ["RetrievalIndex", "SearchResult"]

FaissKind = Literal["flat", "ivf", "hnsw"]

_FORMAT_VERSION = 1
_METADATA_FILE = "retrieval_index.json"
_EMBEDDINGS_FILE = "embeddings.npy"
_FAISS_FILE = "faiss.index"
_HUB_DATA_FILE = "data/gallery.parquet"
_HUB_CONFIG_FILE = "retrieval_index_config.json"
# Rows processed at a time by the validation and normalisation passes (bounded temporary memory).
_ROW_CHUNK = 65536


@dataclass
class SearchResult:
    """The top-k results of a batch of queries.

    Attributes:
        scores: `(Q, k)` float32, similarities (inner products; cosine similarities when the index normalises), best
            first. Empty slots (only possible with approximate FAISS indexes) hold `-inf`.
        indices: `(Q, k)` int64, gallery positions of the results; `-1` in empty slots.
        video_ids: per query, the video ids of the results (empty slots left out, so a list can be shorter than `k`
            only with approximate FAISS indexes).
        paths: per query, the display paths of the results, when the index has paths; else `None`.
    """

    scores: np.ndarray
    indices: np.ndarray
    video_ids: list[list[str]]
    paths: list[list[str | None]] | None = None

    def __len__(self) -> int:
        return len(self.video_ids)

    @property
    def k(self) -> int:
        """Number of result slots per query."""
        return int(self.indices.shape[1])


def _import_faiss() -> Any:
    try:
        import faiss
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "FAISS search needs the `faiss-cpu` (or `faiss-gpu`) package: pip install 'tfcovr[faiss]'"
        ) from error
    return faiss


def _write_atomically(path: Path, write: Any) -> None:
    """Calls `write(tmp_path)` on a temporary file next to `path`, then renames it onto `path`."""
    tmp_path = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    try:
        write(tmp_path)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _fsync_write(tmp_path: Path, write_to_file: Any) -> None:
    with open(tmp_path, "wb") as handle:
        write_to_file(handle)
        handle.flush()
        os.fsync(handle.fileno())


def _as_float32_matrix(values: Any, name: str) -> tuple[np.ndarray, bool]:
    """Returns `values` as a C-contiguous float32 NumPy array and whether that array is a fresh copy.

    Torch tensors (on any device) and array-likes are accepted; the array shares memory with the input when no
    conversion was needed.
    """
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


def _first_non_finite_row(array: np.ndarray) -> int | None:
    """Index of the first row of `array` (N, D) containing NaN or inf, scanning in bounded chunks."""
    for start in range(0, array.shape[0], _ROW_CHUNK):
        bad = ~np.isfinite(array[start : start + _ROW_CHUNK]).all(axis=1)
        if bad.any():
            return start + int(np.argmax(bad))
    return None


class RetrievalIndex:
    """A gallery of `(video_id, embedding)` pairs with exact (and optionally FAISS) top-k inner-product search.

    With `normalize=True` (the default) gallery and query embeddings are L2-normalised, so scores are cosine
    similarities, as in the TF-CoVR evaluation. The gallery is held once in memory as a C-contiguous float32 array:
    a float32 array passed in is not modified (a normalised copy is made) unless `copy=False`, an array this class
    had to convert anyway is normalised in place, and an index loaded with `mmap=True` stays memory-mapped (it was
    normalised when saved).

    Exact search ([`~RetrievalIndex.search`]) multiplies batches of queries with chunks of the gallery and keeps the
    best `k` with `torch.topk`, never sorting the whole gallery. Results are ordered by score, and equal scores by
    gallery position (ascending), also at the top-k boundary, so results are deterministic even with exact ties.

    Args:
        video_ids: `N` distinct video ids, one per gallery row.
        embeddings: `(N, D)` array or tensor of gallery embeddings (any float dtype; stored as float32).
        paths: optional `N` display paths (`str` or `None` each), returned with search results.
        normalize: L2-normalise the gallery and the queries (cosine similarity).
        backend: `"exact"`, or `"faiss"` to build a flat FAISS inner-product index now (same results as exact).
        copy: with `False`, a writeable C-contiguous float32 array (or CPU float32 tensor) is normalised in place and
            becomes the index's storage instead of being copied (for galleries too large to hold twice).

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
        backend: Literal["exact", "faiss"] = "exact",
        copy: bool = True,
    ) -> None:
        array, owned = _as_float32_matrix(embeddings, "embeddings")
        self._setup(
            video_ids, array, paths, normalize=normalize, owned=owned or not copy, normalized=False, validate=True
        )
        if backend == "faiss":
            self.build_faiss_index("flat")
        elif backend != "exact":
            raise ValueError(f"backend must be 'exact' or 'faiss', got {backend!r}")

    # ------------------------------------------------------------------------------------------------------------------
    # Construction helpers
    # ------------------------------------------------------------------------------------------------------------------

    def _setup(
        self,
        video_ids: Sequence[str],
        array: np.ndarray,
        paths: Sequence[str | os.PathLike | None] | None,
        *,
        normalize: bool,
        owned: bool,
        normalized: bool,
        validate: bool,
    ) -> None:
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
                    f"video id {video_id!r} appears twice in the gallery (positions {id_to_index[video_id]} and {position})"
                )
            id_to_index[video_id] = position

        if paths is not None:
            if isinstance(paths, str):
                raise DataFormatError("paths must be a sequence with one entry per video, got a single string")
            paths = tuple(None if p is None else os.fspath(p) for p in paths)
            if len(paths) != len(ids):
                raise DataFormatError(f"got {len(ids)} video ids but {len(paths)} paths")

        if validate:
            bad = _first_non_finite_row(array)
            if bad is not None:
                raise DataFormatError(f"the embedding of video {ids[bad]!r} (row {bad}) contains NaN or inf")

        if normalize and not normalized:
            array = self._normalized_rows(array, ids, in_place=owned and array.flags.writeable)

        self._video_ids: tuple[str, ...] = ids
        self._id_to_index = id_to_index
        self._paths: tuple[str | None, ...] | None = paths
        self._embeddings = array
        self.normalize = normalize
        self._faiss_index: Any = None
        self._faiss_config: dict[str, Any] | None = None

    @staticmethod
    def _normalized_rows(array: np.ndarray, ids: Sequence[str], in_place: bool) -> np.ndarray:
        """L2-normalises the rows of `array`, chunk by chunk, in place or into one new array."""
        out = array if in_place else np.empty(array.shape, dtype=np.float32)
        for start in range(0, array.shape[0], _ROW_CHUNK):
            block = array[start : start + _ROW_CHUNK]
            norms = np.sqrt(np.einsum("ij,ij->i", block, block, dtype=np.float64))[:, None]
            zero = np.flatnonzero(norms[:, 0] == 0)
            if zero.size:
                row = start + int(zero[0])
                raise DataFormatError(f"the embedding of video {ids[row]!r} (row {row}) is all zeros; cannot normalise")
            np.divide(block, norms, out=out[start : start + _ROW_CHUNK], casting="unsafe")
        return out

    @classmethod
    def from_dataset(
        cls,
        dataset: datasets.Dataset,
        id_column: str = "video_id",
        embedding_column: str = "embedding",
        path_column: str | None = None,
        normalize: bool = True,
        backend: Literal["exact", "faiss"] = "exact",
    ) -> RetrievalIndex:
        """Builds an index from a `datasets.Dataset` with a string id column and a fixed-size float list column.

        The embedding column is read once as an `(N, D)` array through `dataset.with_format("numpy")`.

        Args:
            dataset: the embeddings table (e.g. the project's embeddings parquet loaded with `datasets`).
            id_column: name of the video id column.
            embedding_column: name of the embedding column (fixed-size list of floats).
            path_column: optional name of a column of display paths.
            normalize: see [`RetrievalIndex`].
            backend: see [`RetrievalIndex`].
        """
        missing = [
            c for c in (id_column, embedding_column, path_column) if c is not None and c not in dataset.column_names
        ]
        if missing:
            raise DataFormatError(f"the dataset has no column {missing[0]!r}; its columns are {dataset.column_names}")
        embeddings = dataset.with_format("numpy")[embedding_column][:]
        if embeddings.dtype == object:  # variable-length lists come back as an array of arrays
            lengths = {len(row) for row in embeddings}
            if len(lengths) > 1:
                raise DataFormatError(
                    f"column {embedding_column!r} holds embeddings of different lengths {sorted(lengths)}"
                )
            embeddings = np.stack(embeddings) if len(embeddings) else np.zeros((0, 0), dtype=np.float32)
        plain = dataset.with_format(None)
        video_ids = list(plain[id_column][:])
        paths = list(plain[path_column][:]) if path_column is not None else None
        return cls(video_ids, embeddings, paths=paths, normalize=normalize, backend=backend)

    # ------------------------------------------------------------------------------------------------------------------
    # Accessors
    # ------------------------------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._video_ids)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self._id_to_index

    def __repr__(self) -> str:
        faiss_kind = None if self._faiss_config is None else self._faiss_config["kind"]
        return (
            f"{type(self).__name__}(num_videos={len(self)}, dim={self.dim}, normalize={self.normalize}, "
            f"memory_mapped={self.is_memory_mapped}, faiss={faiss_kind!r})"
        )

    @property
    def dim(self) -> int:
        """Embedding dimension `D`."""
        return int(self._embeddings.shape[1])

    @property
    def video_ids(self) -> tuple[str, ...]:
        """The gallery's video ids, in gallery order."""
        return self._video_ids

    @property
    def paths(self) -> tuple[str | None, ...] | None:
        """The gallery's display paths, or `None`."""
        return self._paths

    @property
    def embeddings(self) -> np.ndarray:
        """The `(N, D)` float32 gallery (normalised when `normalize`), as a read-only view."""
        view = self._embeddings.view()
        view.flags.writeable = False
        return view

    @property
    def is_memory_mapped(self) -> bool:
        """Whether the gallery is a memory-mapped file rather than an in-memory array."""
        return isinstance(self._embeddings, np.memmap)

    @property
    def faiss_index(self) -> faiss.Index | None:
        """The FAISS index built by [`~RetrievalIndex.build_faiss_index`] (or loaded), else `None`."""
        return self._faiss_index

    def index_of(self, video_id: str) -> int:
        """Gallery position of `video_id`; `KeyError` naming it when it is not in the gallery."""
        try:
            return self._id_to_index[video_id]
        except KeyError:
            raise KeyError(f"video id {video_id!r} is not in the gallery") from None

    def get_embeddings(self, video_ids: Sequence[str]) -> np.ndarray:
        """The `(n, D)` float32 gallery embeddings of `video_ids` (a copy)."""
        return np.asarray(self._embeddings[[self.index_of(v) for v in video_ids]])

    # ------------------------------------------------------------------------------------------------------------------
    # Search
    # ------------------------------------------------------------------------------------------------------------------

    def _prepare_queries(self, query_embeds: np.ndarray | torch.Tensor) -> torch.Tensor:
        array, _ = _as_float32_matrix(query_embeds, "query_embeds")
        if array.ndim != 2:
            raise DataFormatError(f"query_embeds must have shape (Q, D), got shape {tuple(array.shape)}")
        if array.shape[1] != self.dim:
            raise DataFormatError(
                f"query embeddings have dimension {array.shape[1]} but the gallery's embeddings have dimension {self.dim}"
            )
        bad = _first_non_finite_row(array)
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

    def _exclusion_positions(self, exclude_ids: Sequence[str | None] | None, num_queries: int) -> np.ndarray:
        """`(Q,)` int64 gallery position to exclude per query, `-1` for none (or an id not in the gallery)."""
        if exclude_ids is None:
            return np.full(num_queries, -1, dtype=np.int64)
        if isinstance(exclude_ids, str):
            raise ValueError("exclude_ids must be a sequence with one id (or None) per query, got a single string")
        if len(exclude_ids) != num_queries:
            raise ValueError(f"got {num_queries} queries but {len(exclude_ids)} exclude_ids")
        return np.array([self._id_to_index.get(v, -1) if v is not None else -1 for v in exclude_ids], dtype=np.int64)

    def search(
        self,
        query_embeds: np.ndarray | torch.Tensor,
        top_k: int = 50,
        exclude_ids: Sequence[str | None] | None = None,
        batch_size: int = 1024,
        *,
        backend: Literal["exact", "faiss"] | None = None,
        gallery_chunk_size: int = 16384,
        nprobe: int | None = None,
        ef_search: int | None = None,
    ) -> SearchResult:
        """Finds the `top_k` gallery videos with the highest inner product with each query.

        Args:
            query_embeds: `(Q, D)` array or tensor (any device, any float dtype); normalised when `normalize`.
            top_k: number of results per query. The result has `k = min(top_k, N - e)` columns, where `N` is the
                gallery size and `e` is 1 if some query's excluded id is in the gallery, else 0.
            exclude_ids: optional, per query, a video id to leave out of its results (its own video) or `None`.
                The video is removed, not just lowered; an id that is not in the gallery excludes nothing.
            batch_size: queries scored at a time.
            backend: `"exact"` or `"faiss"`; by default FAISS when an index was built, else exact.
            gallery_chunk_size: gallery rows scored at a time by exact search; with `batch_size` it bounds the score
                block to `batch_size * gallery_chunk_size` floats (64 MiB by default).
            nprobe: FAISS IVF only: inverted lists visited per query (defaults to the value given at build time).
            ef_search: FAISS HNSW only: search beam width (defaults to the value given at build time, at least k).

        Returns:
            A [`SearchResult`] with `(Q, k)` scores and indices and per-query video ids, best first; ties ordered by
            gallery position.
        """
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
        if batch_size < 1 or gallery_chunk_size < 1:
            raise ValueError("batch_size and gallery_chunk_size must be positive")
        queries = self._prepare_queries(query_embeds)
        excluded = self._exclusion_positions(exclude_ids, queries.shape[0])
        k = min(int(top_k), len(self) - int((excluded >= 0).any()))

        if backend is None:
            backend = "faiss" if self._faiss_index is not None else "exact"
        if k == 0 or queries.shape[0] == 0:
            scores = np.zeros((queries.shape[0], 0), dtype=np.float32)
            indices = np.zeros((queries.shape[0], 0), dtype=np.int64)
        elif backend == "exact":
            scores, indices = self._exact_search(queries, k, excluded, batch_size, gallery_chunk_size)
        elif backend == "faiss":
            if self._faiss_index is None:
                raise ValueError("no FAISS index: call build_faiss_index() first (or construct with backend='faiss')")
            scores, indices = self._faiss_search(queries, k, excluded, batch_size, nprobe, ef_search)
        else:
            raise ValueError(f"backend must be 'exact' or 'faiss', got {backend!r}")
        return self._to_result(scores, indices)

    def _to_result(self, scores: np.ndarray, indices: np.ndarray) -> SearchResult:
        ids = self._video_ids
        video_ids = [[ids[i] for i in row if i >= 0] for row in indices.tolist()]
        paths = None
        if self._paths is not None:
            paths = [[self._paths[i] for i in row if i >= 0] for row in indices.tolist()]
        return SearchResult(scores=scores, indices=indices, video_ids=video_ids, paths=paths)

    def _gallery_tensor(self, start: int, stop: int) -> torch.Tensor:
        block = self._embeddings[start:stop]
        if not block.flags.writeable:
            # Memory-mapped read-only galleries: torch warns that it cannot guarantee read-only-ness; we never write.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                return torch.from_numpy(block)
        return torch.from_numpy(block)

    @torch.inference_mode()
    def _exact_search(
        self, queries: torch.Tensor, k: int, excluded: np.ndarray, batch_size: int, chunk_size: int
    ) -> tuple[np.ndarray, np.ndarray]:
        num_queries, num_videos = queries.shape[0], len(self)
        excluded_t = torch.from_numpy(excluded)
        all_scores = np.empty((num_queries, k), dtype=np.float32)
        all_indices = np.empty((num_queries, k), dtype=np.int64)
        # One score buffer for every block: a fresh (B, G) tensor per block costs its page faults again each time
        # (large allocations go back to the OS when freed), a sizeable share of the product's own time.
        buffer = queries.new_empty(min(batch_size, num_queries) * min(chunk_size, num_videos))
        for q_start in range(0, num_queries, batch_size):
            batch = queries[q_start : q_start + batch_size]
            batch_excluded = excluded_t[q_start : q_start + batch_size]
            best_scores = batch.new_empty((batch.shape[0], 0))
            best_indices = torch.empty((batch.shape[0], 0), dtype=torch.int64)
            for g_start in range(0, num_videos, chunk_size):
                gallery = self._gallery_tensor(g_start, g_start + chunk_size)
                block = buffer[: batch.shape[0] * gallery.shape[0]].view(batch.shape[0], -1)  # (B, G)
                torch.mm(batch, gallery.T, out=block)
                rows = torch.nonzero((batch_excluded >= g_start) & (batch_excluded < g_start + gallery.shape[0]))[:, 0]
                if rows.numel():
                    block[rows, batch_excluded[rows] - g_start] = -math.inf
                cand_scores, cand_indices = _topk_lowest_index_on_ties(block, min(k, block.shape[1]))
                best_scores, best_indices = _sort_by_score_then_index(
                    torch.cat([best_scores, cand_scores], dim=1),
                    torch.cat([best_indices, cand_indices + g_start], dim=1),
                )
                best_scores, best_indices = best_scores[:, :k], best_indices[:, :k]
            all_scores[q_start : q_start + batch.shape[0]] = best_scores.numpy()
            all_indices[q_start : q_start + batch.shape[0]] = best_indices.numpy()
        return all_scores, all_indices

    # ------------------------------------------------------------------------------------------------------------------
    # FAISS
    # ------------------------------------------------------------------------------------------------------------------

    def build_faiss_index(
        self,
        kind: FaissKind = "flat",
        *,
        nlist: int | None = None,
        nprobe: int = 16,
        m: int = 32,
        ef_construction: int = 200,
        ef_search: int = 128,
        max_train_points: int = 262144,
        seed: int = 0,
    ) -> faiss.Index:
        """Builds a FAISS inner-product index over the gallery, used by [`~RetrievalIndex.search`] from then on.

        Args:
            kind: `"flat"` (exact, same results as exact search), `"ivf"` (inverted file, `IVF{nlist},Flat`) or
                `"hnsw"` (graph, `HNSW{m},Flat`) for large galleries.
            nlist: IVF only: number of clusters; default `4 * sqrt(N)`, capped so that each cluster has about 39
                training points.
            nprobe: IVF only: default number of clusters visited per query (the recall/speed knob).
            m: HNSW only: neighbours per node.
            ef_construction: HNSW only: beam width while building.
            ef_search: HNSW only: default beam width while searching (the recall/speed knob).
            max_train_points: IVF only: at most this many gallery rows (sampled with `seed`) train the clusters.
            seed: sampling seed for IVF training.

        Returns:
            The FAISS index (also kept in [`~RetrievalIndex.faiss_index`] and written by [`~RetrievalIndex.save`]).
        """
        faiss = _import_faiss()
        num_videos = len(self)
        if kind == "flat":
            index = faiss.index_factory(self.dim, "Flat", faiss.METRIC_INNER_PRODUCT)
            config: dict[str, Any] = {"kind": "flat"}
        elif kind == "ivf":
            if nlist is None:
                nlist = max(1, min(round(4 * math.sqrt(num_videos)), num_videos // 39))
            if not 1 <= nlist <= num_videos:
                raise ValueError(f"nlist must be between 1 and the gallery size {num_videos}, got {nlist}")
            index = faiss.index_factory(self.dim, f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
            rows = np.arange(num_videos)
            if num_videos > max_train_points:
                rows = np.sort(np.random.default_rng(seed).choice(num_videos, max_train_points, replace=False))
            index.train(np.ascontiguousarray(self._embeddings[rows]))
            config = {"kind": "ivf", "nlist": int(nlist), "nprobe": int(min(nprobe, nlist))}
        elif kind == "hnsw":
            index = faiss.index_factory(self.dim, f"HNSW{m},Flat", faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = int(ef_construction)
            config = {"kind": "hnsw", "m": int(m), "ef_construction": int(ef_construction), "ef_search": int(ef_search)}
        else:
            raise ValueError(f"kind must be 'flat', 'ivf' or 'hnsw', got {kind!r}")
        if kind == "ivf":
            _add_to_presized_lists(faiss, index, self._embeddings)
        else:
            # One call: FAISS grows its storage by doubling, so adding in pieces would leave up to half of it unused.
            # The stored array is already C-contiguous float32, so no temporary copy is made.
            index.add(self._embeddings)
        self._faiss_index = index
        self._faiss_config = config
        return index

    def _faiss_search(
        self,
        queries: torch.Tensor,
        k: int,
        excluded: np.ndarray,
        batch_size: int,
        nprobe: int | None,
        ef_search: int | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        faiss = _import_faiss()
        config = self._faiss_config or {"kind": "flat"}
        # One extra result per query, so that removing the excluded video still leaves k.
        fetch = min(k + int((excluded >= 0).any()), len(self))
        params = None
        if config["kind"] == "ivf":
            params = faiss.SearchParametersIVF(nprobe=int(nprobe or config["nprobe"]))
        elif config["kind"] == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(int(ef_search or config["ef_search"]), fetch))
        queries_np = queries.numpy()
        all_scores = np.empty((queries_np.shape[0], k), dtype=np.float32)
        all_indices = np.empty((queries_np.shape[0], k), dtype=np.int64)
        for start in range(0, queries_np.shape[0], batch_size):
            batch = np.ascontiguousarray(queries_np[start : start + batch_size])
            scores, indices = self._faiss_index.search(batch, fetch, params=params)
            valid = (indices >= 0) & (indices != excluded[start : start + batch_size, None])
            scores = np.where(valid, scores, -np.inf).astype(np.float32)
            indices = np.where(valid, indices, -1).astype(np.int64)
            # Same order as exact search within the returned set: score descending, then gallery position; empty last.
            position_key = np.where(valid, indices, np.iinfo(np.int64).max)
            order = np.lexsort((position_key, -scores), axis=-1)[:, :k]
            all_scores[start : start + batch.shape[0]] = np.take_along_axis(scores, order, axis=1)
            all_indices[start : start + batch.shape[0]] = np.take_along_axis(indices, order, axis=1)
        return all_scores, all_indices

    # ------------------------------------------------------------------------------------------------------------------
    # Persistence
    # ------------------------------------------------------------------------------------------------------------------

    def save(self, directory: str | os.PathLike) -> None:
        """Writes the index to `directory` (created if needed).

        Files: `embeddings.npy` (the float32 gallery, normalised when `normalize`, so that a memory-mapped load needs
        no pass over it), `retrieval_index.json` (ids, paths, settings) and, when built, `faiss.index`. Each file is
        written to a temporary name and renamed into place; the JSON file is written last.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        embeddings = self._embeddings
        _write_atomically(
            directory / _EMBEDDINGS_FILE,
            lambda tmp: _fsync_write(tmp, lambda f: np.lib.format.write_array(f, embeddings, allow_pickle=False)),
        )
        faiss_path = directory / _FAISS_FILE
        if self._faiss_index is not None:
            faiss = _import_faiss()
            _write_atomically(faiss_path, lambda tmp: faiss.write_index(self._faiss_index, str(tmp)))
        elif faiss_path.exists():
            faiss_path.unlink()  # a stale index from an earlier save would not match these embeddings
        metadata = {
            "format_version": _FORMAT_VERSION,
            "num_videos": len(self),
            "dim": self.dim,
            "dtype": "float32",
            "normalize": self.normalize,
            "normalized": self.normalize,
            "embeddings_file": _EMBEDDINGS_FILE,
            "faiss": None if self._faiss_index is None else {**(self._faiss_config or {}), "file": _FAISS_FILE},
            "video_ids": list(self._video_ids),
            "paths": None if self._paths is None else list(self._paths),
        }
        text = json.dumps(metadata, ensure_ascii=False)
        _write_atomically(
            directory / _METADATA_FILE, lambda tmp: _fsync_write(tmp, lambda f: f.write(text.encode("utf-8")))
        )

    @classmethod
    def load(
        cls, directory: str | os.PathLike, mmap: bool = True, load_faiss: bool = True, validate: bool = True
    ) -> RetrievalIndex:
        """Loads an index written by [`~RetrievalIndex.save`].

        Args:
            directory: the folder given to `save`.
            mmap: memory-map `embeddings.npy` (read-only, `np.memmap`) instead of reading it into memory.
            load_faiss: also read the saved FAISS index, if any.
            validate: scan the embeddings for NaN/inf (reads the whole file once, in chunks).
        """
        directory = Path(directory)
        metadata_path = directory / _METADATA_FILE
        if not metadata_path.is_file():
            raise FileNotFoundError(f"no retrieval index in {str(directory)!r}: {_METADATA_FILE} is missing")
        try:
            metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError is a ValueError
            raise DataFormatError(f"{metadata_path} is not a valid {_METADATA_FILE} ({error})") from None
        if not isinstance(metadata, dict):
            raise DataFormatError(f"{metadata_path} holds a {type(metadata).__name__}, expected a JSON object")
        if metadata.get("format_version") != _FORMAT_VERSION:
            raise DataFormatError(
                f"{metadata_path} has format version {metadata.get('format_version')!r}; expected {_FORMAT_VERSION}"
            )
        missing = [key for key in ("embeddings_file", "num_videos", "dim", "video_ids", "paths", "normalize",
                                   "normalized") if key not in metadata]
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
                f"{_METADATA_FILE} expects float32 {expected_shape}"
            )
        index = cls.__new__(cls)
        index._setup(
            metadata["video_ids"],
            embeddings,
            metadata["paths"],
            normalize=metadata["normalize"],
            owned=not mmap,
            normalized=metadata["normalized"],
            validate=validate,
        )
        faiss_meta = metadata.get("faiss")
        if load_faiss and faiss_meta is not None:
            faiss = _import_faiss()
            faiss_index = faiss.read_index(str(directory / faiss_meta["file"]))
            if faiss_index.ntotal != len(index) or faiss_index.d != index.dim:
                raise DataFormatError(f"the saved FAISS index in {str(directory)!r} does not match the embeddings")
            index._faiss_index = faiss_index
            index._faiss_config = {key: value for key, value in faiss_meta.items() if key != "file"}
        return index

    # ------------------------------------------------------------------------------------------------------------------
    # Hub: a gallery as a dataset repository (parquet + settings + dataset card)
    # ------------------------------------------------------------------------------------------------------------------

    def save_pretrained(self, directory: str | os.PathLike, repo_id: str | None = None, model_id: str | None = None,
                        license: str = "mit") -> Path:
        """Writes the gallery as a Hub dataset folder: `data/gallery.parquet` (`video_id`, `embedding` as a
        fixed-size float32 list, and `path` when the index has paths), `retrieval_index_config.json` (the settings)
        and a dataset card (`README.md`, through `huggingface_hub.DatasetCard`). No pickle, no `.npy`; the table
        also loads with `datasets.load_dataset`. [`~RetrievalIndex.from_pretrained`] reads it back.

        Args:
            repo_id: the repository the card's snippet loads (default: a placeholder).
            model_id: the model that computed the embeddings, named in the card.
        """
        import pyarrow as pa

        embeddings_to_table = _package_module("data.embeddings").embeddings_to_table
        write_parquet_atomic = _package_module("data.tfcovr_csv").write_parquet_atomic
        build_gallery_card = _package_module("model_card").build_gallery_card

        directory = Path(directory)
        (directory / "data").mkdir(parents=True, exist_ok=True)
        table = embeddings_to_table(self._video_ids, np.asarray(self._embeddings))
        if self._paths is not None:
            table = table.append_column("path", pa.array(list(self._paths), type=pa.string()))
        write_parquet_atomic(table, directory / _HUB_DATA_FILE)
        config = {"format_version": _FORMAT_VERSION, "num_videos": len(self), "dim": self.dim,
                  "normalize": self.normalize, "normalized": self.normalize, "data_file": _HUB_DATA_FILE,
                  "model_id": model_id}
        text = json.dumps(config, indent=2)
        _write_atomically(directory / _HUB_CONFIG_FILE, lambda tmp: _fsync_write(tmp, lambda f: f.write(text.encode())))
        card = build_gallery_card(len(self), self.dim, self._paths is not None, _HUB_DATA_FILE, license=license,
                                  model_id=model_id)
        card_text = str(card).replace("REPO_ID", repo_id or "your-name/tfcovr-gallery")
        _write_atomically(directory / "README.md", lambda tmp: _fsync_write(tmp, lambda f: f.write(card_text.encode())))
        return directory

    @classmethod
    def from_pretrained(
        cls,
        repo_id_or_path: str | os.PathLike,
        revision: str | None = None,
        token: str | bool | None = None,
        backend: Literal["exact", "faiss"] = "exact",
    ) -> RetrievalIndex:
        """Loads a gallery from a local folder or a Hub dataset repository at `revision` (branch, tag or commit),
        through `snapshot_download` and its cache (so it also works offline, `HF_HUB_OFFLINE=1`, once fetched).

        The folder is one written by [`~RetrievalIndex.save_pretrained`] / [`~RetrievalIndex.push_to_hub`] (parquet),
        or by [`~RetrievalIndex.save`] (read with [`~RetrievalIndex.load`]).
        """
        read_embeddings = _package_module("data.embeddings").read_embeddings
        resolve_folder = _package_module("hub").resolve_folder

        folder = resolve_folder(repo_id_or_path, revision=revision, repo_type="dataset", token=token)
        if (folder / _METADATA_FILE).is_file():
            return cls.load(folder)
        config_path = folder / _HUB_CONFIG_FILE
        if not config_path.is_file():
            raise FileNotFoundError(f"no gallery in {str(repo_id_or_path)!r}: neither {_HUB_CONFIG_FILE} "
                                    f"(save_pretrained / push_to_hub) nor {_METADATA_FILE} (save)")
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
            data_file = folder / config["data_file"]
            normalize, normalized = bool(config["normalize"]), bool(config["normalized"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
            raise DataFormatError(f"{config_path} is not a valid {_HUB_CONFIG_FILE} ({error!r})") from None
        # lexically (a Hub snapshot's files are symlinks into the cache's blobs)
        if os.path.isabs(config["data_file"]) or ".." in Path(config["data_file"]).parts:
            raise DataFormatError(f"{config_path} names a data file outside its folder: {config['data_file']!r}")
        video_ids, embeddings = read_embeddings(data_file, expected_dim=config.get("dim"))
        if len(video_ids) != config.get("num_videos", len(video_ids)):
            raise DataFormatError(f"{data_file} has {len(video_ids)} rows; {_HUB_CONFIG_FILE} says {config['num_videos']}")
        import pyarrow.parquet as pq

        schema = pq.read_schema(data_file)
        paths = pq.read_table(data_file, columns=["path"]).column("path").to_pylist() if "path" in schema.names else None
        index = cls.__new__(cls)
        index._setup(video_ids, embeddings, paths, normalize=normalize, owned=True, normalized=normalized, validate=True)
        if backend == "faiss":
            index.build_faiss_index("flat")
        return index

    def push_to_hub(
        self,
        repo_id: str,
        private: bool | None = None,
        token: str | None = None,
        revision: str | None = None,
        commit_message: str | None = None,
        create_pr: bool = False,
        model_id: str | None = None,
    ) -> str:
        """Uploads the gallery as a Hub dataset repository (see [`~RetrievalIndex.save_pretrained`] for the files),
        creating the repository if needed; `revision` is the branch to commit to. Returns the commit URL."""
        import tempfile

        from huggingface_hub import HfApi

        api = HfApi(token=token)
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        with tempfile.TemporaryDirectory() as scratch:
            self.save_pretrained(scratch, repo_id=repo_id, model_id=model_id)
            info = api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=scratch, revision=revision,
                                     create_pr=create_pr, commit_message=commit_message or "Upload TF-CoVR gallery")
        return str(getattr(info, "commit_url", info))


def _package_module(name: str) -> Any:
    """A module of the installed package, imported by name: this file also travels alone with saved models as remote
    code (the pipeline imports it), where only search, `save` and `load` are needed; transformers copies every module
    a `from .x import` names, so the Hub methods' helpers are imported this way instead."""
    import importlib

    try:
        return importlib.import_module(f".{name}", __package__)
    except ImportError:
        raise ImportError(f"this needs the modeling_tfcovr package (module {name!r} is missing here); "
                          "install it to save galleries to or load them from the Hub") from None


def _add_to_presized_lists(faiss: Any, index: Any, embeddings: np.ndarray) -> None:
    """Adds `embeddings` (N, D) to a trained IVF index whose lists are sized exactly, not grown by doubling.

    `index.add` appends row by row, and each list's storage doubles when full: about a quarter of a gallery's size
    ends up allocated but unused. Here every row is assigned to its list first, each list is resized to its final
    length and back to zero (the allocation stays), and the rows are added with their precomputed assignments.
    """
    num_rows = embeddings.shape[0]
    assignments = np.empty(num_rows, dtype=np.int64)
    for start in range(0, num_rows, _ROW_CHUNK):
        _, nearest = index.quantizer.search(np.ascontiguousarray(embeddings[start : start + _ROW_CHUNK]), 1)
        assignments[start : start + _ROW_CHUNK] = nearest[:, 0]
    lists = faiss.downcast_InvertedLists(faiss.extract_index_ivf(index).invlists)
    for list_number, size in enumerate(np.bincount(assignments, minlength=index.nlist).tolist()):
        lists.resize(list_number, size)
        lists.resize(list_number, 0)
    for start in range(0, num_rows, _ROW_CHUNK):
        block = np.ascontiguousarray(embeddings[start : start + _ROW_CHUNK])
        block_assignments = np.ascontiguousarray(assignments[start : start + _ROW_CHUNK])
        # Without explicit ids, FAISS numbers the rows ntotal, ntotal + 1, ...: the gallery positions.
        index.add_core(block.shape[0], faiss.swig_ptr(block), None, faiss.swig_ptr(block_assignments))


# ----------------------------------------------------------------------------------------------------------------------
# Deterministic top-k
# ----------------------------------------------------------------------------------------------------------------------


def _topk_lowest_index_on_ties(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of each row of `scores` (B, G), choosing the lowest column indices among ties at the k-th value.

    `torch.topk` picks an arbitrary subset of the elements tied with the k-th largest value. Rows where more elements
    reach that value than fit are recomputed: every element above the k-th value, plus the first tied elements by
    column. The output (B, k) is not sorted.
    """
    # Top-(k+1), sorted: a tie can straddle the boundary only where the (k+1)-th value equals the k-th, so only
    # those rows are scanned in full (scanning every row would cost more than the top-k itself).
    extended = min(k + 1, scores.shape[1])
    values, indices = torch.topk(scores, extended, dim=1, largest=True, sorted=True)
    if extended == k:
        return values, indices
    tie_rows = torch.nonzero(values[:, k] == values[:, k - 1])[:, 0]
    values, indices = values[:, :k].contiguous(), indices[:, :k].contiguous()
    kth = values[:, k - 1 :]  # (B, 1)
    if tie_rows.numel():
        sub, threshold = scores[tie_rows], kth[tie_rows]
        above = sub > threshold
        equal = sub == threshold
        needed = k - above.sum(dim=1, keepdim=True)
        take = above | (equal & (torch.cumsum(equal, dim=1) <= needed))
        columns = torch.nonzero(take)[:, 1].view(-1, k)  # exactly k per row, ascending column order
        indices[tie_rows] = columns
        values[tie_rows] = sub.gather(1, columns)
    return values, indices


def _sort_by_score_then_index(scores: torch.Tensor, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorts each row by score descending, then by index ascending (B, C) -> (B, C); C is small (about 2k)."""
    order = torch.argsort(indices, dim=1)
    scores, indices = scores.gather(1, order), indices.gather(1, order)
    order = torch.argsort(scores, dim=1, descending=True, stable=True)
    return scores.gather(1, order), indices.gather(1, order)
