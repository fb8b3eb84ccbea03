# Copyright 2025 The TF-CoVR-HF authors. Licensed under the MIT License.
"""The search half of a retrieval index: top-k inner-product search over a [`GalleryStore`].

- [`ExactSearcher`]: chunked matrix products and `torch.topk`, never a full sort; deterministic on ties (score
  descending, then gallery position ascending, also at the top-k boundary).
- [`FaissSearcher`]: any FAISS index described by an `index_factory` string (`"Flat"`, `"IVF1024,Flat"`,
  `"HNSW32"`, `"IVF256,PQ32"`, ...) with its parameters in FAISS's own `ParameterSpace` vocabulary
  (`"nprobe=16"`, `"efSearch=128,efConstruction=200"`).

Both return `(Q, k)` float32 scores and int64 gallery positions, best first, with each query's excluded position
left out.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .gallery_store import GalleryStore
from .io_utils import atomic_path

__all__ = ["ExactSearcher", "FaissSearcher", "import_faiss", "parse_faiss_parameters", "resolve_faiss_factory"]

# Gallery rows assigned / added at a time while filling an IVF index (bounded temporary memory).
_ROW_CHUNK = 65536
# Search-time parameters recorded at build time (so that a per-search override can be undone).
_SEARCH_PARAMETERS = ("nprobe", "efSearch")


def import_faiss() -> Any:
    try:
        import faiss
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "FAISS search needs the `faiss-cpu` (or `faiss-gpu`) package: pip install 'tfcovr[faiss]'"
        ) from error
    return faiss


# ----------------------------------------------------------------------------------------------------------------------
# Exact search
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


class ExactSearcher:
    """Exact top-k: batches of queries times chunks of the gallery, each block reduced to its best `k`.

    Args:
        store: the gallery.
    """

    def __init__(self, store: GalleryStore) -> None:
        self.store = store

    @torch.inference_mode()
    def search(
        self, queries: torch.Tensor, k: int, excluded: np.ndarray, batch_size: int = 1024, chunk_size: int = 16384
    ) -> tuple[np.ndarray, np.ndarray]:
        """`(Q, k)` scores and positions of the best `k` rows per query; `excluded[q]` (or `-1`) is left out."""
        num_queries, num_videos = queries.shape[0], len(self.store)
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
                gallery = self.store.array[g_start : g_start + chunk_size]
                block = buffer[: batch.shape[0] * gallery.shape[0]].view(batch.shape[0], -1)  # (B, G)
                # NumPy's BLAS (OpenBLAS) computes this float32 product as fast as torch's CPU BLAS or faster: 0.84 s
                # against 1.43 s for 1,000 x 100,000 x 768 on an AMD EPYC, where MKL takes its generic path.
                np.matmul(batch.numpy(), gallery.T, out=block.numpy())
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


# ----------------------------------------------------------------------------------------------------------------------
# FAISS
# ----------------------------------------------------------------------------------------------------------------------


def parse_faiss_parameters(parameters: str | None) -> dict[str, str]:
    """`"nprobe=16,efSearch=64"` -> `{"nprobe": "16", "efSearch": "64"}` (FAISS `ParameterSpace` syntax)."""
    parsed: dict[str, str] = {}
    for item in (parameters or "").split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ValueError(f"FAISS parameters are 'name=value' pairs separated by commas, got {parameters!r}")
        parsed[name.strip()] = value.strip()
    return parsed


def _format_parameters(parameters: dict[str, str]) -> str:
    return ",".join(f"{name}={value}" for name, value in parameters.items())


def resolve_faiss_factory(factory: str, num_videos: int) -> tuple[str, str]:
    """Maps the short names to `index_factory` strings and their default parameters; other strings pass unchanged.

    `"flat"` -> `"Flat"`; `"ivf"` -> `"IVF{nlist},Flat"` with `nlist = 4 sqrt(N)` (at most `N / 39`, so that each
    cluster has about 39 training points) and `nprobe=16`; `"hnsw"` -> `"HNSW32"` with `efConstruction=200` and
    `efSearch=128`.
    """
    if factory == "flat":
        return "Flat", ""
    if factory == "ivf":
        nlist = max(1, min(round(4 * math.sqrt(num_videos)), num_videos // 39))
        return f"IVF{nlist},Flat", f"nprobe={min(16, nlist)}"
    if factory == "hnsw":
        return "HNSW32", "efConstruction=200,efSearch=128"
    return factory, ""


def _first_line(error: Exception) -> str:
    message = str(error).strip().splitlines()
    return message[-1] if message else type(error).__name__


class FaissSearcher:
    """A FAISS inner-product index over a gallery, with its `index_factory` string and `ParameterSpace` parameters.

    Build one with [`~FaissSearcher.build`]; positions returned are gallery rows (FAISS numbers added rows in order).
    """

    def __init__(self, index: Any, factory: str, parameters: str = "") -> None:
        self.index = index
        self.factory = factory
        self._parameters = parse_faiss_parameters(parameters)
        self._lock = threading.Lock()
        self._apply(self._parameters)

    @property
    def parameters(self) -> str:
        """The parameters in effect between searches, e.g. `"nprobe=16"`."""
        return _format_parameters(self._parameters)

    @property
    def config(self) -> dict[str, str]:
        return {"factory": self.factory, "parameters": self.parameters}

    def _apply(self, parameters: dict[str, str]) -> None:
        if not parameters:
            return
        faiss = import_faiss()
        try:
            faiss.ParameterSpace().set_index_parameters(self.index, _format_parameters(parameters))
        except RuntimeError as error:
            raise ValueError(
                f"FAISS cannot set {_format_parameters(parameters)!r} on a {self.factory!r} index "
                f"({_first_line(error)})"
            ) from None

    @classmethod
    def build(
        cls,
        store: GalleryStore,
        factory: str = "Flat",
        parameters: str | None = None,
        *,
        max_train_points: int = 262144,
        seed: int = 0,
    ) -> FaissSearcher:
        """Builds `faiss.index_factory(D, factory, METRIC_INNER_PRODUCT)`, trains it when it needs training (on at
        most `max_train_points` gallery rows sampled with `seed`), sets `parameters` (before adding, so that build
        parameters such as `efConstruction` apply) and adds the gallery.

        `factory` also takes the short names `"flat"`, `"ivf"` and `"hnsw"` (see [`resolve_faiss_factory`]);
        `parameters` are added to (and override) their defaults.
        """
        faiss = import_faiss()
        num_videos = len(store)
        factory, defaults = resolve_faiss_factory(factory, num_videos)
        merged = {**parse_faiss_parameters(defaults), **parse_faiss_parameters(parameters)}
        try:
            index = faiss.index_factory(store.dim, factory, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as error:
            raise ValueError(f"FAISS index_factory cannot build {factory!r} ({_first_line(error)})") from None
        if not index.is_trained:
            rows = np.arange(num_videos)
            if num_videos > max_train_points:
                rows = np.sort(np.random.default_rng(seed).choice(num_videos, max_train_points, replace=False))
            try:
                index.train(np.ascontiguousarray(store.array[rows]))
            except RuntimeError as error:
                raise ValueError(
                    f"FAISS cannot train {factory!r} on {len(rows)} gallery rows ({_first_line(error)})"
                ) from None
        searcher = cls(index, factory, _format_parameters(merged))
        # Record the search-time knobs FAISS defaulted, so that a per-search override can be undone.
        ivf = faiss.try_extract_index_ivf(index)
        if ivf is not None:
            searcher._parameters.setdefault("nprobe", str(ivf.nprobe))
        if hasattr(index, "hnsw"):
            searcher._parameters.setdefault("efSearch", str(index.hnsw.efSearch))
        if isinstance(index, faiss.IndexIVF):
            _add_to_presized_lists(faiss, index, store.array)
        else:
            # One call: FAISS grows its storage by doubling, so adding in pieces would leave up to half of it unused.
            # The stored array is already C-contiguous float32, so no temporary copy is made.
            index.add(store.array)
        return searcher

    def search(
        self, queries: torch.Tensor, k: int, excluded: np.ndarray, batch_size: int = 1024, parameters: str | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """`(Q, k)` scores and positions, ordered as exact search orders them within the returned set; empty slots
        (approximate indexes only) hold `-inf` and `-1`. `parameters` override search parameters for this call."""
        override = parse_faiss_parameters(parameters)
        unknown = sorted(set(override) - set(self._parameters))
        if unknown:
            raise ValueError(
                f"cannot override {', '.join(unknown)} per search on a {self.factory!r} index (its parameters: "
                f"{self.parameters or 'none'}); set it when building the index"
            )
        # The parameters live on the shared index: one search at a time sees (and may override) them.
        with self._lock:
            if not override:
                return self._search(queries, k, excluded, batch_size)
            self._apply(override)
            try:
                return self._search(queries, k, excluded, batch_size)
            finally:
                self._apply({name: self._parameters[name] for name in override})

    def _search(
        self, queries: torch.Tensor, k: int, excluded: np.ndarray, batch_size: int
    ) -> tuple[np.ndarray, np.ndarray]:
        # One extra result per query, so that removing the excluded video still leaves k.
        fetch = min(k + int((excluded >= 0).any()), self.index.ntotal)
        queries_np = queries.numpy()
        all_scores = np.empty((queries_np.shape[0], k), dtype=np.float32)
        all_indices = np.empty((queries_np.shape[0], k), dtype=np.int64)
        for start in range(0, queries_np.shape[0], batch_size):
            batch = np.ascontiguousarray(queries_np[start : start + batch_size])
            scores, indices = self.index.search(batch, fetch)
            valid = (indices >= 0) & (indices != excluded[start : start + batch_size, None])
            scores = np.where(valid, scores, -np.inf).astype(np.float32)
            indices = np.where(valid, indices, -1).astype(np.int64)
            # Same order as exact search within the returned set: score descending, then gallery position; empty last.
            position_key = np.where(valid, indices, np.iinfo(np.int64).max)
            order = np.lexsort((position_key, -scores), axis=-1)[:, :k]
            all_scores[start : start + batch.shape[0]] = np.take_along_axis(scores, order, axis=1)
            all_indices[start : start + batch.shape[0]] = np.take_along_axis(indices, order, axis=1)
        return all_scores, all_indices

    def save(self, path: Path) -> None:
        faiss = import_faiss()
        with atomic_path(path) as tmp_path:
            faiss.write_index(self.index, str(tmp_path))

    @classmethod
    def load(cls, path: Path, config: dict[str, Any]) -> FaissSearcher:
        """Reads a saved index; `config` is its `{"factory", "parameters"}` record (or the older `{"kind", ...}`)."""
        faiss = import_faiss()
        index = faiss.read_index(str(path))
        if "factory" in config:
            return cls(index, config["factory"], config.get("parameters", ""))
        kind = config.get("kind")  # format of the first release: the kind and its knobs
        if kind == "ivf":
            return cls(index, f"IVF{config['nlist']},Flat", f"nprobe={config['nprobe']}")
        if kind == "hnsw":
            return cls(index, f"HNSW{config['m']}", f"efSearch={config['ef_search']}")
        return cls(index, "Flat")


def _add_to_presized_lists(faiss: Any, index: Any, embeddings: np.ndarray) -> None:
    """Adds `embeddings` (N, D) to a trained IVF index whose lists are sized exactly, not grown by doubling.

    `index.add` appends row by row, and each list's storage doubles when full: about a quarter of a gallery's size
    ends up allocated but unused. Here every row is assigned to its list first, each list is resized to its final
    length and back to zero (the allocation stays), and the rows are added with their assignments through FAISS's
    `add_preassigned`.
    """
    try:  # (in a try block: transformers' remote-code check then does not require faiss for the whole file)
        from faiss.contrib.ivf_tools import add_preassigned
    except ImportError as error:  # pragma: no cover - faiss itself imported, so its contrib is there
        raise ImportError("faiss.contrib.ivf_tools is missing from this FAISS installation") from error

    num_rows = embeddings.shape[0]
    assignments = np.empty(num_rows, dtype=np.int64)
    for start in range(0, num_rows, _ROW_CHUNK):
        _, nearest = index.quantizer.search(np.ascontiguousarray(embeddings[start : start + _ROW_CHUNK]), 1)
        assignments[start : start + _ROW_CHUNK] = nearest[:, 0]
    lists = faiss.downcast_InvertedLists(index.invlists)
    for list_number, size in enumerate(np.bincount(assignments, minlength=index.nlist).tolist()):
        lists.resize(list_number, size)
        lists.resize(list_number, 0)
    for start in range(0, num_rows, _ROW_CHUNK):
        # Without explicit ids, FAISS numbers the rows ntotal, ntotal + 1, ...: the gallery positions.
        add_preassigned(
            index,
            np.ascontiguousarray(embeddings[start : start + _ROW_CHUNK]),
            np.ascontiguousarray(assignments[start : start + _ROW_CHUNK]),
        )
