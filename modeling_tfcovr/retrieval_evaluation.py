"""Retrieval evaluation shared by the training loop (`compute_metrics`) and `tfcovr evaluate`:
triplet splits, the official gallery, text-feature caching, searching and scoring."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .errors import DataFormatError
from .eval_mode import eval_mode
from .metrics import compute_retrieval_metrics, official_retrieval_metrics
from .official_protocol import official_gallery_ids, official_rankings
from .retrieval_index import RetrievalIndex, SearchResult

if TYPE_CHECKING:
    from .modeling_tfcovr import TFCoVRModel
    from .modeling_zero_shot import ZeroShotCLIPComposer
    from .processing_tfcovr import TFCoVRProcessor

    # A model with TF-CoVR's feature methods (`encode_text`, `get_text_features`, `get_query_features`).
    RetrievalModel = TFCoVRModel | ZeroShotCLIPComposer

logger = logging.getLogger(__name__)

DEFAULT_K_VALUES = (5, 10, 25, 50)


@dataclass
class TripletSplit:
    """One split of triplets in the project's schema (`query_id`, `query_video`, `modification`,
    `target_video`, `target_videos`, ...), as parallel lists."""

    query_ids: list[str]
    query_videos: list[str]
    modifications: list[str]
    target_videos: list[str]
    valid_targets: list[list[str]]

    def __len__(self) -> int:
        return len(self.query_ids)

    @classmethod
    def from_rows(cls, rows, name: str = "split") -> TripletSplit:
        """From a `datasets.Dataset`, a list of dicts, or a pyarrow/pandas table of the schema."""
        if hasattr(rows, "to_pylist"):
            rows = rows.to_pylist()
        elif hasattr(rows, "to_list"):
            rows = rows.to_list()
        elif hasattr(rows, "to_dict") and not isinstance(rows, list):
            rows = rows.to_dict("records")
        rows = list(rows)
        required = ("query_video", "modification", "target_video", "target_videos")
        for number, row in enumerate(rows):
            missing = [key for key in required if row.get(key) in (None, "")]
            if missing:
                raise DataFormatError(f"{name} row {number}: missing {', '.join(missing)}")
            if not row["target_videos"]:
                raise DataFormatError(f"{name} row {number}: empty target_videos")
        return cls(
            query_ids=[str(row.get("query_id") or f"{name}-{i}") for i, row in enumerate(rows)],
            query_videos=[row["query_video"] for row in rows],
            modifications=[row["modification"] for row in rows],
            target_videos=[row["target_video"] for row in rows],
            valid_targets=[list(row["target_videos"]) for row in rows],
        )

    def gallery_ids(self) -> list[str]:
        """The gallery of the `"unique"` protocol: every video that is a valid target of some query, once (sorted).
        The official test's gallery is another one: see [`official_gallery_ids`]."""
        return sorted({video for targets in self.valid_targets for video in targets} | set(self.target_videos))

    def subset(self, size: int) -> TripletSplit:
        return TripletSplit(
            *(
                values[:size]
                for values in (
                    self.query_ids,
                    self.query_videos,
                    self.modifications,
                    self.target_videos,
                    self.valid_targets,
                )
            )
        )


def load_triplet_split(source: str | os.PathLike, split: str, revision: str | None = None) -> TripletSplit:
    """Loads split `split` of a triplets dataset: a local dataset folder (e.g. `hub_dataset/` or a
    synthetic build), a single parquet file, or a hub dataset id (at `revision`, read from its snapshot in the
    hub cache, fetched with `snapshot_download`, so that offline the revision asked for is the one read).

    Local folders are read directly from the parquet files their card's `configs` list, not
    through the `datasets` cache, which can serve a stale copy of a folder rebuilt in place.
    """
    source = os.fspath(source)
    if source.endswith(".parquet"):
        return TripletSplit.from_rows(_read_parquet_files([source]), name=os.path.basename(source))
    if os.path.isdir(source):
        return TripletSplit.from_rows(_read_parquet_files(local_split_files(source, split)), name=f"{source}:{split}")
    from .hub import resolve_folder

    name = f"{source}@{revision}:{split}" if revision else f"{source}:{split}"
    folder = resolve_folder(source, revision=revision, repo_type="dataset")  # the Hub cache's snapshot
    return TripletSplit.from_rows(_read_parquet_files(local_split_files(folder, split)), name=name)


