"""Tests of `RetrievalIndex`: exact top-k against brute force, ties, exclusions, FAISS, save/load, errors."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from modeling_tfcovr.errors import DataFormatError
from modeling_tfcovr.retrieval_index import RetrievalIndex, SearchResult, _topk_lowest_index_on_ties


def brute_force(
    queries: np.ndarray, gallery: np.ndarray, k: int, excluded: list[int | None]
) -> tuple[np.ndarray, np.ndarray]:
    """Full sort of every score (float64), best first, ties by gallery position; `excluded[i]` removed."""
    scores = queries.astype(np.float64) @ gallery.astype(np.float64).T
    for row, position in enumerate(excluded):
        if position is not None:
            scores[row, position] = -np.inf
    positions = np.broadcast_to(np.arange(gallery.shape[0]), scores.shape)
    order = np.lexsort((positions, -scores), axis=-1)[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


def integer_data(seed: int, num_videos: int = 60, num_queries: int = 25, dim: int = 4):
    """Entries in {-1, 0, 1}: every score is a small integer (exact in float32), so ties are everywhere."""
    rng = np.random.default_rng(seed)
    gallery = rng.integers(-1, 2, size=(num_videos, dim)).astype(np.float32)
    queries = rng.integers(-1, 2, size=(num_queries, dim)).astype(np.float32)
    return [f"vid{i:04d}" for i in range(num_videos)], gallery, queries


def normalized(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# ------------------------------------------------------------------------------------------------------------------
# Exact search
# ------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("batch_size", "chunk_size"), [(1024, 16384), (3, 7), (5, 1), (25, 59)])
@pytest.mark.parametrize("top_k", [1, 5, 17, 59, 200])
def test_exact_search_equals_brute_force_with_ties(batch_size, chunk_size, top_k):
    ids, gallery, queries = integer_data(0)
    index = RetrievalIndex(ids, gallery, normalize=False)
    # Own-video exclusions for most queries, none for some, and an id that is not in the gallery.
    exclude_ids = [ids[(7 * i) % len(ids)] if i % 4 else None for i in range(len(queries))]
    exclude_ids[2] = "not-in-gallery"
    excluded = [index.index_of(v) if v in index else None for v in exclude_ids]

    result = index.search(
        queries, top_k=top_k, exclude_ids=exclude_ids, batch_size=batch_size, gallery_chunk_size=chunk_size
    )

    k = min(top_k, len(ids) - 1)  # some query excludes a gallery video
    expected_scores, expected_indices = brute_force(queries, gallery, k, excluded)
    assert isinstance(result, SearchResult)
    assert result.scores.dtype == np.float32 and result.indices.dtype == np.int64
    assert result.scores.shape == result.indices.shape == (len(queries), k)
    np.testing.assert_array_equal(result.indices, expected_indices)
    np.testing.assert_array_equal(result.scores, expected_scores.astype(np.float32))
    assert result.video_ids == [[ids[j] for j in row] for row in expected_indices]
    for row, position in enumerate(excluded):
        assert position is None or position not in result.indices[row]


def test_ties_at_the_topk_boundary_are_broken_by_gallery_position():
    # Check that the data really has ties straddling the boundary, so the test above is not vacuous.
    ids, gallery, queries = integer_data(0)
    scores = queries @ gallery.T
    kth = -np.sort(-scores, axis=1)[:, 4]
    straddling = ((scores > kth[:, None]).sum(1) < 5) & ((scores >= kth[:, None]).sum(1) > 5)
    assert straddling.sum() >= 10

    # Every score equal: the first k gallery positions, in order.
    index = RetrievalIndex([f"v{i}" for i in range(40)], np.ones((40, 3), dtype=np.float32), normalize=False)
    result = index.search(np.ones((3, 3), dtype=np.float32), top_k=6, exclude_ids=[None, "v2", "v39"])
    np.testing.assert_array_equal(result.indices[0], [0, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(result.indices[1], [0, 1, 3, 4, 5, 6])
    np.testing.assert_array_equal(result.indices[2], [0, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(result.scores, np.full((3, 6), 3.0, dtype=np.float32))


def test_tie_aware_topk_helper():
    # Row 0: values 5 3 3 3 3 1, k = 3 -> 5 plus the first two 3s: columns {0, 1, 2}.
    # Row 1: no boundary tie: 0 9 8 7 0 0 -> columns {1, 2, 3}.
    scores = torch.tensor([[5.0, 3, 3, 3, 3, 1], [0, 9, 8, 7, 0, 0]])
    for _ in range(5):
        values, indices = _topk_lowest_index_on_ties(scores, 3)
        assert sorted(indices[0].tolist()) == [0, 1, 2]
        assert sorted(indices[1].tolist()) == [1, 2, 3]
        torch.testing.assert_close(values, scores.gather(1, indices))


def test_exact_search_random_normalized_floats():
    rng = np.random.default_rng(1)
    gallery = rng.standard_normal((300, 32)).astype(np.float32)
    queries = rng.standard_normal((40, 32))  # float64 input is converted
    ids = [f"v{i}" for i in range(300)]
    index = RetrievalIndex(ids, gallery)
    result = index.search(queries, top_k=50, exclude_ids=ids[:40], batch_size=16, gallery_chunk_size=64)
    expected_scores, expected_indices = brute_force(normalized(queries), normalized(gallery), 50, list(range(40)))
    np.testing.assert_allclose(result.scores, expected_scores, atol=1e-5)
    # Every returned score is the true score of the returned video, and the order is non-increasing.
    true_scores = np.take_along_axis(normalized(queries) @ normalized(gallery).T, result.indices, axis=1)
    np.testing.assert_allclose(result.scores, true_scores, atol=1e-5)
    assert (np.diff(result.scores, axis=1) <= 0).all()
    np.testing.assert_array_equal(result.indices, expected_indices)  # no near-ties in this random draw
    # Cosine similarity: the gallery row itself as a query finds itself first with score 1.
    self_result = index.search(gallery[:5], top_k=1)
    np.testing.assert_array_equal(self_result.indices[:, 0], np.arange(5))
    np.testing.assert_allclose(self_result.scores[:, 0], 1.0, atol=1e-6)


def test_k_larger_than_gallery_and_everything_excluded():
    gallery = np.eye(4, dtype=np.float32)
    index = RetrievalIndex(["a", "b", "c", "d"], gallery)
    query = np.array([[4.0, 3.0, 2.0, 1.0]], dtype=np.float32)
    assert index.search(query, top_k=100).video_ids == [["a", "b", "c", "d"]]
    # Excluding a gallery video leaves N - 1 = 3 results.
    result = index.search(query, top_k=100, exclude_ids=["b"])
    assert result.video_ids == [["a", "c", "d"]]
    assert result.k == 3 and len(result) == 1
    # An id outside the gallery excludes nothing.
    assert index.search(query, top_k=100, exclude_ids=["zzz"]).video_ids == [["a", "b", "c", "d"]]
    # A one-video gallery whose only video is excluded: zero results.
    single = RetrievalIndex(["a"], np.ones((1, 4), dtype=np.float32))
    empty = single.search(np.ones((2, 4), dtype=np.float32), top_k=5, exclude_ids=["a", None])
    assert empty.scores.shape == empty.indices.shape == (2, 0)
    assert empty.video_ids == [[], []]


def test_torch_inputs_paths_and_input_not_modified():
    rng = np.random.default_rng(2)
    gallery = rng.standard_normal((20, 8)).astype(np.float32)
    original = gallery.copy()
    paths = [f"/videos/v{i}.mp4" for i in range(19)] + [None]
    index = RetrievalIndex([f"v{i}" for i in range(20)], gallery, paths=paths)
    np.testing.assert_array_equal(gallery, original)  # the caller's float32 array is not normalised in place
    np.testing.assert_allclose(np.linalg.norm(index.embeddings, axis=1), 1.0, atol=1e-6)
    assert not index.embeddings.flags.writeable

    from_tensor = RetrievalIndex([f"v{i}" for i in range(20)], torch.from_numpy(gallery).double(), paths=paths)
    queries = torch.from_numpy(rng.standard_normal((3, 8)).astype(np.float32)).half()
    a, b = index.search(queries, top_k=20), from_tensor.search(queries.float().numpy(), top_k=20)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert a.paths[0] == [paths[j] for j in a.indices[0]]
    assert None in a.paths[0]
    np.testing.assert_array_equal(index.get_embeddings(["v3", "v1"]), index.embeddings[[3, 1]])


def test_from_dataset():
    datasets = pytest.importorskip("datasets")
    rng = np.random.default_rng(3)
    embeddings = rng.standard_normal((6, 5)).astype(np.float32)
    features = datasets.Features(
        {"video_id": datasets.Value("string"), "embedding": datasets.List(datasets.Value("float32"), length=5)}
    )
    ds = datasets.Dataset.from_dict(
        {"video_id": [f"v{i}" for i in range(6)], "embedding": embeddings.tolist()}, features=features
    )
    index = RetrievalIndex.from_dataset(ds)
    assert index.video_ids == tuple(f"v{i}" for i in range(6))
    np.testing.assert_allclose(index.embeddings, normalized(embeddings), atol=1e-6)
    with pytest.raises(DataFormatError, match="no column 'emb'"):
        RetrievalIndex.from_dataset(ds, embedding_column="emb")


# ------------------------------------------------------------------------------------------------------------------
# FAISS
# ------------------------------------------------------------------------------------------------------------------


def test_faiss_flat_equals_exact():
    pytest.importorskip("faiss")
    rng = np.random.default_rng(4)
    gallery = rng.standard_normal((300, 32)).astype(np.float32)
    queries = rng.standard_normal((40, 32)).astype(np.float32)
    ids = [f"v{i}" for i in range(300)]
    exact = RetrievalIndex(ids, gallery)
    flat = RetrievalIndex(ids, gallery, backend="faiss")
    assert flat.faiss_index is not None and flat.faiss_index.ntotal == 300
    exclude = [ids[i] if i % 2 else None for i in range(40)]
    a = exact.search(queries, top_k=25, exclude_ids=exclude)
    b = flat.search(queries, top_k=25, exclude_ids=exclude, batch_size=7)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
    assert a.video_ids == b.video_ids
    # The exact backend can still be asked for explicitly.
    np.testing.assert_array_equal(
        flat.search(queries, top_k=25, backend="exact").indices, exact.search(queries, 25).indices
    )


def test_faiss_ivf_and_hnsw():
    pytest.importorskip("faiss")
    rng = np.random.default_rng(5)
    gallery = rng.standard_normal((2000, 16)).astype(np.float32)
    queries = rng.standard_normal((30, 16)).astype(np.float32)
    ids = [f"v{i}" for i in range(2000)]
    index = RetrievalIndex(ids, gallery)
    exact = index.search(queries, top_k=10, exclude_ids=ids[:30], backend="exact")

    index.build_faiss_index("IVF20,Flat", "nprobe=2")
    # Visiting every list is exhaustive, so IVF then equals exact search.
    full = index.search(queries, top_k=10, exclude_ids=ids[:30], faiss_parameters="nprobe=20")
    np.testing.assert_array_equal(full.indices, exact.indices)
    coarse = index.search(queries, top_k=10, exclude_ids=ids[:30])  # default nprobe=2: approximate
    assert coarse.indices.shape == (30, 10)
    assert all(i not in row for i, row in enumerate(coarse.indices.tolist()))

    index.build_faiss_index("HNSW16", "efConstruction=200,efSearch=64")
    hnsw = index.search(queries, top_k=10, exclude_ids=ids[:30], faiss_parameters="efSearch=200")
    recall = np.mean([len(set(h) & set(e)) / 10 for h, e in zip(hnsw.indices.tolist(), exact.indices.tolist())])
    assert recall >= 0.9
    with pytest.raises(ValueError, match="index_factory"):
        index.build_faiss_index("pq")


def test_ivf_lists_presized_hold_the_same_rows_as_plain_add(monkeypatch):
    faiss = pytest.importorskip("faiss")
    import modeling_tfcovr.searchers as searchers

    monkeypatch.setattr(searchers, "_ROW_CHUNK", 333)  # several add_core blocks, with a partial last one
    rng = np.random.default_rng(8)
    gallery = normalized(rng.standard_normal((1500, 12)).astype(np.float32))
    queries = rng.standard_normal((20, 12)).astype(np.float32)
    index = RetrievalIndex([f"v{i}" for i in range(1500)], gallery)
    ours = index.build_faiss_index("IVF16,Flat", "nprobe=3")

    plain = faiss.index_factory(12, "IVF16,Flat", faiss.METRIC_INNER_PRODUCT)
    plain.quantizer.add(ours.quantizer.reconstruct_n(0, 16))  # the same trained centroids
    plain.is_trained = True
    plain.add(index.embeddings)
    assert ours.ntotal == plain.ntotal == 1500
    for list_number in range(16):
        ours_ids = faiss.rev_swig_ptr(ours.invlists.get_ids(list_number), ours.invlists.list_size(list_number))
        plain_ids = faiss.rev_swig_ptr(plain.invlists.get_ids(list_number), plain.invlists.list_size(list_number))
        np.testing.assert_array_equal(ours_ids, plain_ids)  # same rows, same order, ids = gallery positions
    expected_scores, expected_indices = plain.search(
        normalized(queries), 10, params=faiss.SearchParametersIVF(nprobe=3)
    )
    result = index.search(queries, top_k=10)
    np.testing.assert_array_equal(np.sort(result.indices, axis=1), np.sort(expected_indices, axis=1))
    np.testing.assert_allclose(result.scores, expected_scores, rtol=0, atol=1e-6)


def test_copy_false_normalises_the_callers_array_in_place():
    rng = np.random.default_rng(9)
    gallery = rng.standard_normal((40, 6)).astype(np.float32)
    raw = gallery.copy()
    copied = RetrievalIndex([f"v{i}" for i in range(40)], gallery)
    np.testing.assert_array_equal(gallery, raw)  # default: the caller's array is untouched
    assert not np.shares_memory(copied.embeddings, gallery)

    shared = RetrievalIndex([f"v{i}" for i in range(40)], gallery, copy=False)
    assert np.shares_memory(shared.embeddings, gallery)
    np.testing.assert_allclose(gallery, normalized(raw), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(shared.embeddings, copied.embeddings)


# ------------------------------------------------------------------------------------------------------------------
# Save / load
# ------------------------------------------------------------------------------------------------------------------


def test_save_load_mmap_roundtrip(tmp_path):
    rng = np.random.default_rng(6)
    gallery = rng.standard_normal((150, 24)).astype(np.float32)
    queries = rng.standard_normal((12, 24)).astype(np.float32)
    ids = [f"v{i}" for i in range(150)]
    paths = [f"clips/{i}.mp4" if i % 3 else None for i in range(150)]
    index = RetrievalIndex(ids, gallery, paths=paths)
    before = index.search(queries, top_k=30, exclude_ids=ids[:12])

    index.save(tmp_path / "index")
    assert sorted(os.listdir(tmp_path / "index")) == ["embeddings.npy", "retrieval_index.json"]  # no temp files left
    loaded = RetrievalIndex.load(tmp_path / "index")
    assert isinstance(loaded._embeddings, np.memmap) and loaded.is_memory_mapped
    assert loaded.video_ids == tuple(ids) and loaded.paths == tuple(paths)
    assert loaded.normalize
    np.testing.assert_array_equal(loaded.embeddings, index.embeddings)  # saved already normalised
    after = loaded.search(queries, top_k=30, exclude_ids=ids[:12], gallery_chunk_size=40)
    np.testing.assert_array_equal(after.indices, before.indices)
    np.testing.assert_array_equal(after.scores, before.scores)
    assert after.video_ids == before.video_ids and after.paths == before.paths

    in_memory = RetrievalIndex.load(tmp_path / "index", mmap=False)
    assert not in_memory.is_memory_mapped and not isinstance(in_memory._embeddings, np.memmap)
    np.testing.assert_array_equal(in_memory.search(queries, top_k=30, exclude_ids=ids[:12]).indices, before.indices)


def test_save_load_with_faiss_and_resave_over_mmapped_copy(tmp_path):
    pytest.importorskip("faiss")
    rng = np.random.default_rng(7)
    gallery = rng.standard_normal((500, 16)).astype(np.float32)
    queries = rng.standard_normal((10, 16)).astype(np.float32)
    ids = [f"v{i}" for i in range(500)]
    index = RetrievalIndex(ids, gallery)
    index.build_faiss_index("IVF10,Flat", "nprobe=3")
    before = index.search(queries, top_k=20)
    index.save(tmp_path)
    assert (tmp_path / "faiss.index").is_file()

    loaded = RetrievalIndex.load(tmp_path)
    assert loaded.faiss_index is not None and loaded.faiss_index.ntotal == 500
    after = loaded.search(queries, top_k=20)  # same IVF index, same default nprobe
    np.testing.assert_array_equal(after.indices, before.indices)
    np.testing.assert_allclose(after.scores, before.scores, atol=1e-6)

    # Saving the memory-mapped index over its own files works (files are replaced by rename) and drops the FAISS file.
    exact_only = RetrievalIndex.load(tmp_path, load_faiss=False)
    assert exact_only.faiss_index is None
    exact_only.save(tmp_path)
    assert not (tmp_path / "faiss.index").exists()
    reloaded = RetrievalIndex.load(tmp_path)
    np.testing.assert_array_equal(reloaded.embeddings, index.embeddings)
    np.testing.assert_array_equal(
        reloaded.search(queries, top_k=20).indices, index.search(queries, top_k=20, backend="exact").indices
    )


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="retrieval_index.json"):
        RetrievalIndex.load(tmp_path)
    index = RetrievalIndex(["a", "b"], np.eye(2, dtype=np.float32))
    index.save(tmp_path)
    np.save(tmp_path / "embeddings.npy", np.zeros((3, 2), dtype=np.float32))
    with pytest.raises(DataFormatError, match="shape"):
        RetrievalIndex.load(tmp_path)


# ------------------------------------------------------------------------------------------------------------------
# Validation errors
# ------------------------------------------------------------------------------------------------------------------


def test_construction_errors_name_the_video():
    gallery = np.ones((3, 4), dtype=np.float32)
    bad = gallery.copy()
    bad[1, 2] = np.nan
    with pytest.raises(DataFormatError, match=r"video 'b' \(row 1\) contains NaN or inf"):
        RetrievalIndex(["a", "b", "c"], bad)
    bad[1, 2] = np.inf
    with pytest.raises(DataFormatError, match="'b'"):
        RetrievalIndex(["a", "b", "c"], torch.from_numpy(bad))
    with pytest.raises(DataFormatError, match=r"video id 'a' appears twice in the gallery \(positions 0 and 2\)"):
        RetrievalIndex(["a", "b", "a"], gallery)
    with pytest.raises(DataFormatError, match=r"shape \(N, D\)"):
        RetrievalIndex(["a", "b", "c"], np.ones(3, dtype=np.float32))
    with pytest.raises(DataFormatError, match=r"shape \(N, D\)"):
        RetrievalIndex(["a", "b", "c"], np.ones((3, 4, 1), dtype=np.float32))
    with pytest.raises(DataFormatError, match="3 video ids but 2 embedding rows"):
        RetrievalIndex(["a", "b", "c"], gallery[:2])
    zero = gallery.copy()
    zero[2] = 0
    with pytest.raises(DataFormatError, match="video 'c'.*all zeros"):
        RetrievalIndex(["a", "b", "c"], zero)
    RetrievalIndex(["a", "b", "c"], zero, normalize=False)  # fine without normalisation
    with pytest.raises(DataFormatError, match="3 video ids but 2 paths"):
        RetrievalIndex(["a", "b", "c"], gallery, paths=["x", "y"])
    with pytest.raises(DataFormatError, match="not a string"):
        RetrievalIndex(["a", 2, "c"], gallery)
    with pytest.raises(DataFormatError, match="empty"):
        RetrievalIndex([], np.zeros((0, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="backend"):
        RetrievalIndex(["a", "b", "c"], gallery, backend="annoy")


def test_search_errors():
    index = RetrievalIndex(["a", "b", "c"], np.eye(3, dtype=np.float32))
    with pytest.raises(DataFormatError, match="dimension 4 but the gallery's embeddings have dimension 3"):
        index.search(np.ones((2, 4), dtype=np.float32))
    with pytest.raises(DataFormatError, match=r"shape \(Q, D\)"):
        index.search(np.ones(3, dtype=np.float32))
    with pytest.raises(DataFormatError, match="query embedding 1 contains NaN"):
        index.search(np.array([[1, 0, 0], [np.nan, 0, 0]], dtype=np.float32))
    with pytest.raises(ValueError, match="2 queries but 1 exclude_ids"):
        index.search(np.ones((2, 3), dtype=np.float32), exclude_ids=["a"])
    with pytest.raises(ValueError, match="top_k"):
        index.search(np.ones((2, 3), dtype=np.float32), top_k=0)
    with pytest.raises(ValueError, match="no FAISS index"):
        index.search(np.ones((2, 3), dtype=np.float32), backend="faiss")
    with pytest.raises(KeyError, match="'zzz' is not in the gallery"):
        index.index_of("zzz")
