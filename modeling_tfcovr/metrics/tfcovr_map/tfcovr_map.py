# Copyright 2025 The TF-CoVR-HF authors. Licensed under the MIT License.
"""mAP@K and Recall@K for composed video retrieval with several valid targets per query (TF-CoVR, CIRCO).

This file is an `evaluate` metric module: `evaluate.load("<path to this folder>")` copies it into the `evaluate`
module cache and imports it there, so it must stay self-contained (it imports nothing from the project package).
The plain functions defined here are also the project's own implementation of the metric
(`from modeling_tfcovr.metrics import compute_retrieval_metrics`), so the training loop, the evaluation script and
`evaluate.load` all score with the same code.

Definition (CIRCO-style, as in the TF-CoVR paper), for one query with the set `G` of valid targets:

    AP@K = 1 / min(|G|, K) * sum_{i=1..K} P@i * rel(i)

where `rel(i)` is 1 if the i-th retrieved id is in `G` and `P@i` is the fraction of the first `i` retrieved ids that
are in `G`. mAP@K is the mean of AP@K over queries, times 100. Recall@K is 1 if the single annotated target is among
the first K retrieved ids, averaged over queries, times 100.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import datasets
import evaluate
import numpy as np

__all__ = [
    "DEFAULT_K_VALUES",
    "PROTOCOLS",
    "TfcovrMap",
    "average_precision_at_k",
    "average_precision_from_relevance",
    "compute_retrieval_metrics",
    "deduplicate_ranking",
    "map_at_k_from_relevance",
    "official_retrieval_metrics",
    "recall_at_k",
    "relevance_from_indices",
]

DEFAULT_K_VALUES: tuple[int, ...] = (5, 10, 25, 50)
PROTOCOLS: tuple[str, ...] = ("unique", "official")


# ----------------------------------------------------------------------------------------------------------------------
# Validation helpers
# ----------------------------------------------------------------------------------------------------------------------


def _check_k(k: Any, name: str = "k") -> int:
    """Returns `k` as an int after checking that it is a positive integer (bools are refused)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {k!r}")
    return int(k)


def _check_k_values(k_values: Iterable[int]) -> tuple[int, ...]:
    """Returns the cut-offs as a tuple of positive ints, without repeats, in the order given."""
    if isinstance(k_values, (int, np.integer)):
        k_values = (k_values,)
    checked = tuple(dict.fromkeys(_check_k(k, "k_values") for k in k_values))
    if not checked:
        raise ValueError("`k_values` must contain at least one cut-off")
    return checked


def _as_id_list(value: Any, name: str, index: int) -> list[Hashable]:
    """Checks that `value` is a list-like of ids (not a single string) and returns it as a list."""
    if value is None:
        raise ValueError(f"{name}[{index}] is missing (None); expected a list of video ids")
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name}[{index}] must be a list of video ids, got the single string {value!r}")
    try:
        return list(value)
    except TypeError:
        raise TypeError(f"{name}[{index}] must be a list of video ids, got {type(value).__name__}") from None


def _check_num_queries(
    predictions: Sequence[Any], references: Sequence[Any], single_targets: Sequence[Any] | None
) -> int:
    """Returns the number of queries after checking that there is one and that every list has one entry per query."""
    num_queries = len(predictions)
    if len(references) != num_queries:
        raise ValueError(f"got {num_queries} predictions but {len(references)} references")
    if single_targets is not None and len(single_targets) != num_queries:
        raise ValueError(f"got {num_queries} predictions but {len(single_targets)} single_targets")
    if num_queries == 0:
        raise ValueError("no queries to score: `predictions` and `references` are empty")
    return num_queries


def _to_numpy(array: Any) -> np.ndarray:
    """Converts a NumPy array, a list or a (possibly CUDA) torch tensor to a NumPy array without importing torch."""
    if hasattr(array, "detach") and hasattr(array, "cpu"):
        array = array.detach().cpu().numpy()
    return np.asarray(array)


# ----------------------------------------------------------------------------------------------------------------------
# List-based metric (rankings of video ids)
# ----------------------------------------------------------------------------------------------------------------------