def local_split_files(folder: str | os.PathLike, split: str, config_name: str | None = None) -> list[str]:
    """Parquet files of `split` in a local dataset folder, from the `configs` of its README card
    (the default config unless `config_name`), else `data/<split>*.parquet`."""
    import glob

    import yaml

    folder = os.fspath(folder)
    patterns: list[str] = []
    listed: list[str] = []  # the splits the card names, for the error message
    card = os.path.join(folder, "README.md")
    if os.path.isfile(card):
        text = Path(card).read_text(encoding="utf-8")
        if text.startswith("---"):
            front = yaml.safe_load(text.split("---", 2)[1]) or {}
            configs = front.get("configs") or []
            chosen = (
                [c for c in configs if c.get("config_name") == config_name]
                if config_name
                else ([c for c in configs if c.get("default")] or configs[:1])
            )
            for config in chosen:
                for entry in config.get("data_files") or []:
                    if isinstance(entry, dict):
                        listed.append(str(entry.get("split")))
                    if isinstance(entry, dict) and entry.get("split") == split:
                        paths = entry.get("path")
                        patterns += [paths] if isinstance(paths, str) else list(paths)
    if not patterns:
        patterns = [f"data/{split}.parquet", f"data/{split}-*.parquet"]
    files = sorted({f for pattern in patterns for f in glob.glob(os.path.join(folder, pattern))})
    if not files:
        order = {"train": 0, "val": 1, "validation": 1, "test": 2}
        stems = {Path(f).stem.split("-")[0] for f in glob.glob(os.path.join(folder, "data", "*.parquet"))}
        found = listed or sorted(stems, key=lambda name: (order.get(name, 3), name))
        available = ", ".join(dict.fromkeys(found)) or "none (no data/<split>.parquet files)"
        raise DataFormatError(f"split {split!r} not found in {folder!r}; available: {available}")
    return files


