# Copyright 2025 The TF-CoVR-HF authors. Licensed under the MIT License.
"""A searchable gallery of video embeddings: exact top-k search, optional FAISS search, save and memory-mapped load.

[`RetrievalIndex`] puts together a [`~gallery_store.GalleryStore`] (ids, paths, the normalised float32 array,
validation, files) and the searchers of `searchers.py` (exact; FAISS through `index_factory` strings).

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
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from .errors import DataFormatError
from .gallery_store import FORMAT_VERSION, METADATA_FILE, GalleryStore
from .io_utils import atomic_write
from .searchers import ExactSearcher, FaissSearcher, _topk_lowest_index_on_ties  # noqa: F401 (re-exported)

if TYPE_CHECKING:
    import datasets

__all__ = ["RetrievalIndex", "SearchResult"]

_FAISS_FILE = "faiss.index"
_HUB_DATA_FILE = "data/gallery.parquet"
_HUB_CONFIG_FILE = "retrieval_index_config.json"


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


def _check_backend(backend: str) -> None:
    if backend not in ("exact", "faiss"):
        raise ValueError(f"backend must be 'exact' or 'faiss', got {backend!r}")


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
        DataFormatError: where [`GalleryStore`], which validates and holds the gallery, raises it.
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
        self._init_from_store(GalleryStore(video_ids, embeddings, paths, normalize=normalize, copy=copy), backend)

    def _init_from_store(self, store: GalleryStore, backend: str = "exact") -> None:
        _check_backend(backend)
        self._store = store
        self._exact = ExactSearcher(store)
        self._faiss: FaissSearcher | None = None
        if backend == "faiss":
            self.build_faiss_index("Flat")

    @classmethod
    def _from_store(cls, store: GalleryStore, backend: str = "exact") -> RetrievalIndex:
        index = cls.__new__(cls)
        index._init_from_store(store, backend)
        return index

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
        return len(self._store)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self._store

    def __repr__(self) -> str:
        factory = None if self._faiss is None else self._faiss.factory
        return (
            f"{type(self).__name__}(num_videos={len(self)}, dim={self.dim}, normalize={self.normalize}, "
            f"memory_mapped={self.is_memory_mapped}, faiss={factory!r})"
        )

    @property
    def store(self) -> GalleryStore:
        """The gallery storage (ids, paths, embeddings)."""
        return self._store

    @property
    def normalize(self) -> bool:
        """Whether gallery and queries are L2-normalised (scores are cosine similarities)."""
        return self._store.normalize

    @property
    def dim(self) -> int:
        """Embedding dimension `D`."""
        return self._store.dim

    @property
    def video_ids(self) -> tuple[str, ...]:
        """The gallery's video ids, in gallery order."""
        return self._store.video_ids

    @property
    def paths(self) -> tuple[str | None, ...] | None:
        """The gallery's display paths, or `None`."""
        return self._store.paths

    @property
    def embeddings(self) -> np.ndarray:
        """The `(N, D)` float32 gallery (normalised when `normalize`), as a read-only view."""
        return self._store.embeddings

    @property
    def _embeddings(self) -> np.ndarray:
        return self._store.array

    @property
    def is_memory_mapped(self) -> bool:
        """Whether the gallery is a memory-mapped file rather than an in-memory array."""
        return self._store.is_memory_mapped

    @property
    def faiss_index(self) -> Any:
        """The `faiss.Index` built by [`~RetrievalIndex.build_faiss_index`] (or loaded), else `None`."""
        return None if self._faiss is None else self._faiss.index

    @property
    def faiss_config(self) -> dict[str, str] | None:
        """`{"factory": ..., "parameters": ...}` of the FAISS index, else `None`."""
        return None if self._faiss is None else self._faiss.config

    def index_of(self, video_id: str) -> int:
        """Gallery position of `video_id`; `KeyError` naming it when it is not in the gallery."""
        return self._store.index_of(video_id)

    def get_embeddings(self, video_ids: Sequence[str]) -> np.ndarray:
        """The `(n, D)` float32 gallery embeddings of `video_ids` (a copy)."""
        return np.asarray(self._store.array[[self.index_of(v) for v in video_ids]])

    # ------------------------------------------------------------------------------------------------------------------
    # Search
    # ------------------------------------------------------------------------------------------------------------------

    def _exclusion_positions(self, exclude_ids: Sequence[str | None] | None, num_queries: int) -> np.ndarray:
        """`(Q,)` int64 gallery position to exclude per query, `-1` for none (or an id not in the gallery)."""
        if exclude_ids is None:
            return np.full(num_queries, -1, dtype=np.int64)
        if isinstance(exclude_ids, str):
            raise ValueError("exclude_ids must be a sequence with one id (or None) per query, got a single string")
        if len(exclude_ids) != num_queries:
            raise ValueError(f"got {num_queries} queries but {len(exclude_ids)} exclude_ids")
        return np.array([self._store.position_or_none(v) for v in exclude_ids], dtype=np.int64)

    def search(
        self,
        query_embeds: np.ndarray | torch.Tensor,
        top_k: int = 50,
        exclude_ids: Sequence[str | None] | None = None,
        batch_size: int = 1024,
        *,
        backend: Literal["exact", "faiss"] | None = None,
        gallery_chunk_size: int = 16384,
        faiss_parameters: str | None = None,
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
            faiss_parameters: FAISS only: search parameters for this call in FAISS's `ParameterSpace` vocabulary,
                e.g. `"nprobe=32"` (IVF) or `"efSearch=256"` (HNSW); by default those set at build time.

        Returns:
            A [`SearchResult`] with `(Q, k)` scores and indices and per-query video ids, best first; ties ordered by
            gallery position.
        """
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
        if batch_size < 1 or gallery_chunk_size < 1:
            raise ValueError("batch_size and gallery_chunk_size must be positive")
        queries = self._store.prepare_queries(query_embeds)
        excluded = self._exclusion_positions(exclude_ids, queries.shape[0])
        k = min(int(top_k), len(self) - int((excluded >= 0).any()))

        if backend is None:
            backend = "faiss" if self._faiss is not None else "exact"
        _check_backend(backend)
        if backend == "faiss" and self._faiss is None:
            raise ValueError("no FAISS index: call build_faiss_index() first (or construct with backend='faiss')")
        if k == 0 or queries.shape[0] == 0:
            scores = np.zeros((queries.shape[0], 0), dtype=np.float32)
            indices = np.zeros((queries.shape[0], 0), dtype=np.int64)
        elif backend == "exact":
            scores, indices = self._exact.search(queries, k, excluded, batch_size, gallery_chunk_size)
        else:
            scores, indices = self._faiss.search(queries, k, excluded, batch_size, faiss_parameters)
        return self._to_result(scores, indices)

    def _to_result(self, scores: np.ndarray, indices: np.ndarray) -> SearchResult:
        ids, all_paths = self.video_ids, self.paths
        video_ids = [[ids[i] for i in row if i >= 0] for row in indices.tolist()]
        paths = None
        if all_paths is not None:
            paths = [[all_paths[i] for i in row if i >= 0] for row in indices.tolist()]
        return SearchResult(scores=scores, indices=indices, video_ids=video_ids, paths=paths)

    # ------------------------------------------------------------------------------------------------------------------
    # FAISS
    # ------------------------------------------------------------------------------------------------------------------

    def build_faiss_index(
        self,
        factory: str = "Flat",
        parameters: str | None = None,
        *,
        max_train_points: int = 262144,
        seed: int = 0,
    ) -> Any:
        """Builds a FAISS inner-product index over the gallery, used by [`~RetrievalIndex.search`] from then on.

        Args:
            factory: a `faiss.index_factory` string: `"Flat"` (exact, same results as exact search),
                `"IVF1024,Flat"` (inverted file), `"HNSW32"` (graph), `"IVF1024,PQ32"`, ...; or one of the short
                names `"flat"`, `"ivf"` (`IVF{4 sqrt(N)},Flat`, `nprobe=16`) and `"hnsw"` (`HNSW32`,
                `efConstruction=200,efSearch=128`).
            parameters: FAISS `ParameterSpace` parameters, e.g. `"nprobe=16"` (IVF) or
                `"efConstruction=200,efSearch=128"` (HNSW); set before the gallery is added, kept for searches.
            max_train_points: indexes that need training (IVF, PQ) train on at most this many gallery rows.
            seed: sampling seed of the training rows.

        Returns:
            The `faiss.Index` (also in [`~RetrievalIndex.faiss_index`] and written by [`~RetrievalIndex.save`]).
        """
        self._faiss = FaissSearcher.build(
            self._store, factory, parameters, max_train_points=max_train_points, seed=seed
        )
        return self._faiss.index

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
        faiss_path = directory / _FAISS_FILE
        if self._faiss is not None:
            self._faiss.save(faiss_path)
        elif faiss_path.exists():
            faiss_path.unlink()  # a stale index from an earlier save would not match these embeddings
        faiss_meta = None if self._faiss is None else {**self._faiss.config, "file": _FAISS_FILE}
        self._store.save(directory, extra={"faiss": faiss_meta})

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
        store, metadata = GalleryStore.load(directory, mmap=mmap, validate=validate)
        index = cls._from_store(store)
        faiss_meta = metadata.get("faiss")
        if load_faiss and faiss_meta is not None:
            searcher = FaissSearcher.load(directory / faiss_meta["file"], faiss_meta)
            if searcher.index.ntotal != len(index) or searcher.index.d != index.dim:
                raise DataFormatError(f"the saved FAISS index in {str(directory)!r} does not match the embeddings")
            index._faiss = searcher
        return index

    # ------------------------------------------------------------------------------------------------------------------
    # Hub: a gallery as a dataset repository (parquet + settings + dataset card)
    # ------------------------------------------------------------------------------------------------------------------

    def save_pretrained(
        self,
        directory: str | os.PathLike,
        repo_id: str | None = None,
        model_id: str | None = None,
        license: str = "mit",
    ) -> Path:
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
        table = embeddings_to_table(self.video_ids, np.asarray(self._store.array))
        if self.paths is not None:
            table = table.append_column("path", pa.array(list(self.paths), type=pa.string()))
        write_parquet_atomic(table, directory / _HUB_DATA_FILE)
        config = {
            "format_version": FORMAT_VERSION,
            "num_videos": len(self),
            "dim": self.dim,
            "normalize": self.normalize,
            "normalized": self.normalize,
            "data_file": _HUB_DATA_FILE,
            "model_id": model_id,
        }
        text = json.dumps(config, indent=2)
        with atomic_write(directory / _HUB_CONFIG_FILE) as handle:
            handle.write(text.encode())
        card = build_gallery_card(
            len(self), self.dim, self.paths is not None, _HUB_DATA_FILE, license=license, model_id=model_id
        )
        card_text = str(card).replace("REPO_ID", repo_id or "your-name/tfcovr-gallery")
        with atomic_write(directory / "README.md") as handle:
            handle.write(card_text.encode())
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
        if (folder / METADATA_FILE).is_file():
            return cls.load(folder)
        config_path = folder / _HUB_CONFIG_FILE
        if not config_path.is_file():
            raise FileNotFoundError(
                f"no gallery in {str(repo_id_or_path)!r}: neither {_HUB_CONFIG_FILE} "
                f"(save_pretrained / push_to_hub) nor {METADATA_FILE} (save)"
            )
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
            raise DataFormatError(
                f"{data_file} has {len(video_ids)} rows; {_HUB_CONFIG_FILE} says {config['num_videos']}"
            )
        import pyarrow.parquet as pq

        schema = pq.read_schema(data_file)
        paths = (
            pq.read_table(data_file, columns=["path"]).column("path").to_pylist() if "path" in schema.names else None
        )
        store = GalleryStore(video_ids, embeddings, paths, normalize=normalize, copy=False, normalized=normalized)
        return cls._from_store(store, backend)

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
            info = api.upload_folder(
                repo_id=repo_id,
                repo_type="dataset",
                folder_path=scratch,
                revision=revision,
                create_pr=create_pr,
                commit_message=commit_message or "Upload TF-CoVR gallery",
            )
        return str(getattr(info, "commit_url", info))


def _package_module(name: str) -> Any:
    """A module of the installed package, imported by name: this file also travels alone with saved models as remote
    code (the pipeline imports it), where only search, `save` and `load` are needed; transformers copies every module
    a `from .x import` names, so the Hub methods' helpers are imported this way instead."""
    import importlib

    try:
        return importlib.import_module(f".{name}", __package__)
    except ImportError:
        raise ImportError(
            f"this needs the modeling_tfcovr package (module {name!r} is missing here); "
            "install it to save galleries to or load them from the Hub"
        ) from None