def deduplicate_ranking(ranking: Iterable[Hashable], limit: int | None = None) -> list[Hashable]:
    """Removes repeated ids from a ranking, keeping each id at its first rank.

    Later occurrences are deleted and the items after them move up, so `["a", "a", "b"]` becomes `["a", "b"]`
    (`"b"` is scored at rank 2, not 3).

    Args:
        ranking: ids, best first.
        limit: stop once this many distinct ids have been collected (the metric only looks at the first K).

    Returns:
        The de-duplicated ranking (at most `limit` ids).
    """
    seen: set[Hashable] = set()
    unique: list[Hashable] = []
    for item in ranking:
        if limit is not None and len(unique) >= limit:
            break
        if item not in seen:
            seen.add(item)
            unique.append(item)
    return unique


def average_precision_at_k(ranking: Sequence[Hashable], relevant: Iterable[Hashable], k: int) -> float:
    """AP@K of one ranking, in [0, 1].

    `AP@K = 1 / min(|G|, K) * sum_{i<=K} P@i * rel(i)` with `G = set(relevant)`. The ranking is first
    de-duplicated (see [`deduplicate_ranking`]); missing ranks (a ranking shorter than K) count as non-relevant and
    the denominator stays `min(|G|, K)`.

    Args:
        ranking: retrieved ids, best first.
        relevant: the valid targets (repeats are ignored).
        k: the cut-off.

    Returns:
        AP@K as a float in [0, 1].

    Raises:
        ValueError: if `relevant` is empty or `k` is not a positive integer.
    """
    k = _check_k(k)
    targets = set(relevant)
    if not targets:
        raise ValueError("the list of relevant ids is empty: AP is undefined without at least one valid target")
    hits = 0
    total = 0.0
    for rank, item in enumerate(deduplicate_ranking(ranking, limit=k), start=1):
        if item in targets:
            hits += 1
            total += hits / rank
    return total / min(len(targets), k)


def recall_at_k(ranking: Sequence[Hashable], target: Hashable, k: int) -> float:
    """1.0 if `target` is among the first `k` (de-duplicated) ids of `ranking`, else 0.0."""
    k = _check_k(k)
    return float(target in deduplicate_ranking(ranking, limit=k))


def compute_retrieval_metrics(
    predictions: Sequence[Sequence[Hashable]],
    references: Sequence[Sequence[Hashable]],
    single_targets: Sequence[Hashable] | None = None,
    k_values: Iterable[int] = DEFAULT_K_VALUES,
) -> dict[str, float]:
    """mAP@K (and Recall@K) over a set of queries, on the 0-100 scale used by the TF-CoVR paper.

    Args:
        predictions: per query, the retrieved video ids, best first. A ranking may be shorter than K (missing ranks
            count as non-relevant); a repeated id counts once, at its first rank, and later copies are removed
            before the ranks are counted.
        references: per query, the valid target ids (at least one; repeats are ignored).
        single_targets: optional, per query, the one annotated target id; adds `recall@K` to the output.
        k_values: the cut-offs K.

    Returns:
        `{"map@5": ..., "map@10": ..., ..., "recall@5": ..., ...}` (recall keys only with `single_targets`), each the
        mean over queries times 100, as a Python float.

    Raises:
        ValueError: on an empty reference list (naming the query index), mismatched lengths, no queries, or a bad K.
        TypeError: when a ranking or a reference list is a single string instead of a list of ids.
    """
    k_values = _check_k_values(k_values)
    num_queries = _check_num_queries(predictions, references, single_targets)

    max_k = max(k_values)
    relevance = np.zeros((num_queries, max_k), dtype=bool)
    num_relevant = np.zeros(num_queries, dtype=np.int64)
    # 0-based rank of the single target in the de-duplicated ranking; `max_k` when it is not in the first max_k.
    target_rank = np.full(num_queries, max_k, dtype=np.int64)

    for i in range(num_queries):
        ranking = deduplicate_ranking(_as_id_list(predictions[i], "predictions", i), limit=max_k)
        targets = set(_as_id_list(references[i], "references", i))
        if not targets:
            raise ValueError(f"references[{i}] is empty: every query needs at least one valid target")
        num_relevant[i] = len(targets)
        relevance[i, : len(ranking)] = [item in targets for item in ranking]
        if single_targets is not None:
            target = single_targets[i]
            if target is None:
                raise ValueError(f"single_targets[{i}] is missing (None)")
            if target in ranking:
                target_rank[i] = ranking.index(target)

    results: dict[str, float] = {}
    for k in k_values:
        results[f"map@{k}"] = map_at_k_from_relevance(relevance, num_relevant, k)
    if single_targets is not None:
        for k in k_values:
            results[f"recall@{k}"] = float(np.mean(target_rank < k) * 100.0)
    return results


