"""A user's mistake in any command (a split that does not exist, a missing file or folder, a bad flag value) ends in
one line on stderr that names the input, a non-zero exit status and no traceback; caught before any heavy work.

Every command of the registry has at least one case here (the test fails for a command without one); they run
in-process through `run_command`, and one case runs the `tfcovr` program as a real process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modeling_tfcovr.commands import COMMANDS, run_command

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def triplets(tmp_path_factory) -> Path:
    """A triplets folder with the synthetic gym's splits (train, val, test)."""
    folder = tmp_path_factory.mktemp("triplets")
    (folder / "data").mkdir()
    row = {
        "query_id": ["q0"],
        "query_video": ["a"],
        "target_video": ["b"],
        "modification": ["turn more"],
        "valid_targets": [["b"]],
    }
    for split in ("train", "val", "test"):
        pq.write_table(pa.table(row), folder / "data" / f"{split}.parquet")
    return folder


def _cases(tmp: Path, triplets: Path) -> list[tuple[str, list[str], list[str]]]:
    """(command, argv, the strings its one error line must contain)."""
    missing = tmp / "no-such-thing"
    return [
        ("demo", ["--stage1-epochs", "many"], ["--stage1-epochs", "'many'"]),
        ("demo", ["--collect", str(missing)], [str(missing)]),
        ("app", ["--model", str(missing), "--videos", str(tmp)], [str(missing)]),
        ("build-synthetic", ["--output", str(tmp / "gym"), "--elements", "salto,flip"], ["flip", "salto"]),
        ("build-dataset", ["--csv-dir", str(missing), "--output", str(tmp / "out")], [str(missing)]),
        ("import-release", [str(missing), "--output", str(tmp / "out")], [str(missing)]),
        ("convert-embeddings", [str(missing), "--output", str(tmp / "e.parquet")], [str(missing)]),
        (
            "prepare-finegym",
            ["--annotations", str(missing), "--videos", str(tmp), "--output", str(tmp / "c")],
            [str(missing)],
        ),
        ("prepare-finediving", ["--frames", str(missing), "--output", str(tmp / "c")], [str(missing)]),
        (
            "build-clips-dataset",
            ["--videos", str(tmp), "--output", str(tmp / "d"), "--split", "train"],
            ["'train'", "SPLIT=FILE"],
        ),
        (
            "build-clips-dataset",
            ["--videos", str(missing), "--output", str(tmp / "d"), "--split", f"train={missing}"],
            [str(missing)],
        ),
        ("train-classifier", ["--dataset_dir", str(missing), "--output_dir", str(tmp / "run")], [str(missing)]),
        (
            "train-classifier",
            ["--dataset-dir", str(tmp), "--output-dir", str(tmp / "run"), "--adapter-init", "sideways"],
            ["--adapter_init", "'sideways'"],
        ),
        (
            "evaluate",
            [
                "--model",
                str(missing),
                "--triplets",
                str(triplets),
                "--embeddings",
                "e.parquet",
                "--output-dir",
                str(tmp / "eval"),
            ],
            ["--model", str(missing)],
        ),
        (
            "extract-embeddings",
            ["--model", str(missing), "--videos", str(tmp), "--output", str(tmp / "o")],
            [str(missing)],
        ),
        (
            "train-retrieval",
            ["--triplets", str(missing), "--embeddings", str(tmp / "e.parquet"), "--output-dir", str(tmp / "run")],
            [str(missing)],
        ),
        (
            "evaluate",
            [
                "--model",
                "ucf/no-such-model",
                "--triplets",
                str(triplets),
                "--split",
                "validation",
                "--embeddings",
                str(tmp / "e.parquet"),
                "--output-dir",
                str(tmp / "eval"),
            ],
            ["'validation'", str(triplets), "train, val, test"],
        ),
        (
            "evaluate",
            [
                "--model",
                "ucf/no-such-model",
                "--triplets",
                str(triplets),
                "--split",
                "test",
                "--embeddings",
                str(tmp / "e.parquet"),
                "--output_dir",
                str(tmp / "eval"),
                "--k",
                "5,ten",
            ],
            ["--k", "'5,ten'"],
        ),
        ("push-to-hub", [str(missing), "--repo-id", "ucf/x", "--dry-run"], [str(missing)]),
        ("push-to-hub", [str(tmp), "--repo-id", "ucf/x", "--repo-type", "space"], ["'space'", "model", "dataset"]),
        ("convert-aim", [str(missing), "--output", str(tmp / "aim")], [str(missing)]),
        ("convert-aim", [str(missing), "--output", str(tmp / "aim"), "--preset", "vit-z"], ["'vit-z'"]),
        ("convert-openai-clip", [str(missing), "--output", str(tmp / "clip")], [str(missing)]),
        ("convert-checkpoint", [str(missing), "--output", str(tmp / "tfcovr")], [str(missing)]),
        ("build-clip-tokenizer", ["--output", str(tmp / "tok"), "--bpe-path", str(missing)], [str(missing)]),
        ("check-gpu", ["--benchmark-repeats", "ten"], ["--benchmark-repeats", "'ten'"]),
    ]


def test_every_command_has_a_case(tmp_path, triplets):
    assert set(COMMANDS) == {name for name, _, _ in _cases(tmp_path, triplets)}


@pytest.mark.parametrize("index", range(len(_cases(Path("unused"), Path("unused")))))
def test_a_mistake_ends_in_one_line_naming_the_input(index, tmp_path, triplets, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a path that is not a folder must not be looked up on the Hub
    name, argv, expected = _cases(tmp_path, triplets)[index]
    code = run_command(name, argv)
    err = capsys.readouterr().err
    assert code != 0, (name, argv)
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1 and "error: " in err, err
    for text in expected:
        assert text in err, (text, err)
    assert not (tmp_path / "run").exists() and not (tmp_path / "eval").exists()  # stopped before any work


def test_the_tfcovr_program_reports_a_missing_split_in_one_line(tmp_path, triplets):
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "modeling_tfcovr.commands",
            "evaluate",
            "--model",
            "m",
            "--triplets",
            str(triplets),
            "--split",
            "validation",
            "--embeddings",
            "e.parquet",
            "--output-dir",
            str(tmp_path / "eval"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"error: DataFormatError: split 'validation' not found in {str(triplets)!r}; available: train, val, test\n"
    )
