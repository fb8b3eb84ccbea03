"""`tfcovr-import-release` on release folders in the official layout of `ucf-crcv/TF-CoVR`, with
both embedding forms: the pickle stream (only with --trust-pickle) and one `.pth` per video."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from modeling_tfcovr.commands import run, run_command
from modeling_tfcovr.commands.import_release import main
from modeling_tfcovr.data.embeddings import read_embeddings
from modeling_tfcovr.retrieval_evaluation import load_triplet_split

from .test_tfcovr_builder import (
    DIVE_Q,
    DIVE_T,
    GYM_Q,
    GYM_T1,
    GYM_T2,
    GYM_T3,
    LABEL_A,
    LABEL_B,
    LABEL_C,
    TEST_HEADER,
    TRAIN_HEADER,
    _modification,
    _write_csv,
)

REPO = Path(__file__).resolve().parents[1]
UNUSED = "FINADivingWorldCup2021_Women10m_final_r5_9"  # has an embedding, named by no CSV
# GYM_T3 is named only in a test row's target_videos_ids and has no embedding.
WITH_EMBEDDING = [GYM_Q, GYM_T1, GYM_T2, DIVE_Q, DIVE_T, UNUSED]


class _MkdirWhenUnpickled:
    """Unpickling this object creates the folder `marker`: proof that a file was unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def _write_annotations(release: Path) -> None:
    annotations = release / "annotations"
    annotations.mkdir(parents=True)
    both = _modification((LABEL_B, "Add 1 more turn."), (LABEL_C, "Stretch the body instead of tucking."))
    _write_csv(
        annotations / "train_finegd.csv",
        TRAIN_HEADER,
        [
            [GYM_Q, GYM_T1, LABEL_A, LABEL_B, both],
            [GYM_Q, GYM_T2, LABEL_A, LABEL_B, both],
            [
                DIVE_Q,
                DIVE_T,
                "Forward 2.5 Soms.Pike",
                "Forward 3.5 Soms.Pike",
                _modification(("Forward 3.5 Soms.Pike", "one more somersault")),
            ],
        ],
    )
    _write_csv(
        annotations / "val_finegd.csv",
        TRAIN_HEADER,
        [[GYM_T1, GYM_Q, LABEL_B, LABEL_A, _modification((LABEL_A, "one turn fewer"))]],
    )
    _write_csv(
        annotations / "test_finegd.csv",
        TEST_HEADER,
        [
            ["101", GYM_Q, GYM_T2, repr([GYM_T1, GYM_T2, GYM_T3]), "show it with 2 turns"],
            ["102", DIVE_Q, DIVE_T, repr([DIVE_T]), "with a pike position"],
        ],
    )


def _tensors(seed: int) -> dict[str, torch.Tensor]:
    """The embeddings of the fixture, in the shapes and dtypes a release may hold."""
    generator = torch.Generator().manual_seed(seed)
    tensors = {video_id: torch.randn(768, generator=generator) for video_id in WITH_EMBEDDING}
    tensors[DIVE_Q] = tensors[DIVE_Q].reshape(1, 768)  # a batch axis of one
    tensors[DIVE_T] = tensors[DIVE_T].half()  # stored in float16
    return tensors