# ----------------------------------------------------------------------------------------------------------------------
# Vectorised fast path (relevance matrices, gallery indices)
# ----------------------------------------------------------------------------------------------------------------------


def average_precision_from_relevance(relevance: Any, num_relevant: Any, k: int) -> np.ndarray:
    """Per-query AP@K from a relevance matrix, vectorised.

    Args:
        relevance: `(Q, R)` bool (or 0/1 integer) array or tensor; `relevance[q, i]` tells whether the `(i+1)`-th
            result of query `q` is a valid target. `R` may be smaller than `k` (missing ranks are non-relevant) or
            larger (columns from `k` on are ignored). Each row must be free of repeated results.
        num_relevant: `(Q,)` integers, the number of distinct valid targets `|G|` of each query (at least 1).
        k: the cut-off.

    Returns:
        `(Q,)` float64 array of AP@K values in [0, 1].

    Raises:
        ValueError: on bad shapes, a query with `num_relevant < 1`, or a row with more hits than `num_relevant`.
    """
    k = _check_k(k)
    rel = _to_numpy(relevance)
    num = _to_numpy(num_relevant)
    if rel.ndim != 2:
        raise ValueError(f"`relevance` must have shape (Q, R), got shape {rel.shape}")
    if rel.dtype != bool:
        if not np.issubdtype(rel.dtype, np.integer) or not np.isin(rel, (0, 1)).all():
            raise ValueError(f"`relevance` must be boolean (or 0/1 integers), got dtype {rel.dtype}")
        rel = rel.astype(bool)
    if num.shape != (rel.shape[0],):
        raise ValueError(f"`num_relevant` must have shape ({rel.shape[0]},), got shape {num.shape}")
    if not np.issubdtype(num.dtype, np.integer):
        if not np.all(np.mod(num, 1) == 0):
            raise ValueError("`num_relevant` must contain integers")
        num = num.astype(np.int64)
    bad = np.flatnonzero(num < 1)
    if bad.size:
        raise ValueError(f"query {int(bad[0])} has no valid target (num_relevant={int(num[bad[0]])}); AP is undefined")

    rel = rel[:, :k]
    hits = np.cumsum(rel, axis=1, dtype=np.int64)  # (Q, min(R, k))
    total_hits = hits[:, -1] if hits.shape[1] else np.zeros(rel.shape[0], dtype=np.int64)
    over = np.flatnonzero(total_hits > num)
    if over.size:
        q = int(over[0])
        raise ValueError(
            f"query {q} has {int(total_hits[q])} relevant results but num_relevant={int(num[q])}; "
            "rankings must not repeat a result"
        )
    ranks = np.arange(1, rel.shape[1] + 1, dtype=np.float64)
    precision_sum = np.where(rel, hits / ranks, 0.0).sum(axis=1)
    return precision_sum / np.minimum(num, k)


def map_at_k_from_relevance(relevance: Any, num_relevant: Any, k: int) -> float:
    """mAP@K (mean over queries, times 100) from a `(Q, R)` relevance matrix and `(Q,)` target counts.

    See [`average_precision_from_relevance`] for the arguments. Returns a Python float in [0, 100].
    """
    ap = average_precision_from_relevance(relevance, num_relevant, k)
    if ap.size == 0:
        raise ValueError("no queries to score: `relevance` has no rows")
    return float(ap.mean() * 100.0)


