"""The embeddings dataset format and the converter from the official pickle stream."""

from __future__ import annotations

import pathlib
import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from modeling_tfcovr.commands import load_command
from modeling_tfcovr.data.embeddings import (
    convert_pickle_embeddings,
    load_pickle_embeddings,
    read_embeddings,
    validate_embeddings,
    write_embeddings_parquet,
)
from modeling_tfcovr.errors import DataFormatError, UntrustedFileError

REPO = Path(__file__).resolve().parents[1]


def _vectors(count: int, dim: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, dim)).astype(np.float32)


class _TouchOnUnpickle:
    """Unpickling this object creates a file: what a malicious pickle could do."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.path),))


def test_write_and_read_round_trip(tmp_path):
    ids = ["v0", "v1", "v2", "v3"]
    values = _vectors(4, 8)
    path = write_embeddings_parquet(tmp_path / "emb.parquet", ids, values)
    schema = pq.read_schema(path)
    assert schema.field("video_id").type == pa.string()
    assert schema.field("embedding").type == pa.list_(pa.float32(), 8)
    read_ids, read_values = read_embeddings(path)
    assert read_ids == ids
    assert read_values.dtype == np.float32 and read_values.shape == (4, 8)
    np.testing.assert_array_equal(read_values, values)
    assert [p.name for p in tmp_path.iterdir()] == ["emb.parquet"]  # no temporary file left


def test_float64_input_is_stored_as_float32(tmp_path):
    values = np.array([[0.1, 0.2], [1e-8, -3.5]], dtype=np.float64)
    _, read_values = read_embeddings(write_embeddings_parquet(tmp_path / "e.parquet", ["a", "b"], values))
    np.testing.assert_array_equal(read_values, values.astype(np.float32))


def test_read_directory_of_shards_in_sorted_order(tmp_path):
    shards = tmp_path / "shards"
    values = _vectors(5, 6)
    write_embeddings_parquet(shards / "part-00001.parquet", ["d", "e"], values[3:])
    write_embeddings_parquet(shards / "part-00000.parquet", ["a", "b", "c"], values[:3])
    (shards / ".part-00002.parquet.tmp1").write_bytes(b"half written")  # hidden files are ignored
    ids, read_values = read_embeddings(shards)
    assert ids == ["a", "b", "c", "d", "e"]
    np.testing.assert_array_equal(read_values, values)


def test_read_from_datasets_dataset(tmp_path):
    import datasets

    values = _vectors(3, 4)
    path = write_embeddings_parquet(tmp_path / "e.parquet", ["x", "y", "z"], values)
    dataset = datasets.load_dataset("parquet", data_files=str(path), split="train", cache_dir=str(tmp_path / "cache"))
    assert dataset.features["embedding"] == datasets.List(datasets.Value("float32"), length=4)
    ids, read_values = read_embeddings(dataset)
    assert ids == ["x", "y", "z"]
    np.testing.assert_array_equal(read_values, values)


@pytest.mark.parametrize(
    ("ids", "values", "expected_dim", "message"),
    [
        (
            ["a", "b", "c"],
            np.array([[0.0, 1.0], [np.nan, 1.0], [2.0, 3.0]]),
            None,
            "NaN or inf in the embedding of video\\(s\\) 'b'",
        ),
        (["a", "b"], np.array([[0.0, np.inf], [1.0, 1.0]]), None, "NaN or inf in the embedding of video\\(s\\) 'a'"),
        (["a", "b"], np.zeros((2, 3)), 768, "embedding of video 'a' has dimension 3, expected 768"),
        (["a", "b", "a"], np.zeros((3, 2)), None, "duplicate video id\\(s\\): 'a'"),
        (["a", ""], np.zeros((2, 2)), None, "non-empty strings"),
        (["a"], np.zeros((2, 2)), None, "1 video ids but 2 embeddings"),
    ],
)
def test_validation_names_the_video(tmp_path, ids, values, expected_dim, message):
    with pytest.raises(DataFormatError, match=message):
        validate_embeddings(ids, values, expected_dim)
    with pytest.raises(DataFormatError, match=message):
        write_embeddings_parquet(tmp_path / "bad.parquet", ids, values, expected_dim=expected_dim)
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary file


def test_failed_write_keeps_previous_file(tmp_path):
    path = write_embeddings_parquet(tmp_path / "e.parquet", ["a"], np.ones((1, 2)))
    before = path.read_bytes()
    with pytest.raises(DataFormatError):
        write_embeddings_parquet(path, ["a"], np.full((1, 2), np.nan))
    assert path.read_bytes() == before


def test_read_rejects_ragged_duplicate_and_wrong_dimension(tmp_path):
    ragged = pa.table(
        {"video_id": ["a", "b", "c"], "embedding": pa.array([[1.0, 2.0], [1.0, 2.0], [3.0]], pa.list_(pa.float32()))}
    )
    pq.write_table(ragged, tmp_path / "ragged.parquet")
    with pytest.raises(DataFormatError, match="embedding of video 'c' has dimension 1, but video 'a' has 2"):
        read_embeddings(tmp_path / "ragged.parquet")

    nan = pa.table({"video_id": ["a", "b"], "embedding": pa.array([[1.0], [float("nan")]], pa.list_(pa.float32(), 1))})
    pq.write_table(nan, tmp_path / "nan.parquet")
    with pytest.raises(DataFormatError, match="video\\(s\\) 'b'"):
        read_embeddings(tmp_path / "nan.parquet")

    shards = tmp_path / "dup"
    write_embeddings_parquet(shards / "0.parquet", ["a", "b"], np.zeros((2, 2)))
    write_embeddings_parquet(shards / "1.parquet", ["c", "b"], np.zeros((2, 2)))
    with pytest.raises(DataFormatError, match="duplicate video id\\(s\\): 'b'"):
        read_embeddings(shards)

    with pytest.raises(DataFormatError, match="dimension 2, expected 768"):
        read_embeddings(shards / "0.parquet", expected_dim=768)

    pq.write_table(pa.table({"id": ["a"]}), tmp_path / "nocol.parquet")
    with pytest.raises(DataFormatError, match="lacks column\\(s\\) video_id, embedding"):
        read_embeddings(tmp_path / "nocol.parquet")


def _write_pickle_stream(path: Path) -> dict[str, np.ndarray]:
    """The official layout: several pickled dicts, one after another, values tensors or arrays."""
    expected = {}
    torch_part = {f"FINADiving_{i}": torch.randn(768, generator=torch.Generator().manual_seed(i)) for i in range(3)}
    numpy_part = {"gym_a_E_000001_000002_A_0001_0002": np.arange(768, dtype=np.float64) / 768.0}
    batched = {"gym_b": torch.ones(1, 768)}  # a leading batch dimension of 1
    repeated = {"FINADiving_0": torch_part["FINADiving_0"].clone()}  # same id, same values: kept once
    with open(path, "wb") as handle:
        for chunk in (torch_part, numpy_part, batched, repeated):
            pickle.dump(chunk, handle)
    for key, value in torch_part.items():
        expected[key] = value.numpy()
    expected["gym_a_E_000001_000002_A_0001_0002"] = numpy_part["gym_a_E_000001_000002_A_0001_0002"].astype(np.float32)
    expected["gym_b"] = np.ones(768, dtype=np.float32)
    return expected


def test_convert_pickle_stream(tmp_path):
    expected = _write_pickle_stream(tmp_path / "embs.pkl")
    result = convert_pickle_embeddings(
        tmp_path / "embs.pkl", tmp_path / "embs.parquet", trust_pickle=True, expected_dim=768
    )
    assert result["num_embeddings"] == 5 and result["dim"] == 768
    ids, values = read_embeddings(tmp_path / "embs.parquet")
    assert ids == list(expected)
    np.testing.assert_array_equal(values, np.stack(list(expected.values())))


def test_cli_converts_with_trust_pickle(tmp_path, capsys):
    expected = _write_pickle_stream(tmp_path / "embs.pkl")
    script = load_command("convert-embeddings")
    output = tmp_path / "out.parquet"
    assert script.main([str(tmp_path / "embs.pkl"), "--output", str(output), "--trust-pickle", "--dim", "768"]) == 0
    assert "wrote 5 embeddings of dimension 768" in capsys.readouterr().out
    ids, values = read_embeddings(output)
    assert ids == list(expected)
    np.testing.assert_array_equal(values[ids.index("gym_b")], np.ones(768, dtype=np.float32))
    assert (
        script.main(
            [str(tmp_path / "embs.pkl"), "--output", str(tmp_path / "o2.parquet"), "--trust-pickle", "--dim", "512"]
        )
        == 1
    )
    assert "expected 512" in capsys.readouterr().err
    assert not (tmp_path / "o2.parquet").exists()


def test_refuses_without_trust_and_never_unpickles(tmp_path, capsys):
    marker = tmp_path / "PWNED"
    with open(tmp_path / "evil.pkl", "wb") as handle:
        pickle.dump({"v": _TouchOnUnpickle(marker)}, handle)
    with pytest.raises(UntrustedFileError, match="unpickling a file can execute arbitrary code") as caught:
        load_pickle_embeddings(tmp_path / "evil.pkl")
    assert "--trust-pickle" in str(caught.value)
    with pytest.raises(UntrustedFileError):
        convert_pickle_embeddings(tmp_path / "evil.pkl", tmp_path / "out.parquet", trust_pickle="yes")
    script = load_command("convert-embeddings")
    assert script.main([str(tmp_path / "evil.pkl"), "--output", str(tmp_path / "out.parquet")]) == 2
    err = capsys.readouterr().err
    assert "refusing to read" in err and "--trust-pickle" in err
    assert not marker.exists()
    assert not (tmp_path / "out.parquet").exists()


def test_pickle_stream_errors(tmp_path):
    with open(tmp_path / "list.pkl", "wb") as handle:
        pickle.dump({"a": np.zeros(4)}, handle)
        pickle.dump([1, 2, 3], handle)
    with pytest.raises(DataFormatError, match="object 1 of the pickle stream is a list, expected a dict"):
        load_pickle_embeddings(tmp_path / "list.pkl", trust_pickle=True)

    with open(tmp_path / "conflict.pkl", "wb") as handle:
        pickle.dump({"a": np.zeros(4)}, handle)
        pickle.dump({"a": np.ones(4)}, handle)
    with pytest.raises(DataFormatError, match="video 'a' appears twice .* with different embeddings"):
        load_pickle_embeddings(tmp_path / "conflict.pkl", trust_pickle=True)

    with open(tmp_path / "matrix.pkl", "wb") as handle:
        pickle.dump({"m": np.zeros((2, 4))}, handle)
    with pytest.raises(DataFormatError, match="video 'm' has shape \\(2, 4\\)"):
        load_pickle_embeddings(tmp_path / "matrix.pkl", trust_pickle=True)

    with open(tmp_path / "mixed.pkl", "wb") as handle:
        pickle.dump({"a": np.zeros(4), "b": np.zeros(3)}, handle)
    with pytest.raises(DataFormatError, match="embedding of video 'b' has dimension 3, but video 'a' has 4"):
        convert_pickle_embeddings(tmp_path / "mixed.pkl", tmp_path / "mixed.parquet", trust_pickle=True)