def _expected(tensors: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """What the official test computes from each tensor: `.to(torch.float32)`, as a vector."""
    return {video_id: tensor.to(torch.float32).reshape(768).numpy() for video_id, tensor in tensors.items()}


def _write_pth_folder(release: Path, tensors: dict[str, torch.Tensor], bad: bool = True) -> dict[str, str]:
    """`Embeddings/AIM/<id>.pth`; with `bad`, also files that must be refused, and why (the marker
    folder `unpickled-pth` appears if the unsafe one is ever unpickled)."""
    folder = release / "Embeddings" / "AIM"
    folder.mkdir(parents=True)
    for video_id, tensor in tensors.items():
        torch.save(tensor, folder / f"{video_id}.pth")
    if not bad:
        return {}
    torch.save({"embedding": torch.zeros(768)}, folder / "bad_dict.pth")
    torch.save(torch.zeros(12, 768), folder / "bad_frames.pth")
    torch.save(torch.zeros(512), folder / "bad_dim.pth")
    torch.save(torch.arange(768), folder / "bad_int.pth")
    nan = torch.zeros(768)
    nan[5] = float("nan")
    torch.save(nan, folder / "bad_nan.pth")
    torch.save(_MkdirWhenUnpickled(release.parent / "unpickled-pth"), folder / "bad_unsafe.pth")
    (folder / "bad_truncated.pth").write_bytes(b"PK\x03\x04 not a zip")
    (folder / "notes.txt").write_text("not an embedding")  # ignored: not a .pth
    return {
        "bad_dict": "holds a dict, not a tensor",
        "bad_frames": "tensor of shape (12, 768), expected (D,) or (1, D)",
        "bad_dim": "dimension 512, but --dim is 768",
        "bad_int": "tensor of dtype int64, not floating point",
        "bad_nan": "tensor holds NaN or inf",
        "bad_unsafe": "refused by torch.load(weights_only=True), it holds more than tensors (",
        "bad_truncated": "cannot be loaded (RuntimeError: ",
    }


def _write_pickle_stream(release: Path, tensors: dict[str, torch.Tensor]) -> Path:
    """The official stream: several pickled dicts, one after the other, in one file."""
    path = release / "embedding_files" / "aim_embeddings_12f_all_files.pkl"
    path.parent.mkdir(parents=True)
    items = list(tensors.items())
    with open(path, "wb") as handle:
        for start in range(0, len(items), 2):
            pickle.dump(dict(items[start : start + 2]), handle)
    return path


def _read_parquet_embeddings(output: Path) -> dict[str, np.ndarray]:
    ids, values = read_embeddings(output / "embeddings.parquet", expected_dim=768)
    return dict(zip(ids, values))


def _assert_same_embeddings(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert sorted(actual) == sorted(expected)
    for video_id, vector in expected.items():
        assert actual[video_id].dtype == np.float32
        assert np.array_equal(actual[video_id], vector), video_id


def _report(output: Path) -> dict:
    return json.loads((output / "import_report.json").read_text())


def _run_script(*args: str) -> subprocess.CompletedProcess:
    """`tfcovr import-release ARGS`, in-process: its exit status and what it printed."""
    argv = [str(arg) for arg in args]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run_command("import-release", argv)
    return subprocess.CompletedProcess(["tfcovr", "import-release", *argv], code, out.getvalue(), err.getvalue())


def test_pth_release_imports_without_trust_and_lists_missing_unused_and_failed(tmp_path):
    release = tmp_path / "TF-CoVR"
    _write_annotations(release)
    tensors = _tensors(seed=0)
    bad = _write_pth_folder(release, tensors)
    output = tmp_path / "out"

    result = _run_script(release, "--output", output, "--dim", "768")

    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "unpickled-pth").exists()
    embeddings = _read_parquet_embeddings(output)
    _assert_same_embeddings(embeddings, _expected(tensors))
    assert list(embeddings) == sorted(WITH_EMBEDDING)  # in file-name order

    test_rows = pq.read_table(output / "triplets" / "data" / "test.parquet").to_pylist()
    assert [
        (r["query_id"], r["query_video"], r["target_video"], r["target_videos"], r["modification"]) for r in test_rows
    ] == [
        ("101", GYM_Q, GYM_T2, [GYM_T1, GYM_T2, GYM_T3], "show it with 2 turns"),
        ("102", DIVE_Q, DIVE_T, [DIVE_T], "with a pike position"),
    ]
    train_rows = pq.read_table(output / "triplets" / "data" / "train.parquet").to_pylist()
    assert [(r["query_video"], r["target_video"], r["target_videos"], r["modification"]) for r in train_rows] == [
        (GYM_Q, GYM_T1, [GYM_T1, GYM_T2], "Add 1 more turn."),
        (GYM_Q, GYM_T2, [GYM_T1, GYM_T2], "Add 1 more turn."),
        (DIVE_Q, DIVE_T, [DIVE_T], "one more somersault"),
    ]

    report = _report(output)
    assert report["embeddings"]["form"] == "pth"
    assert report["embeddings"]["forms_present"] == ["pth"]
    assert (report["embeddings"]["num_written"], report["embeddings"]["dim"]) == (6, 768)
    assert report["triplets"]["splits"] == {"train": 3, "val": 1, "test": 2}
    assert report["missing_embeddings"]["ids"] == [GYM_T3]
    assert report["missing_embeddings"]["count"] == 1
    assert report["missing_embeddings"]["by_split"]["test"] == {
        "ids_named": 6,
        "ids_missing": 1,
        "rows": 2,
        "rows_missing_query": 0,
        "rows_missing_target_video": 0,
        "rows_missing_a_valid_target": 1,
    }
    assert report["missing_embeddings"]["by_split"]["train"]["ids_missing"] == 0
    assert report["unused_embeddings"] == {"count": 1, "ids": [UNUSED]}
    failures = {Path(f["file"]).name: f for f in report["failures"]}
    assert sorted(failures) == sorted(f"{name}.pth" for name in bad)
    for name, reason in bad.items():
        assert failures[f"{name}.pth"]["video_id"] == name
        assert failures[f"{name}.pth"]["reason"].startswith(reason), failures[f"{name}.pth"]
    assert failures["bad_unsafe.pth"]["file"] == str(release / "Embeddings" / "AIM" / "bad_unsafe.pth")
    assert "mkdir" in failures["bad_unsafe.pth"]["reason"]  # names what it refused

    assert "triplets: train 3, val 1, test 2" in result.stdout
    assert "embeddings: 6 of dimension 768" in result.stdout
    assert f"1 video id(s) named in the CSVs have no embedding (e.g. {GYM_T3})" in result.stdout
    assert f"1 embedding(s) are named by no CSV (e.g. {UNUSED})" in result.stdout
    assert "7 embedding(s) could not be used:" in result.stdout
    assert f"{release / 'Embeddings' / 'AIM' / 'bad_dict.pth'}: holds a dict, not a tensor" in result.stdout


def test_the_output_is_what_the_library_reads(tmp_path):
    import datasets

    release = tmp_path / "TF-CoVR"
    _write_annotations(release)
    _write_pth_folder(release, _tensors(seed=1), bad=False)
    output = tmp_path / "out"
    assert main([str(release), "--output", str(output)]) == 0

    loaded = datasets.load_dataset(str(output / "triplets"))
    assert {split: loaded[split].num_rows for split in loaded} == {"train": 3, "val": 1, "test": 2}
    assert loaded["test"]["target_videos"][0] == [GYM_T1, GYM_T2, GYM_T3]
    split = load_triplet_split(output / "triplets", "test")
    assert list(split.query_videos) == [GYM_Q, DIVE_Q]
    ids, _ = read_embeddings(output / "embeddings.parquet", expected_dim=768)
    assert set(split.query_videos) <= set(ids)


def test_auto_prefers_the_pth_folder_and_says_so(tmp_path):
    release = tmp_path / "TF-CoVR"
    _write_annotations(release)
    pth_tensors, pickle_tensors = _tensors(seed=2), _tensors(seed=3)
    _write_pth_folder(release, pth_tensors, bad=False)
    _write_pickle_stream(release, pickle_tensors)

    auto = tmp_path / "auto"
    assert main([str(release), "--output", str(auto)]) == 0  # no --trust-pickle needed
    _assert_same_embeddings(_read_parquet_embeddings(auto), _expected(pth_tensors))
    report = _report(auto)
    assert report["embeddings"]["form"] == "pth"
    assert report["embeddings"]["forms_present"] == ["pth", "pickle"]
    assert report["embeddings"]["reason"].startswith("auto: Embeddings/AIM/*.pth")
    assert "the pickle stream is also present and was not read" in report["embeddings"]["reason"]

    chosen = tmp_path / "pickle"
    assert main([str(release), "--output", str(chosen), "--embeddings", "pickle"]) == 2
    assert not chosen.exists()
    assert main([str(release), "--output", str(chosen), "--embeddings", "pickle", "--trust-pickle"]) == 0
    _assert_same_embeddings(_read_parquet_embeddings(chosen), _expected(pickle_tensors))
    assert _report(chosen)["embeddings"]["form"] == "pickle"


def test_pickle_only_release_needs_trust_and_is_never_unpickled_without_it(tmp_path, capsys):
    release = tmp_path / "TF-CoVR"
    _write_annotations(release)
    marker = tmp_path / "unpickled"
    tensors = _tensors(seed=4)
    _write_pickle_stream(release, {**tensors, GYM_T3: _MkdirWhenUnpickled(marker)})
    output = tmp_path / "out"

    assert run(main, [str(release), "--output", str(output)]) == 2

    refused = capsys.readouterr().err
    assert refused.startswith("error: UntrustedFileError: refusing to read ")
    assert len(refused.strip().splitlines()) == 1
    assert "--trust-pickle" in refused and "Embeddings/AIM/<video id>.pth" in refused
    assert not marker.exists()
    assert not output.exists()
    # `--embeddings pth` cannot be satisfied: a one-line error naming the folder, exit 1
    assert main([str(release), "--output", str(output), "--embeddings", "pth"]) == 1
    assert not marker.exists()

    # The marker is real: trusting the stream unpickles it (and its value, not a tensor, is refused).
    assert main([str(release), "--output", str(output), "--trust-pickle"]) == 1
    assert marker.is_dir()


def test_pickle_only_release_with_trust(tmp_path):
    release = tmp_path / "TF-CoVR"
    _write_annotations(release)
    tensors = _tensors(seed=5)
    pickle_path = _write_pickle_stream(release, {**tensors, "odd_dimension": torch.ones(16)})
    output = tmp_path / "out"

    assert main([str(release), "--output", str(output), "--trust-pickle"]) == 0

    embeddings = _read_parquet_embeddings(output)
    _assert_same_embeddings(embeddings, _expected(tensors))
    assert list(embeddings) == list(tensors)  # stream order
    report = _report(output)
    assert report["embeddings"]["form"] == "pickle" and report["embeddings"]["source"] == str(pickle_path)
    assert report["missing_embeddings"]["ids"] == [GYM_T3]
    assert report["unused_embeddings"]["ids"] == [UNUSED]
    assert report["failures"] == [
        {
            "file": str(pickle_path),
            "video_id": "odd_dimension",
            "reason": "dimension 16, but the other 6 embedding(s) have 768",
        }
    ]


def test_without_dim_the_most_common_dimension_wins(tmp_path):
    release = tmp_path / "TF-CoVR"
    _write_annotations(release)
    tensors = _tensors(seed=6)
    _write_pth_folder(release, {**tensors, "aaa_first_file": torch.ones(16)}, bad=False)
    output = tmp_path / "out"

    assert main([str(release), "--output", str(output)]) == 0

    _assert_same_embeddings(_read_parquet_embeddings(output), _expected(tensors))
    assert [(f["video_id"], f["reason"]) for f in _report(output)["failures"]] == [
        ("aaa_first_file", "dimension 16, but the other 6 embedding(s) have 768")
    ]


def test_release_without_embeddings_or_annotations_is_a_one_line_error(tmp_path, capsys):
    release = tmp_path / "TF-CoVR"
    _write_annotations(release)
    assert main([str(release), "--output", str(tmp_path / "out")]) == 1
    message = capsys.readouterr().err
    assert message.startswith("error: DataFormatError: release folder ") and "holds no embeddings" in message
    assert len(message.strip().splitlines()) == 1

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([str(empty), "--output", str(tmp_path / "out")]) == 1
    assert "has no annotations/ folder" in capsys.readouterr().err


def test_no_usable_pth_writes_the_report_and_fails(tmp_path, capsys):
    release = tmp_path / "TF-CoVR"
    _write_annotations(release)
    folder = release / "Embeddings" / "AIM"
    folder.mkdir(parents=True)
    torch.save({"not": "a tensor"}, folder / f"{GYM_Q}.pth")
    output = tmp_path / "out"

    assert main([str(release), "--output", str(output)]) == 1

    assert "no usable embedding" in capsys.readouterr().err
    assert not (output / "embeddings.parquet").exists()
    report = _report(output)
    assert report["failures"][0]["reason"] == "holds a dict, not a tensor"
    assert GYM_Q in report["missing_embeddings"]["ids"]
