"""Property-based tests (hypothesis) of the text normalisation, the mAP@K metric, the retrieval index and the
segment frame sampling: each is checked on random inputs against its definition or a brute-force implementation."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from modeling_tfcovr.metrics import (
    compute_retrieval_metrics,
    map_at_k_from_relevance,
    relevance_from_indices,
)
from modeling_tfcovr.retrieval_index import RetrievalIndex
from modeling_tfcovr.video_processing_tfcovr import segment_frame_indices

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# ----------------------------------------------------------------------------------------------------------------------
# The metric against a naive implementation of the definition
# ----------------------------------------------------------------------------------------------------------------------


def naive_ap_at_k(ranking: list[str], relevant: set[str], k: int) -> float:
    """AP@K = 1 / min(|G|, K) * sum_{i<=K} P@i * rel(i), with P@i recomputed from scratch at every rank."""
    unique = []
    for item in ranking:  # a repeated result counts once, at its first rank
        if item not in unique:
            unique.append(item)
    total = 0.0
    for i in range(1, min(k, len(unique)) + 1):
        if unique[i - 1] in relevant:
            precision_at_i = sum(1 for item in unique[:i] if item in relevant) / i
            total += precision_at_i
    return total / min(len(relevant), k)


_video = st.integers(0, 14).map(lambda i: f"v{i}")


@SETTINGS
@given(
    st.lists(st.tuples(st.lists(_video, max_size=20), st.sets(_video, min_size=1, max_size=6)), min_size=1, max_size=6),
    st.lists(st.integers(1, 25), min_size=1, max_size=4, unique=True),
)
def test_metric_equals_naive_definition_and_is_bounded(queries, k_values):
    predictions = [ranking for ranking, _ in queries]
    references = [sorted(relevant) for _, relevant in queries]
    singles = [sorted(relevant)[0] for _, relevant in queries]
    result = compute_retrieval_metrics(predictions, references, single_targets=singles, k_values=k_values)
    for k in k_values:
        expected = 100 * np.mean([naive_ap_at_k(p, set(r), k) for p, r in zip(predictions, references)])
        assert result[f"map@{k}"] == pytest.approx(expected, abs=1e-9)
        assert 0.0 <= result[f"map@{k}"] <= 100.0
        expected_recall = 100 * np.mean([s in list(dict.fromkeys(p))[:k] for p, s in zip(predictions, singles)])
        assert result[f"recall@{k}"] == pytest.approx(expected_recall)
    recalls = [result[f"recall@{k}"] for k in sorted(k_values)]
    assert recalls == sorted(recalls)  # Recall@K never decreases with K


@SETTINGS
@given(st.data(), st.integers(1, 30), st.integers(1, 6), st.lists(st.integers(1, 40), min_size=1, max_size=3))
def test_vectorised_metric_equals_list_metric(data, gallery_size, num_queries, k_values):
    """The index-based fast path (top-k indices -> relevance matrix) scores exactly like the list-of-ids path."""
    ranked, relevant = [], []
    for _ in range(num_queries):
        length = data.draw(st.integers(0, gallery_size))
        ranked.append(data.draw(st.permutations(range(gallery_size)))[:length])
        relevant.append(data.draw(st.sets(st.integers(0, gallery_size - 1), min_size=1, max_size=gallery_size)))
    width = max(len(r) for r in ranked)
    matrix = np.full((num_queries, max(width, 1)), -1, dtype=np.int64)  # -1 = empty slot
    for row, ranking in enumerate(ranked):
        matrix[row, : len(ranking)] = ranking
    relevance, num_relevant = relevance_from_indices(matrix, [sorted(r) for r in relevant])
    lists = compute_retrieval_metrics(
        [[f"v{i}" for i in r] for r in ranked], [[f"v{i}" for i in r] for r in relevant], k_values=k_values
    )
    for k in k_values:
        assert map_at_k_from_relevance(relevance, num_relevant, k) == pytest.approx(lists[f"map@{k}"], abs=1e-9)


# ----------------------------------------------------------------------------------------------------------------------
# The retrieval index against a brute-force full sort
# ----------------------------------------------------------------------------------------------------------------------


def brute_force_top_k(scores: np.ndarray, excluded: list[int | None], k: int) -> list[list[int]]:
    """Full sort of every row by (score descending, gallery position ascending), the excluded position removed."""
    results = []
    for row, position in enumerate(excluded):
        order = sorted((j for j in range(scores.shape[1]) if j != position), key=lambda j: (-scores[row, j], j))
        results.append(order[:k])
    return results


@st.composite
def galleries(draw, integer_values: bool):
    num_videos = draw(st.integers(1, 40))
    dim = draw(st.integers(1, 6))
    if integer_values:  # small integers: exact float32 scores, many exact ties
        values = draw(st.lists(st.integers(-3, 3), min_size=num_videos * dim, max_size=num_videos * dim))
        gallery = np.asarray(values, dtype=np.float32).reshape(num_videos, dim)
    else:
        seed = draw(st.integers(0, 2**32 - 1))
        gallery = np.random.default_rng(seed).normal(size=(num_videos, dim)).astype(np.float32)
    num_queries = draw(st.integers(1, 6))
    if integer_values:
        values = draw(st.lists(st.integers(-3, 3), min_size=num_queries * dim, max_size=num_queries * dim))
        queries = np.asarray(values, dtype=np.float32).reshape(num_queries, dim)
    else:
        queries = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).normal(size=(num_queries, dim))
        queries = queries.astype(np.float32)
    ids = [f"video_{i}" for i in range(num_videos)]
    # per query: no exclusion, the query's own video (in the gallery), or an id the gallery does not have
    exclude = draw(
        st.lists(
            st.one_of(st.none(), st.sampled_from(ids), st.just("not_in_gallery")),
            min_size=num_queries,
            max_size=num_queries,
        )
    )
    return ids, gallery, queries, exclude


@SETTINGS
@given(galleries(integer_values=True), st.integers(1, 45), st.integers(1, 4), st.integers(1, 9))
def test_exact_search_equals_brute_force_with_ties_and_exclusions(case, top_k, batch_size, chunk_size):
    ids, gallery, queries, exclude = case
    index = RetrievalIndex(ids, gallery, normalize=False)
    result = index.search(
        queries, top_k=top_k, exclude_ids=exclude, batch_size=batch_size, gallery_chunk_size=chunk_size
    )
    scores = queries.astype(np.float64) @ gallery.astype(np.float64).T  # exact: small integers
    excluded = [ids.index(e) if e in ids else None for e in exclude]
    k = min(top_k, len(ids) - (1 if any(p is not None for p in excluded) else 0))
    expected = brute_force_top_k(scores, excluded, k)
    assert result.indices.tolist() == expected
    assert result.video_ids == [[ids[j] for j in row] for row in expected]
    for row, positions in enumerate(expected):
        assert result.scores[row].tolist() == [scores[row, j] for j in positions]
        assert excluded[row] not in positions


@SETTINGS
@given(galleries(integer_values=False), st.integers(1, 45))
def test_normalised_search_returns_the_true_top_k(case, top_k):
    ids, gallery, queries, exclude = case
    assume(np.linalg.norm(gallery, axis=1).min() > 1e-3 and np.linalg.norm(queries, axis=1).min() > 1e-3)
    index = RetrievalIndex(ids, gallery, normalize=True)
    result = index.search(queries, top_k=top_k, exclude_ids=exclude, gallery_chunk_size=7)
    unit_gallery = gallery / np.linalg.norm(gallery.astype(np.float64), axis=1, keepdims=True)
    unit_queries = queries / np.linalg.norm(queries.astype(np.float64), axis=1, keepdims=True)
    cosine = unit_queries @ unit_gallery.T
    excluded = [ids.index(e) if e in ids else None for e in exclude]
    k = min(top_k, len(ids) - (1 if any(p is not None for p in excluded) else 0))
    for row in range(len(queries)):
        returned = result.indices[row].tolist()
        assert len(returned) == k == len(set(returned))
        assert excluded[row] not in returned
        np.testing.assert_allclose(result.scores[row], cosine[row, returned], atol=1e-5)
        assert all(a >= b - 1e-6 for a, b in zip(result.scores[row], result.scores[row][1:]))  # best first
        others = [j for j in range(len(ids)) if j not in returned and j != excluded[row]]
        if others and returned:  # nothing left out scores better than the last result returned
            assert cosine[row, others].max() <= cosine[row, returned[-1]] + 1e-5


# ----------------------------------------------------------------------------------------------------------------------
# Segment frame sampling
# ----------------------------------------------------------------------------------------------------------------------


def segment_bounds(total: int, num_frames: int, segment: int) -> tuple[int, int]:
    """First and last frame of segment `segment` (exact arithmetic); a segment shorter than a frame is the frame
    under it."""
    start, end = Fraction(segment * total, num_frames), Fraction((segment + 1) * total, num_frames)
    first = math.floor(start)
    last = max(first, math.ceil(end) - 1)
    return first, min(last, total - 1)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 500), st.integers(1, 64), st.sampled_from(["middle", "random"]), st.integers(0, 2**32 - 1))
def test_segment_sampling_properties(total, num_frames, mode, seed):
    indices = segment_frame_indices(total, num_frames, mode, np.random.default_rng(seed))
    assert indices.dtype == np.int64 and indices.shape == (num_frames,)
    assert indices.min() >= 0 and indices.max() < total
    assert (np.diff(indices) >= 0).all()  # non-decreasing
    for segment, index in enumerate(indices.tolist()):
        first, last = segment_bounds(total, num_frames, segment)
        assert first <= index <= last, (segment, index, first, last)
    if mode == "middle":
        exact = [min(((2 * j + 1) * total) // (2 * num_frames), total - 1) for j in range(num_frames)]
        assert np.abs(indices - np.asarray(exact)).max() <= 1  # the middle frame, up to float rounding at .0
        again = segment_frame_indices(total, num_frames, "middle")
        assert indices.tolist() == again.tolist()  # deterministic
    if mode == "middle" and total >= num_frames:
        # middles are a segment (>= 1 frame) apart: distinct frames when the video has enough
        assert len(set(indices.tolist())) == num_frames


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 500), st.integers(1, 64), st.integers(0, 2**32 - 1))
def test_random_sampling_is_reproducible_per_seed(total, num_frames, seed):
    first = segment_frame_indices(total, num_frames, "random", np.random.default_rng(seed))
    second = segment_frame_indices(total, num_frames, "random", np.random.default_rng(seed))
    assert first.tolist() == second.tolist()
