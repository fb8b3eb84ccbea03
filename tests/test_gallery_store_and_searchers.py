"""Tests of the index's parts: `GalleryStore` (validation, files), the FAISS searcher built from `index_factory`
strings with `ParameterSpace` parameters, and the package's one atomic-write helper."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from modeling_tfcovr.data.tfcovr_csv import write_files_atomically
from modeling_tfcovr.errors import DataFormatError
from modeling_tfcovr.gallery_store import GalleryStore
from modeling_tfcovr.io_utils import atomic_path, atomic_write
from modeling_tfcovr.retrieval_index import RetrievalIndex


def normalized(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force_indices(queries: np.ndarray, gallery: np.ndarray, k: int, excluded: list[int | None]) -> np.ndarray:
    """Cosine scores in float64, full sort, ties by position, `excluded[i]` removed."""
    scores = normalized(queries.astype(np.float64)) @ normalized(gallery.astype(np.float64)).T
    for row, position in enumerate(excluded):
        if position is not None:
            scores[row, position] = -np.inf
    positions = np.broadcast_to(np.arange(gallery.shape[0]), scores.shape)
    return np.lexsort((positions, -scores), axis=-1)[:, :k]


# ------------------------------------------------------------------------------------------------------------------
# GalleryStore
# ------------------------------------------------------------------------------------------------------------------


def test_store_normalises_and_validates():
    store = GalleryStore(["a", "b"], np.array([[3.0, 4.0], [0.0, -2.0]]), paths=["x.mp4", None])
    np.testing.assert_array_equal(store.embeddings, np.array([[0.6, 0.8], [0.0, -1.0]], dtype=np.float32))
    assert store.array.dtype == np.float32 and store.array.flags.c_contiguous
    assert store.paths == ("x.mp4", None) and store.index_of("b") == 1 and "a" in store and len(store) == 2
    assert store.position_or_none("zzz") == -1 and store.position_or_none(None) == -1
    raw = GalleryStore(["a", "b"], np.array([[3.0, 4.0], [0.0, -2.0]]), normalize=False)
    np.testing.assert_array_equal(raw.embeddings, [[3.0, 4.0], [0.0, -2.0]])

    gallery = np.ones((3, 2), dtype=np.float32)
    bad = gallery.copy()
    bad[2, 1] = -np.inf
    with pytest.raises(DataFormatError, match=r"video 'c' \(row 2\) contains NaN or inf"):
        GalleryStore(["a", "b", "c"], bad)
    with pytest.raises(DataFormatError, match=r"'b' appears twice in the gallery \(positions 1 and 2\)"):
        GalleryStore(["a", "b", "b"], gallery)
    with pytest.raises(DataFormatError, match="single string"):
        GalleryStore("abc", gallery)
    with pytest.raises(DataFormatError, match="3 video ids but 4 paths"):
        GalleryStore(["a", "b", "c"], gallery, paths=["p"] * 4)
    with pytest.raises(DataFormatError, match="dimension 0"):
        GalleryStore(["a", "b", "c"], np.zeros((3, 0), dtype=np.float32))
    with pytest.raises(DataFormatError, match="must be numeric"):
        GalleryStore(["a"], np.array([["x"]]))
    zero = gallery.copy()
    zero[1] = 0
    with pytest.raises(DataFormatError, match=r"video 'b' \(row 1\) is all zeros"):
        GalleryStore(["a", "b", "c"], zero)
    with pytest.raises(DataFormatError, match="dimension 3 but the gallery's embeddings have dimension 2"):
        GalleryStore(["a", "b", "c"], gallery).prepare_queries(np.ones((1, 3)))


def test_store_save_load_mmap_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    gallery = rng.standard_normal((50, 6)).astype(np.float32)
    ids = [f"v{i}" for i in range(50)]
    paths = [None if i % 7 == 0 else f"clips/é{i}.mp4" for i in range(50)]
    store = GalleryStore(ids, gallery, paths)
    store.save(tmp_path, extra={"faiss": None, "note": "kept"})
    assert sorted(os.listdir(tmp_path)) == ["embeddings.npy", "retrieval_index.json"]  # no temporary files left

    metadata = json.loads((tmp_path / "retrieval_index.json").read_text(encoding="utf-8"))
    assert metadata["num_videos"] == 50 and metadata["dim"] == 6 and metadata["normalized"] is True
    assert metadata["note"] == "kept" and metadata["video_ids"] == ids and metadata["paths"] == paths
    saved = np.load(tmp_path / "embeddings.npy", allow_pickle=False)
    np.testing.assert_allclose(saved, normalized(gallery.astype(np.float64)), rtol=0, atol=1e-6)

    mapped, meta = GalleryStore.load(tmp_path)
    assert isinstance(mapped.array, np.memmap) and mapped.is_memory_mapped and meta["note"] == "kept"
    assert mapped.video_ids == tuple(ids) and mapped.paths == tuple(paths) and mapped.normalize
    np.testing.assert_array_equal(mapped.array, store.array)  # saved normalised: loaded as is, no second pass
    in_memory, _ = GalleryStore.load(tmp_path, mmap=False)
    assert not in_memory.is_memory_mapped and type(in_memory.array) is np.ndarray
    np.testing.assert_array_equal(in_memory.array, store.array)

    # A NaN written into the file afterwards is found on load, naming the video; validate=False skips the scan.
    poisoned = saved.copy()
    poisoned[17, 3] = np.nan
    np.save(tmp_path / "embeddings.npy", poisoned)
    with pytest.raises(DataFormatError, match=r"video 'v17' \(row 17\) contains NaN"):
        GalleryStore.load(tmp_path)
    assert math.isnan(GalleryStore.load(tmp_path, validate=False)[0].array[17, 3])

    metadata["format_version"] = 99
    (tmp_path / "retrieval_index.json").write_text(json.dumps(metadata), encoding="utf-8")
    with pytest.raises(DataFormatError, match="format version 99"):
        GalleryStore.load(tmp_path)
    (tmp_path / "retrieval_index.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DataFormatError, match="not a valid retrieval_index.json"):
        GalleryStore.load(tmp_path)


# ------------------------------------------------------------------------------------------------------------------
# FAISS through index_factory strings
# ------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    gallery = rng.standard_normal((600, 16)).astype(np.float32)
    queries = rng.standard_normal((30, 16)).astype(np.float32)
    ids = [f"v{i}" for i in range(600)]
    exclude = [ids[3 * i] if i % 3 else None for i in range(30)]
    expected = brute_force_indices(queries, gallery, 20, [3 * i if i % 3 else None for i in range(30)])
    return ids, gallery, queries, exclude, expected


@pytest.mark.parametrize(
    ("factory", "parameters"),
    [("Flat", None), ("IVF16,Flat", "nprobe=16"), ("HNSW16", "efConstruction=200,efSearch=600")],
)
def test_index_factory_strings_find_the_exact_results(data, factory, parameters):
    pytest.importorskip("faiss")
    ids, gallery, queries, exclude, expected = data
    index = RetrievalIndex(ids, gallery)
    built = index.build_faiss_index(factory, parameters)
    assert built is index.faiss_index and built.ntotal == 600
    assert index.faiss_config == {"factory": factory, "parameters": parameters or ""}
    result = index.search(queries, top_k=20, exclude_ids=exclude)
    # Flat is exhaustive; IVF visiting all 16 lists too; HNSW with a beam as wide as the gallery reaches everything.
    np.testing.assert_array_equal(result.indices, expected)
    np.testing.assert_array_equal(result.indices, index.search(queries, 20, exclude, backend="exact").indices)
    np.testing.assert_allclose(
        result.scores, np.take_along_axis(normalized(queries) @ normalized(gallery).T, expected, axis=1), atol=1e-5
    )


def test_faiss_parameters_are_set_overridden_per_search_and_restored(data):
    faiss = pytest.importorskip("faiss")
    ids, gallery, queries, exclude, expected = data
    index = RetrievalIndex(ids, gallery)
    index.build_faiss_index("IVF16,Flat", "nprobe=1")
    assert faiss.extract_index_ivf(index.faiss_index).nprobe == 1
    coarse = index.search(queries, top_k=20, exclude_ids=exclude)
    assert (coarse.indices != expected).any()  # one list of 16: approximate
    full = index.search(queries, top_k=20, exclude_ids=exclude, faiss_parameters="nprobe=16")
    np.testing.assert_array_equal(full.indices, expected)
    assert faiss.extract_index_ivf(index.faiss_index).nprobe == 1  # the build-time value is back
    np.testing.assert_array_equal(index.search(queries, top_k=20, exclude_ids=exclude).indices, coarse.indices)

    # FAISS's own default is recorded too, so that it can be overridden and restored.
    index.build_faiss_index("IVF16,Flat")
    assert index.faiss_config == {"factory": "IVF16,Flat", "parameters": "nprobe=1"}
    with pytest.raises(ValueError, match="cannot override efSearch per search on a 'IVF16,Flat' index"):
        index.search(queries, faiss_parameters="efSearch=10")
    with pytest.raises(ValueError, match="'name=value' pairs"):
        index.search(queries, faiss_parameters="nprobe")
    with pytest.raises(ValueError, match=r"FAISS cannot set 'efSearch=3' on a 'IVF16,Flat' index"):
        index.build_faiss_index("IVF16,Flat", "efSearch=3")
    with pytest.raises(ValueError, match=r"index_factory cannot build 'IVF16,Nonsense'"):
        index.build_faiss_index("IVF16,Nonsense")
    with pytest.raises(ValueError, match="cannot train 'IVF1000,Flat' on 600 gallery rows"):
        index.build_faiss_index("IVF1000,Flat")


def test_short_names_map_to_factory_strings():
    faiss = pytest.importorskip("faiss")
    rng = np.random.default_rng(2)
    gallery = rng.standard_normal((2000, 8)).astype(np.float32)
    index = RetrievalIndex([f"v{i}" for i in range(2000)], gallery)
    index.build_faiss_index("ivf")
    nlist = max(1, min(round(4 * math.sqrt(2000)), 2000 // 39))  # 4 sqrt(N), at most N / 39: 51
    assert index.faiss_config == {"factory": f"IVF{nlist},Flat", "parameters": "nprobe=16"}
    assert faiss.extract_index_ivf(index.faiss_index).nlist == 51
    index.build_faiss_index("hnsw")
    assert index.faiss_config == {"factory": "HNSW32", "parameters": "efConstruction=200,efSearch=128"}
    assert index.faiss_index.hnsw.efConstruction == 200 and index.faiss_index.hnsw.efSearch == 128
    index.build_faiss_index("hnsw", "efSearch=40")  # given parameters override the defaults
    assert index.faiss_index.hnsw.efSearch == 40 and index.faiss_index.hnsw.efConstruction == 200
    assert RetrievalIndex(["a"], np.ones((1, 8)), backend="faiss").faiss_config == {"factory": "Flat", "parameters": ""}


def test_saved_faiss_index_keeps_factory_and_parameters_and_reads_the_first_format(tmp_path, data):
    faiss = pytest.importorskip("faiss")
    ids, gallery, queries, exclude, _ = data
    index = RetrievalIndex(ids, gallery)
    index.build_faiss_index("IVF10,Flat", "nprobe=3")
    before = index.search(queries, top_k=20, exclude_ids=exclude)
    index.save(tmp_path)
    loaded = RetrievalIndex.load(tmp_path)
    assert loaded.faiss_config == {"factory": "IVF10,Flat", "parameters": "nprobe=3"}
    assert faiss.extract_index_ivf(loaded.faiss_index).nprobe == 3
    np.testing.assert_array_equal(loaded.search(queries, top_k=20, exclude_ids=exclude).indices, before.indices)

    # retrieval_index.json of the first release described the index by kind and knobs.
    metadata = json.loads((tmp_path / "retrieval_index.json").read_text(encoding="utf-8"))
    metadata["faiss"] = {"kind": "ivf", "nlist": 10, "nprobe": 3, "file": "faiss.index"}
    (tmp_path / "retrieval_index.json").write_text(json.dumps(metadata), encoding="utf-8")
    old = RetrievalIndex.load(tmp_path)
    assert old.faiss_config == {"factory": "IVF10,Flat", "parameters": "nprobe=3"}
    np.testing.assert_array_equal(old.search(queries, top_k=20, exclude_ids=exclude).indices, before.indices)


# ------------------------------------------------------------------------------------------------------------------
# Atomic writes
# ------------------------------------------------------------------------------------------------------------------


def test_atomic_write_replaces_on_success_and_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "sub" / "data.bin"
    with atomic_write(target) as handle:  # parent folders are created
        handle.write(b"old contents")
    assert target.read_bytes() == b"old contents"

    with pytest.raises(RuntimeError, match="disk on fire"), atomic_write(target) as handle:
        handle.write(b"half of the new")
        raise RuntimeError("disk on fire")
    assert target.read_bytes() == b"old contents"
    assert os.listdir(target.parent) == ["data.bin"]  # the temporary file is gone

    with pytest.raises(ValueError, match="length"), atomic_path(tmp_path / "sub" / "table.parquet") as tmp:
        tmp.write_bytes(b"partial")
        pa.Table.from_pydict({"a": [1, 2]}).append_column("b", pa.array([1]))  # a real pyarrow error
    assert sorted(os.listdir(target.parent)) == ["data.bin"]

    with atomic_write(target, "w") as handle:
        handle.write("nouveau é")
    assert target.read_text(encoding="utf-8") == "nouveau é"
    with pytest.raises(ValueError, match="mode must be 'w' or 'wb'"), atomic_write(target, "a"):
        pass


def test_a_process_killed_mid_write_leaves_the_old_file(tmp_path):
    target = tmp_path / "report.json"
    target.write_text('{"complete": true}', encoding="utf-8")
    script = (
        "import os, sys\n"
        "from modeling_tfcovr.io_utils import atomic_write\n"
        "with atomic_write(sys.argv[1], 'w') as handle:\n"
        "    handle.write('{\"compl')\n"
        "    handle.flush()\n"
        "    os._exit(3)  # killed: no cleanup, no rename\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(target)], capture_output=True, timeout=120)
    assert result.returncode == 3, result.stderr
    assert json.loads(target.read_text(encoding="utf-8")) == {"complete": True}
    leftovers = sorted(set(os.listdir(tmp_path)) - {"report.json"})
    assert len(leftovers) == 1 and leftovers[0].startswith(".report.tmp-") and leftovers[0].endswith(".json")
    assert (tmp_path / leftovers[0]).read_text(encoding="utf-8") == '{"compl'


def test_files_written_together_appear_together(tmp_path):
    write_files_atomically(tmp_path, {"t.parquet": pa.table({"x": [1]})}, {"a.txt": "one", "b.txt": "two"})
    assert (tmp_path / "a.txt").read_text() == "one" and (tmp_path / "b.txt").read_text() == "two"
    with pytest.raises(TypeError):
        write_files_atomically(tmp_path, {"t.parquet": pa.table({"x": [2]})}, {"a.txt": "new", "b.txt": 5})
    # The failure on b.txt left every file as it was, the parquet table and a.txt included, and no temporary file.
    assert (tmp_path / "a.txt").read_text() == "one" and (tmp_path / "b.txt").read_text() == "two"
    assert pa.parquet.read_table(tmp_path / "t.parquet").column("x").to_pylist() == [1]
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "b.txt", "t.parquet"]