def relevance_from_indices(ranked_indices: Any, relevant_indices: Any) -> tuple[np.ndarray, np.ndarray]:
    """Builds the relevance matrix and target counts when results and targets are gallery indices.

    Args:
        ranked_indices: `(Q, K)` integer array or tensor of gallery indices, best first (e.g. the `indices` of a
            top-k search). Negative entries mark empty slots and count as non-relevant.
        relevant_indices: the valid targets of each query, either a `(Q, R)` integer array padded with negative
            values, or a sequence of `Q` sequences of gallery indices. Repeats are ignored.

    Returns:
        `(relevance, num_relevant)`: a `(Q, K)` bool array and a `(Q,)` int64 array of distinct valid targets,
        ready for [`map_at_k_from_relevance`].

    Raises:
        ValueError: on bad shapes or a gallery index that appears twice in one row of `ranked_indices`.
    """
    ranked = _to_numpy(ranked_indices)
    if ranked.ndim != 2 or not (np.issubdtype(ranked.dtype, np.integer) or ranked.size == 0):
        raise ValueError(f"`ranked_indices` must be a (Q, K) integer array, got shape {ranked.shape} ({ranked.dtype})")
    ranked = ranked.astype(np.int64, copy=False)
    num_queries = ranked.shape[0]

    if isinstance(relevant_indices, (list, tuple)):
        if len(relevant_indices) != num_queries:
            raise ValueError(f"got {num_queries} rankings but {len(relevant_indices)} lists of relevant indices")
        rows = [
            np.asarray(_as_id_list(r, "relevant_indices", i), dtype=np.int64) for i, r in enumerate(relevant_indices)
        ]
        width = max((len(r) for r in rows), default=0)
        relevant = np.full((num_queries, width), -1, dtype=np.int64)
        for i, row in enumerate(rows):
            relevant[i, : len(row)] = row
    else:
        relevant = _to_numpy(relevant_indices)
        if relevant.ndim != 2 or relevant.shape[0] != num_queries:
            raise ValueError(f"`relevant_indices` must have shape ({num_queries}, R), got shape {relevant.shape}")
        relevant = relevant.astype(np.int64, copy=False)

    # Give every (query, gallery index) pair one integer key, so that membership is one `np.isin` over all queries.
    stride = int(max(ranked.max(initial=0), relevant.max(initial=0))) + 1
    row_offset = np.arange(num_queries, dtype=np.int64)[:, None] * stride
    ranked_keys = np.where(ranked >= 0, ranked + row_offset, -1)
    relevant_keys = np.unique(np.where(relevant >= 0, relevant + row_offset, -1))
    relevant_keys = relevant_keys[relevant_keys >= 0]

    valid = ranked_keys[ranked_keys >= 0]
    keys, counts = np.unique(valid, return_counts=True)
    if (counts > 1).any():
        key = int(keys[np.argmax(counts > 1)])
        raise ValueError(f"ranked_indices[{key // stride}] contains gallery index {key % stride} more than once")

    relevance = np.isin(ranked_keys, relevant_keys) & (ranked_keys >= 0)
    num_relevant = np.bincount(relevant_keys // stride, minlength=num_queries).astype(np.int64)
    return relevance, num_relevant


# ----------------------------------------------------------------------------------------------------------------------
# `evaluate` module
# ----------------------------------------------------------------------------------------------------------------------

_DESCRIPTION = """\
mAP@K for composed video retrieval with several valid targets per query, as defined by CIRCO and used by the TF-CoVR
benchmark: AP@K = 1/min(|G|, K) * sum_{i<=K} P@i * rel(i), averaged over queries and reported on a 0-100 scale.
With `single_targets`, also Recall@K against the single annotated target of each query (0-100).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `str`): per query, the retrieved video ids, best first. May be shorter than K
        (missing ranks are non-relevant). A repeated id counts once, at its first rank: later copies are removed and
        the items after them move up.
    references (`list` of `list` of `str`): per query, the valid target video ids (non-empty; repeats ignored).
    single_targets (`list` of `str`, *optional*): per query, the one annotated target id; adds `recall@K`.
        Passed to `compute` (not `add_batch`).
    k_values (`list` of `int`, *optional*, defaults to `[5, 10, 25, 50]`): the cut-offs K.
    protocol (`str`, *optional*, defaults to `"unique"`): `"unique"` as above; `"official"` counts as the official
        TF-CoVR test does, for rankings over its gallery of one embedding per test row (duplicates kept): nothing is
        de-duplicated (a repeated valid target is a hit each time, so values can exceed 100), `|G|` counts repeats,
        values are rounded to 2 decimals. Give `predictions` of the official gallery for numbers comparable with the
        paper (`modeling_tfcovr.official_protocol`).

Returns:
    `dict`: `map@K` for each K, then `recall@K` for each K when `single_targets` is given; floats in [0, 100].

Examples:
    >>> import evaluate
    >>> from modeling_tfcovr.metrics import METRIC_PATH
    >>> metric = evaluate.load(METRIC_PATH)
    >>> metric.compute(predictions=[["b", "x", "a"]], references=[["a", "b"]], k_values=[3])
    {'map@3': 83.33333333333333}
"""

_CITATION = """\
@article{gupta2025tfcovr,
  title   = {From Play to Replay: Composed Video Retrieval for Temporally Fine-Grained Videos},
  author  = {Gupta, Animesh and Parmar, Jay and Dave, Ishan Rajendrakumar and Shah, Mubarak},
  journal = {arXiv preprint arXiv:2506.05274},
  year    = {2025}
}
@inproceedings{baldrati2023circo,
  title     = {Zero-Shot Composed Image Retrieval with Textual Inversion},
  author    = {Baldrati, Alberto and Agnolucci, Lorenzo and Bertini, Marco and Del Bimbo, Alberto},
  booktitle = {Proceedings of the IEEE/CVF International Conference on Computer Vision (ICCV)},
  year      = {2023}
}
"""


def official_retrieval_metrics(
    predictions: Sequence[Sequence[Hashable]],
    references: Sequence[Sequence[Hashable]],
    single_targets: Sequence[Hashable] | None = None,
    k_values: Iterable[int] = DEFAULT_K_VALUES,
) -> dict[str, float]:
    """mAP@K and Recall@K counted exactly as the official TF-CoVR test does (`compute_metrics` of
    `src/test/aim/circo_clip.py`), for rankings from a gallery that may hold a video more than once.

    Differences from [`compute_retrieval_metrics`]: nothing is de-duplicated, so a valid target that appears twice
    in a ranking is a hit twice (AP@K and Recall@K can then exceed 100); `|G|` is the length of the reference list,
    repeats included; each value is the mean over queries times 100, rounded to 2 decimals.
    """
    k_values = _check_k_values(k_values)
    _check_num_queries(predictions, references, single_targets)
    average_precisions = {k: [] for k in k_values}
    recalls = {k: [] for k in k_values}
    for i, (ranking, relevant) in enumerate(zip(predictions, references)):
        ranking = _as_id_list(ranking, "predictions", i)
        relevant = _as_id_list(relevant, "references", i)
        if not relevant:
            raise ValueError(f"references[{i}] is empty: every query needs at least one valid target")
        targets = set(relevant)
        hits = np.array([item in targets for item in ranking], dtype=bool)
        precisions = np.cumsum(hits) * hits / np.arange(1, len(ranking) + 1)
        for k in k_values:
            average_precisions[k].append(float(np.sum(precisions[:k]) / min(len(relevant), k)))
            if single_targets is not None:
                recalls[k].append(float(sum(item == single_targets[i] for item in ranking[:k])))
    results = {f"map@{k}": round(float(np.mean(average_precisions[k])) * 100, 2) for k in k_values}
    if single_targets is not None:
        results.update({f"recall@{k}": round(float(np.mean(recalls[k])) * 100, 2) for k in k_values})
    return results


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TfcovrMap(evaluate.Metric):
    """`evaluate` metric computing TF-CoVR mAP@K (and optionally Recall@K) from ranked lists of video ids."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("string")),
                    "references": datasets.Sequence(datasets.Value("string")),
                }
            ),
            homepage="https://github.com/UCF-CRCV/TF-CoVR",
            reference_urls=["https://arxiv.org/abs/2506.05274", "https://arxiv.org/abs/2303.15247"],
        )

    def _compute(
        self,
        predictions: list[list[str]],
        references: list[list[str]],
        single_targets: Sequence[str] | None = None,
        k_values: Iterable[int] = DEFAULT_K_VALUES,
        protocol: str = "unique",
    ) -> dict[str, float]:
        if protocol == "unique":
            return compute_retrieval_metrics(predictions, references, single_targets=single_targets, k_values=k_values)
        if protocol == "official":
            return official_retrieval_metrics(predictions, references, single_targets=single_targets, k_values=k_values)
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