def _read_parquet_files(files: Sequence[str]) -> list[dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pa.concat_tables([pq.read_table(f) for f in files], promote_options="default").to_pylist()


def score_rankings(
    result: SearchResult, split: TripletSplit, k_values: Sequence[int] = DEFAULT_K_VALUES
) -> dict[str, float]:
    """mAP@K against all valid targets and Recall@K against the annotated target."""
    return compute_retrieval_metrics(
        result.video_ids, split.valid_targets, single_targets=split.target_videos, k_values=list(k_values)
    )


def score_official_rankings(
    result: SearchResult, split: TripletSplit, k_values: Sequence[int] = DEFAULT_K_VALUES
) -> dict[str, float]:
    """mAP@K and Recall@K counted as the official test does (see [`official_retrieval_metrics`])."""
    return official_retrieval_metrics(
        result.video_ids, split.valid_targets, single_targets=split.target_videos, k_values=list(k_values)
    )


def search_split(
    query_embeds: np.ndarray | torch.Tensor, index: RetrievalIndex, split: TripletSplit, top_k: int = 50
) -> SearchResult:
    """Top-`top_k` search of every query, never returning the query's own video."""
    return index.search(query_embeds, top_k=top_k, exclude_ids=split.query_videos)


def make_retrieval_compute_metrics(
    split: TripletSplit,
    gallery: RetrievalIndex | Callable[[], RetrievalIndex],
    k_values: Sequence[int] = DEFAULT_K_VALUES,
) -> Callable:
    """A `Trainer` `compute_metrics` for stage 2.

    The evaluation dataset yields one query per triplet of `split`, with its row as label
    (`query_index`); the model's first prediction output is the query embedding. `gallery` is
    the retrieval index of target embeddings, or a function that builds it (called at every
    evaluation, for encoders that change during training).

    Returns `map@K` / `recall@K` of the `"unique"` protocol and `official_map@K` / `official_recall@K` of the
    official one (its gallery: the evaluated rows' target videos, duplicates kept).
    """

    def compute_metrics(eval_prediction) -> dict[str, float]:
        predictions = eval_prediction.predictions
        query_embeds = predictions[0] if isinstance(predictions, (tuple, list)) else predictions
        rows = np.asarray(eval_prediction.label_ids).reshape(-1).astype(np.int64)
        # Distributed evaluation may repeat samples to even out the processes: keep each row once.
        rows, first = np.unique(rows, return_index=True)
        query_embeds = np.asarray(query_embeds)[first]
        index = gallery() if callable(gallery) else gallery
        evaluated = TripletSplit(
            *(
                [values[i] for i in rows]
                for values in (
                    split.query_ids,
                    split.query_videos,
                    split.modifications,
                    split.target_videos,
                    split.valid_targets,
                )
            )
        )
        result = search_split(query_embeds, index, evaluated, top_k=max(k_values))
        metrics = score_rankings(result, evaluated, k_values)
        official_ids = official_gallery_ids(evaluated.target_videos)
        official = official_rankings(
            query_embeds,
            evaluated.query_videos,
            official_ids,
            index.get_embeddings(official_ids),
            top_k=max(50, *k_values),
        )
        metrics.update(
            {
                f"official_{name}": value
                for name, value in score_official_rankings(official, evaluated, k_values).items()
            }
        )
        return metrics

    return compute_metrics


@torch.no_grad()
def encode_texts(
    model: RetrievalModel, processor: TFCoVRProcessor, texts: Sequence[str], batch_size: int = 256
) -> torch.Tensor:
    """`model.encode_text` of every text (normalised and tokenised by `processor`), `(N, text_dim)`.

    Computed in evaluation mode whatever the model's mode (the training mode is restored afterwards): these are
    the features a frozen encoder gives, the same in training, model selection, evaluation and the pipeline.
    """
    device = next(model.parameters()).device
    outputs = []
    with eval_mode(model):
        for start in range(0, len(texts), batch_size):
            batch = processor(text=list(texts[start : start + batch_size]))
            outputs.append(
                model.encode_text(batch["input_ids"].to(device), batch["attention_mask"].to(device)).float().cpu()
            )
    return torch.cat(outputs) if outputs else torch.empty(0, model.config.text_embed_dim)


def cache_text_features(
    model: RetrievalModel, processor: TFCoVRProcessor, texts: Sequence[str], batch_size: int = 256
) -> tuple[torch.Tensor, list[int]]:
    """Encodes each distinct text once. Returns `(features (U, text_dim), row of each input text)`."""
    unique = sorted(set(texts))
    position = {text: row for row, text in enumerate(unique)}
    return encode_texts(model, processor, unique, batch_size), [position[text] for text in texts]


BASELINES = ("text_only", "video_only", "average")


@torch.no_grad()
def query_embeddings_by_method(
    model: RetrievalModel, query_video_embeds: torch.Tensor, text_embeds: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Query embeddings `(Q, embed_dim)` of TF-CoVR and of the baselines that show what composition adds.

    - `tfcovr`: the combiner's composed query;
    - `text_only`: the projected modification text alone;
    - `video_only`: the query video's embedding alone;
    - `average`: the normalised mean of the normalised query video and text embeddings.

    Args:
        query_video_embeds: video-encoder embeddings of the query videos `(Q, embed_dim)`.
        text_embeds: `model.encode_text` outputs of the modifications `(Q, text_dim)`.
    """
    import torch.nn.functional as F

    device = next(model.parameters()).device
    video = query_video_embeds.to(device).float()
    with eval_mode(model):
        text = model.get_text_features(text_embeds=text_embeds.to(device))
        composed = model.get_query_features(query_video_embeds=video, text_embeds=text_embeds.to(device))
    normalised_video = F.normalize(video, dim=-1)
    return {
        "tfcovr": composed.cpu(),
        "text_only": text.float().cpu(),
        "video_only": normalised_video.cpu(),
        "average": F.normalize(normalised_video + text.float(), dim=-1).cpu(),
    }


def prediction_records(split: TripletSplit, result: SearchResult, limit: int = 50) -> list[dict]:
    """Per query: its id, video, text and the top `limit` results with scores and correctness."""
    records = []
    for row in range(len(split)):
        valid = set(split.valid_targets[row])
        results = [
            {"video_id": video_id, "score": round(float(score), 6), "correct": video_id in valid}
            for video_id, score in zip(result.video_ids[row][:limit], result.scores[row][:limit])
        ]
        records.append(
            {
                "query_id": split.query_ids[row],
                "query_video": split.query_videos[row],
                "modification": split.modifications[row],
                "target_video": split.target_videos[row],
                "valid_targets": split.valid_targets[row],
                "results": results,
            }
        )
    return records


def format_results_table(results: dict[str, dict[str, float]], k_values: Sequence[int] = DEFAULT_K_VALUES) -> str:
    """A Markdown table: one row per method, mAP@K and Recall@K columns (0-100)."""
    columns = [f"map@{k}" for k in k_values] + [f"recall@{k}" for k in k_values]
    present = [c for c in columns if any(c in metrics for metrics in results.values())]
    lines = ["| method | " + " | ".join(present) + " |", "|---|" + "---|" * len(present)]
    for method, metrics in results.items():
        lines.append(f"| {method} | " + " | ".join(f"{metrics.get(c, float('nan')):.2f}" for c in present) + " |")
    return "\n".join(lines)


def evaluate_split(
    model: RetrievalModel,
    processor: TFCoVRProcessor,
    split: TripletSplit,
    video_ids: Sequence[str],
    video_embeds: np.ndarray,
    gallery_ids: Sequence[str] | None = None,
    methods: Sequence[str] = ("tfcovr", *BASELINES),
    k_values: Sequence[int] = DEFAULT_K_VALUES,
    top_k: int = 50,
) -> tuple[dict, dict[str, list[dict]]]:
    """Evaluates `model` and the baselines on `split` against a gallery of video embeddings.

    Two protocols are computed (see `official_protocol.py`):

    - `"unique"` (`report["results"]`): a gallery of every valid target once (or `gallery_ids`), the query's own
      video never returned, repeats never counted twice. The sounder protocol.
    - `"official"` (`report["official"]["results"]`): the official TF-CoVR test exactly, whose numbers are
      comparable with the paper: one gallery entry per row's `target_video` (duplicates kept), the query's video
      pushed down by 100, a duplicated valid target counted each time. Only computed on the split's own gallery
      (not with `gallery_ids`).

    Args:
        video_ids / video_embeds: every available video embedding (queries and gallery), `(N, D)`.
        gallery_ids: the `"unique"` gallery; default: every valid target of the split.
            Queries whose video has no embedding are skipped and counted.

    Returns:
        `(report, predictions)`: the report has `num_queries`, `skipped_queries`, `gallery_size`,
        `results[method]` (mAP@K, Recall@K on the 0-100 scale, `"unique"` protocol) and `official`
        (`protocol`, `gallery_size`, `missing_gallery_videos`, `results[method]`); predictions hold per method
        the records of [`prediction_records`] (unique protocol).
    """
    custom_gallery = gallery_ids is not None
    position = {video_id: row for row, video_id in enumerate(video_ids)}
    requested = list(gallery_ids if gallery_ids is not None else split.gallery_ids())
    gallery_ids = [g for g in requested if g in position]
    missing_gallery = [g for g in requested if g not in position]
    if not gallery_ids:
        raise DataFormatError(f"none of the {len(requested)} gallery videos has an embedding, e.g. {requested[:5]}")
    if missing_gallery:
        logger.warning(
            "%d gallery videos have no embedding and are left out, e.g. %s", len(missing_gallery), missing_gallery[:5]
        )
    kept = [row for row in range(len(split)) if split.query_videos[row] in position]
    evaluated = TripletSplit(
        *(
            [values[i] for i in kept]
            for values in (
                split.query_ids,
                split.query_videos,
                split.modifications,
                split.target_videos,
                split.valid_targets,
            )
        )
    )
    index = RetrievalIndex(gallery_ids, np.asarray(video_embeds)[[position[g] for g in gallery_ids]])
    query_video = torch.from_numpy(np.asarray(video_embeds)[[position[v] for v in evaluated.query_videos]])
    text_features, text_rows = cache_text_features(model, processor, evaluated.modifications)
    queries = query_embeddings_by_method(model, query_video, text_features[text_rows])
    in_gallery = set(gallery_ids)
    report = {
        "num_queries": len(evaluated),
        "skipped_queries": len(split) - len(evaluated),
        "protocol": "unique",
        "gallery_size": len(index),
        "k_values": list(k_values),
        "results": {},
        # Videos of the gallery without an embedding, and queries none of whose valid targets is left in
        # the gallery (they count, with AP 0): both lower the scores, so they are reported.
        "missing_gallery_videos": missing_gallery,
        "queries_without_target_in_gallery": sum(
            not in_gallery.intersection(targets) for targets in evaluated.valid_targets
        ),
    }
    predictions = {}
    for method in methods:
        result = search_split(queries[method], index, evaluated, top_k=max(top_k, *k_values))
        report["results"][method] = score_rankings(result, evaluated, k_values)
        predictions[method] = prediction_records(evaluated, result, limit=top_k)
    if not custom_gallery:
        report["official"] = _official_report(split, evaluated, position, video_embeds, queries, methods, k_values)
    return report, predictions


def _official_report(
    split: TripletSplit,
    evaluated: TripletSplit,
    position: dict[str, int],
    video_embeds: np.ndarray,
    queries: dict[str, torch.Tensor],
    methods: Sequence[str],
    k_values: Sequence[int],
) -> dict:
    """The official protocol's numbers: its gallery holds the `target_video` of every row of `split` (all rows, as
    the official test builds it before it looks at the queries), in row order, duplicates kept."""
    requested = official_gallery_ids(split.target_videos)
    gallery = [video for video in requested if video in position]
    missing = sorted({video for video in requested if video not in position})
    if missing:
        logger.warning(
            "official protocol: %d gallery videos have no embedding and are left out, e.g. %s",
            len(missing),
            missing[:5],
        )
    gallery_embeds = np.asarray(video_embeds)[[position[video] for video in gallery]]
    results = {}
    for method in methods:
        ranked = official_rankings(
            queries[method], evaluated.query_videos, gallery, gallery_embeds, top_k=max(50, *k_values)
        )
        results[method] = score_official_rankings(ranked, evaluated, k_values)
    return {
        "protocol": "official",
        "gallery_size": len(gallery),
        "distinct_gallery_videos": len(set(gallery)),
        "missing_gallery_videos": missing,
        "results": results,
    }


__all__ = [
    "evaluate_split",
    "BASELINES",
    "query_embeddings_by_method",
    "prediction_records",
    "format_results_table",
    "DEFAULT_K_VALUES",
    "TripletSplit",
    "load_triplet_split",
    "score_rankings",
    "score_official_rankings",
    "search_split",
    "make_retrieval_compute_metrics",
    "encode_texts",
    "cache_text_features",
]
