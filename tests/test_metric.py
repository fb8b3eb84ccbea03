"""Tests of the TF-CoVR mAP@K metric (plain functions, vectorised path and the `evaluate` module)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from modeling_tfcovr.metrics import (
    METRIC_PATH,
    average_precision_at_k,
    average_precision_from_relevance,
    compute_retrieval_metrics,
    deduplicate_ranking,
    map_at_k_from_relevance,
    recall_at_k,
    relevance_from_indices,
)


def reference_ap_at_k(ranking: list[str], relevant: list[str], k: int) -> float:
    """Independent, deliberately naive AP@K: recounts the precision from scratch at every relevant rank."""
    targets = set(relevant)
    cleaned: list[str] = []
    for item in ranking:  # drop later copies of an id
        if item not in cleaned:
            cleaned.append(item)
    top = cleaned[:k]
    total = 0.0
    for i in range(1, len(top) + 1):
        if top[i - 1] in targets:
            precision_at_i = sum(1 for item in top[:i] if item in targets) / i
            total += precision_at_i
    return total / min(len(targets), k)


# ------------------------------------------------------------------------------------------------------------------
# Hand-computed cases
# ------------------------------------------------------------------------------------------------------------------


def test_basic_hand_computed():
    # G = {a, b, c}; ranking a x b y c -> rel = 1 0 1 0 1.
    # AP@5 = (P@1 + P@3 + P@5) / min(3, 5) = (1 + 2/3 + 3/5) / 3 = 2.2666... / 3 = 0.755555...
    # AP@2 = P@1 / min(3, 2) = 1 / 2 = 0.5
    ranking, relevant = ["a", "x", "b", "y", "c"], ["a", "b", "c"]
    assert average_precision_at_k(ranking, relevant, 5) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    assert average_precision_at_k(ranking, relevant, 2) == pytest.approx(0.5)
    # AP@1 = 1 / min(3, 1) = 1
    assert average_precision_at_k(ranking, relevant, 1) == pytest.approx(1.0)


def test_compute_retrieval_metrics_two_queries_with_recall():
    # Query 0: ranking v1 v7 v3 v1 v9 -> de-duplicated v1 v7 v3 v9; G = {v3, v1, v9}.
    #   AP@1 = 1/1 = 1;  AP@3 = (1 + 2/3) / 3 = 0.5556;  AP@5 = (1 + 2/3 + 3/4) / 3 = 0.8056.
    #   The single target v3 is at rank 3: recall@1 = 0, recall@3 = recall@5 = 1.
    # Query 1: ranking v2, G = {v5}: every AP = 0; target v5 not retrieved: recall = 0.
    # Means x 100: map@1 = 50, map@3 = 27.78, map@5 = 40.28; recall@1 = 0, recall@3 = recall@5 = 50.
    result = compute_retrieval_metrics(
        [["v1", "v7", "v3", "v1", "v9"], ["v2"]],
        [["v3", "v1", "v9"], ["v5"]],
        single_targets=["v3", "v5"],
        k_values=[1, 3, 5],
    )
    assert list(result) == ["map@1", "map@3", "map@5", "recall@1", "recall@3", "recall@5"]
    assert result["map@1"] == pytest.approx(50.0)
    assert result["map@3"] == pytest.approx((1 + 2 / 3) / 3 / 2 * 100)
    assert result["map@5"] == pytest.approx((1 + 2 / 3 + 3 / 4) / 3 / 2 * 100)
    assert result["recall@1"] == 0.0
    assert result["recall@3"] == pytest.approx(50.0)
    assert result["recall@5"] == pytest.approx(50.0)
    assert all(isinstance(v, float) for v in result.values())


def test_default_k_values_and_no_recall_without_single_targets():
    result = compute_retrieval_metrics([["a"]], [["a"]])
    # A perfect ranking: AP@K = P@1 / min(1, K) = 1 for every K.
    assert result == {"map@5": 100.0, "map@10": 100.0, "map@25": 100.0, "map@50": 100.0}


def test_fewer_than_k_predictions():
    # G = {a, b}; ranking [a]; K = 5: only rank 1 exists, AP@5 = P@1 / min(2, 5) = 1 / 2 = 0.5.
    # The missing ranks 2..5 count as non-relevant and the denominator stays min(|G|, K) = 2.
    assert average_precision_at_k(["a"], ["a", "b"], 5) == pytest.approx(0.5)
    # An empty ranking scores 0.
    assert average_precision_at_k([], ["a"], 5) == 0.0
    result = compute_retrieval_metrics([["a"], []], [["a", "b"], ["c"]], single_targets=["b", "c"], k_values=[5])
    # mAP@5 = (0.5 + 0) / 2 * 100 = 25; neither single target is retrieved.
    assert result == {"map@5": pytest.approx(25.0), "recall@5": 0.0}


def test_duplicate_ids_in_ranking_count_once_at_first_rank():
    # [x, x, a] is scored as [x, a]: the second x is removed and a moves up from rank 3 to rank 2.
    # G = {a}, K = 2: AP@2 = P@2 / min(1, 2) = (1/2) / 1 = 0.5
    # (keeping the copy's rank would push a out of the top 2 and give 0).
    assert deduplicate_ranking(["x", "x", "a"]) == ["x", "a"]
    assert average_precision_at_k(["x", "x", "a"], ["a"], 2) == pytest.approx(0.5)
    # [a, a] is scored as [a]: G = {a}, AP@2 = P@1 / 1 = 1.0 (counting the copy would give (1 + 2/2) / 1 = 2).
    assert average_precision_at_k(["a", "a"], ["a"], 2) == pytest.approx(1.0)
    # [a, a, b] is scored as [a, b]: G = {a, b}, AP@2 = (1/1 + 2/2) / 2 = 1.0.
    assert average_precision_at_k(["a", "a", "b"], ["a", "b"], 2) == pytest.approx(1.0)
    result = compute_retrieval_metrics([["x", "x", "a"]], [["a"]], single_targets=["a"], k_values=[2])
    assert result == {"map@2": pytest.approx(50.0), "recall@2": 100.0}


def test_k_larger_than_gallery():
    # Gallery {a, b, c}, full ranking b a c, G = {a, b}, K = 50.
    # rel = 1 1 0: AP@50 = (1/1 + 2/2) / min(2, 50) = 1.0.
    assert average_precision_at_k(["b", "a", "c"], ["a", "b"], 50) == pytest.approx(1.0)
    # A valid target outside the gallery (z) still counts in |G|: AP@50 = (1/1) / min(2, 50) = 0.5.
    assert average_precision_at_k(["a", "b", "c"], ["a", "z"], 50) == pytest.approx(0.5)
    result = compute_retrieval_metrics([["b", "a", "c"]], [["a", "b"]], k_values=[5, 50])
    assert result == {"map@5": pytest.approx(100.0), "map@50": pytest.approx(100.0)}


def test_repeated_references_are_a_set():
    # G = {a, b} (a listed twice): AP@5 of [a] = 1 / min(2, 5) = 0.5, not 1 / 3.
    assert average_precision_at_k(["a"], ["a", "a", "b"], 5) == pytest.approx(0.5)
    assert compute_retrieval_metrics([["a"]], [["a", "a", "b"]], k_values=[5]) == {"map@5": pytest.approx(50.0)}


def test_empty_reference_list_raises_with_query_index():
    with pytest.raises(ValueError, match=r"references\[1\] is empty"):
        compute_retrieval_metrics([["a"], ["b"]], [["a"], []])
    with pytest.raises(ValueError, match=r"references\[0\] is missing"):
        compute_retrieval_metrics([["a"]], [None])
    with pytest.raises(ValueError, match="empty"):
        average_precision_at_k(["a"], [], 5)


def test_input_errors():
    with pytest.raises(TypeError, match=r"predictions\[0\].*single string"):
        compute_retrieval_metrics(["abc"], [["a"]])
    with pytest.raises(TypeError, match=r"references\[0\].*single string"):
        compute_retrieval_metrics([["a"]], ["a"])
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        compute_retrieval_metrics([["a"], ["b"]], [["a"]])
    with pytest.raises(ValueError, match="single_targets"):
        compute_retrieval_metrics([["a"]], [["a"]], single_targets=["a", "b"])
    with pytest.raises(ValueError, match="no queries"):
        compute_retrieval_metrics([], [])
    for bad_k in ([0], [5, -1], [True], [2.5], []):
        with pytest.raises(ValueError, match="k_values"):
            compute_retrieval_metrics([["a"]], [["a"]], k_values=bad_k)
    with pytest.raises(ValueError):
        average_precision_at_k(["a"], ["a"], 0)


def test_recall_at_k():
    assert recall_at_k(["x", "a"], "a", 1) == 0.0
    assert recall_at_k(["x", "a"], "a", 2) == 1.0
    # The copy of x is removed first, so a is at rank 2.
    assert recall_at_k(["x", "x", "a"], "a", 2) == 1.0


# ------------------------------------------------------------------------------------------------------------------
# Agreement with an independent implementation and with the vectorised path
# ------------------------------------------------------------------------------------------------------------------


def _random_queries(seed: int, num_queries: int = 200, gallery_size: int = 80):
    rng = np.random.default_rng(seed)
    gallery = [f"vid{i:03d}" for i in range(gallery_size)]
    predictions, references, single_targets = [], [], []
    for _ in range(num_queries):
        length = int(rng.integers(0, 70))
        ranking = list(rng.choice(gallery, size=length, replace=True))  # with repeats, sometimes shorter than K
        relevant = list(rng.choice(gallery, size=int(rng.integers(1, 8)), replace=True))
        predictions.append(ranking)
        references.append(relevant)
        single_targets.append(relevant[0])
    return predictions, references, single_targets


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_independent_implementation(seed):
    predictions, references, single_targets = _random_queries(seed)
    k_values = (1, 5, 10, 25, 50, 100)
    result = compute_retrieval_metrics(predictions, references, single_targets=single_targets, k_values=k_values)
    for k in k_values:
        expected_map = np.mean([reference_ap_at_k(p, r, k) for p, r in zip(predictions, references)]) * 100
        assert result[f"map@{k}"] == pytest.approx(expected_map, abs=1e-9)
        per_query = [average_precision_at_k(p, r, k) for p, r in zip(predictions, references)]
        assert result[f"map@{k}"] == pytest.approx(np.mean(per_query) * 100, abs=1e-9)
        expected_recall = np.mean([t in deduplicate_ranking(p)[:k] for p, t in zip(predictions, single_targets)]) * 100
        assert result[f"recall@{k}"] == pytest.approx(expected_recall)


def test_vectorised_relevance_path_equals_list_version():
    predictions, references, _ = _random_queries(3, num_queries=100)
    max_k = 50
    relevance = np.zeros((len(predictions), max_k), dtype=bool)
    num_relevant = np.array([len(set(r)) for r in references])
    for i, (p, r) in enumerate(zip(predictions, references)):
        top = deduplicate_ranking(p)[:max_k]
        relevance[i, : len(top)] = [item in set(r) for item in top]
    for k in (1, 5, 10, 25, 50, 80):
        expected = [average_precision_at_k(p, r, k) for p, r in zip(predictions, references)]
        np.testing.assert_allclose(average_precision_from_relevance(relevance, num_relevant, k), expected, atol=1e-12)
        assert map_at_k_from_relevance(relevance, num_relevant, k) == pytest.approx(np.mean(expected) * 100)
    # Torch tensors and 0/1 integer matrices are accepted too.
    assert map_at_k_from_relevance(torch.from_numpy(relevance), torch.from_numpy(num_relevant), 10) == pytest.approx(
        map_at_k_from_relevance(relevance.astype(np.int64), num_relevant, 10)
    )


def test_relevance_from_indices():
    # Query 0: ranked gallery indices 4 2 7, valid {2, 7} -> rel 0 1 1, |G| = 2.
    # Query 1: ranked 1 -1 3 (-1 = empty slot), valid {3, 3, 5} -> rel 0 0 1, |G| = 2 (the repeated 3 counts once).
    ranked = np.array([[4, 2, 7], [1, -1, 3]])
    relevance, num_relevant = relevance_from_indices(ranked, [[2, 7], [3, 3, 5]])
    np.testing.assert_array_equal(relevance, [[False, True, True], [False, False, True]])
    np.testing.assert_array_equal(num_relevant, [2, 2])
    # Padded (Q, R) array form gives the same.
    padded = np.array([[2, 7, -1], [3, 3, 5]])
    relevance_2, num_relevant_2 = relevance_from_indices(torch.from_numpy(ranked), padded)
    np.testing.assert_array_equal(relevance_2, relevance)
    np.testing.assert_array_equal(num_relevant_2, num_relevant)
    # AP@3: query 0 = (1/2 + 2/3) / 2 = 0.58333; query 1 = (1/3) / 2 = 0.16667; mean x 100 = 37.5.
    assert map_at_k_from_relevance(relevance, num_relevant, 3) == pytest.approx(37.5)
    with pytest.raises(ValueError, match=r"ranked_indices\[1\] contains gallery index 3 more than once"):
        relevance_from_indices(np.array([[0, 1], [3, 3]]), [[0], [3]])


def test_relevance_path_errors():
    with pytest.raises(ValueError, match="query 1 has no valid target"):
        average_precision_from_relevance(np.ones((2, 3), dtype=bool), np.array([1, 0]), 3)
    with pytest.raises(ValueError, match="query 0 has 3 relevant results but num_relevant=1"):
        average_precision_from_relevance(np.ones((1, 3), dtype=bool), np.array([1]), 3)
    with pytest.raises(ValueError, match="shape"):
        average_precision_from_relevance(np.ones(3, dtype=bool), np.array([1]), 3)
    with pytest.raises(ValueError, match="no queries"):
        map_at_k_from_relevance(np.zeros((0, 3), dtype=bool), np.zeros(0, dtype=np.int64), 3)


# ------------------------------------------------------------------------------------------------------------------
# Properties
# ------------------------------------------------------------------------------------------------------------------

_ids = st.sampled_from([f"v{i}" for i in range(12)])


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.lists(_ids, max_size=20), st.lists(_ids, min_size=1, max_size=6)), min_size=1, max_size=8),
    st.lists(st.integers(1, 30), min_size=1, max_size=4),
)
def test_property_bounds_and_agreement(queries, k_values):
    predictions = [p for p, _ in queries]
    references = [r for _, r in queries]
    result = compute_retrieval_metrics(predictions, references, k_values=k_values)
    for k in k_values:
        assert 0.0 <= result[f"map@{k}"] <= 100.0 + 1e-9
        expected = np.mean([reference_ap_at_k(p, r, k) for p, r in zip(predictions, references)]) * 100
        assert result[f"map@{k}"] == pytest.approx(expected, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(_ids, min_size=1, max_size=6, unique=True),
    st.lists(_ids, max_size=10),
    st.integers(1, 30),
)
def test_property_perfect_ranking_scores_100(relevant, tail, k):
    # All valid targets first (in any order), then anything: AP@K = 1 for every K.
    ranking = relevant + tail
    assert compute_retrieval_metrics([ranking], [relevant], k_values=[k]) == {f"map@{k}": pytest.approx(100.0)}


@settings(max_examples=100, deadline=None)
@given(st.lists(_ids, min_size=2, max_size=15, unique=True), st.lists(_ids, min_size=1, max_size=5), st.data())
def test_property_moving_a_target_up_never_lowers_ap(ranking, relevant, data):
    # Swapping a valid target with the non-target just before it cannot decrease AP@K.
    positions = [i for i in range(1, len(ranking)) if ranking[i] in relevant and ranking[i - 1] not in relevant]
    if not positions:
        return
    i = data.draw(st.sampled_from(positions))
    improved = ranking[: i - 1] + [ranking[i], ranking[i - 1]] + ranking[i + 1 :]
    for k in (1, 3, 5, 10, 20):
        assert average_precision_at_k(improved, relevant, k) >= average_precision_at_k(ranking, relevant, k) - 1e-12


# ------------------------------------------------------------------------------------------------------------------
# The `evaluate` module
# ------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def metric():
    import evaluate

    assert os.path.isfile(os.path.join(METRIC_PATH, "tfcovr_map.py"))
    assert os.path.isfile(os.path.join(METRIC_PATH, "README.md"))
    return evaluate.load(METRIC_PATH, keep_in_memory=True)


def test_evaluate_module_matches_plain_function(metric):
    predictions, references, single_targets = _random_queries(4, num_queries=60)
    expected = compute_retrieval_metrics(predictions, references, single_targets=single_targets)
    got = metric.compute(predictions=predictions, references=references, single_targets=single_targets)
    assert got == expected
    assert list(got) == ["map@5", "map@10", "map@25", "map@50", "recall@5", "recall@10", "recall@25", "recall@50"]
    # Without single_targets only the map keys are returned; custom k_values are honoured.
    assert metric.compute(predictions=predictions, references=references, k_values=[3]) == compute_retrieval_metrics(
        predictions, references, k_values=[3]
    )


def test_evaluate_module_add_batch_and_errors(metric):
    predictions, references, _ = _random_queries(5, num_queries=30)
    for start in range(0, 30, 7):
        metric.add_batch(predictions=predictions[start : start + 7], references=references[start : start + 7])
    assert metric.compute() == compute_retrieval_metrics(predictions, references)
    # The hand-computed example of the card: AP@3 of [b, x, a] with G = {a, b} = (1 + 2/3) / 2 = 0.8333.
    assert metric.compute(predictions=[["b", "x", "a"]], references=[["a", "b"]], k_values=[3]) == {
        "map@3": pytest.approx(83.33333333333333)
    }
    with pytest.raises(ValueError, match=r"references\[1\] is empty"):
        metric.compute(predictions=[["a"], ["b"]], references=[["a"], []])
    assert metric.name == "tfcovr_map"
    assert "2506.05274" in metric.citation
