"""The official-CSV -> parquet builder, on CSV fixtures written in the official layouts."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from modeling_tfcovr.commands import load_command
from modeling_tfcovr.data.tfcovr_csv import (
    TRIPLET_COLUMNS,
    TRIPLET_SCHEMA,
    build_tfcovr_dataset,
    derive_source,
    find_split_csvs,
)
from modeling_tfcovr.errors import DataFormatError

REPO = Path(__file__).resolve().parents[1]
TRAIN_HEADER = ["query_video", "target_video", "label1", "label2", "modification"]
TEST_HEADER = ["query_id", "query_video", "target_video", "target_videos_ids", "modification"]

GYM_Q = "abcDEF12345_E_002407_002544_A_0003_0005"
GYM_T1 = "ghiJKL67890_E_000100_000200_A_0001_0002"
GYM_T2 = "mnoPQR13579_E_000300_000400_A_0004_0006"
GYM_T3 = "stuVWX24680_E_000500_000600_A_0007_0009"
DIVE_Q = "FINADivingWorldCup2021_Men3m_final_r1_0"
DIVE_T = "FINADivingWorldCup2021_Men3m_final_r2_3"
LABEL_A = "(FX) salto backward tucked with 1 turn"
LABEL_B = "(FX) salto backward tucked with 2 turn"
LABEL_C = "(FX) salto backward stretched"


def _modification(*pairs: tuple[str, str]) -> str:
    return repr({label: {"modification": text} for label, text in pairs})


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _train_rows() -> list[list[str]]:
    both = _modification((LABEL_B, "Add one more turn."), (LABEL_C, "Stretch the body instead of tucking."))
    return [
        [GYM_Q, GYM_T1, LABEL_A, LABEL_B, both],
        [GYM_Q, GYM_T2, LABEL_A, LABEL_B, both],
        [GYM_Q, GYM_T3, LABEL_A, LABEL_C, both],
        [
            DIVE_Q,
            DIVE_T,
            "Forward 2.5 Soms.Pike",
            "Forward 3.5 Soms.Pike",
            _modification(("Forward 3.5 Soms.Pike", "one more somersault")),
        ],
        ["clip_1", "clip_2", "7", "12", repr({12: {"modification": "with two and a half twists"}})],
    ]


def _write_valid_csvs(csv_dir: Path) -> Path:
    csv_dir.mkdir(parents=True, exist_ok=True)
    _write_csv(csv_dir / "train_finegd.csv", TRAIN_HEADER, _train_rows())
    _write_csv(
        csv_dir / "val_finegd.csv",
        TRAIN_HEADER,
        [[GYM_T1, GYM_Q, LABEL_B, LABEL_A, _modification((LABEL_A, "one turn fewer"))]],
    )
    _write_csv(
        csv_dir / "test_finegd.csv",
        TEST_HEADER,
        [
            ["101", GYM_Q, GYM_T2, repr([GYM_T1, GYM_T2, GYM_T3]), "show it with 2 turns"],
            ["102", DIVE_Q, DIVE_T, repr([DIVE_T]), "with a pike position"],
        ],
    )
    return csv_dir


def _hub_copy(tmp_path: Path) -> Path:
    """A copy of the real `hub_dataset` card, to build into."""
    output = tmp_path / "hub"
    output.mkdir()
    shutil.copy(REPO / "hub_dataset" / "README.md", output / "README.md")
    return output


def _rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def test_builds_unified_splits_with_expected_values(tmp_path):
    csv_dir = _write_valid_csvs(tmp_path / "csv")
    output = _hub_copy(tmp_path)
    report = build_tfcovr_dataset(csv_dir, output)

    assert {split: info["triplets_written"] for split, info in report["splits"].items()} == {
        "train": 5,
        "val": 1,
        "test": 2,
    }
    assert report["skipped_rows"] == []
    for split in ("train", "val", "test"):
        assert pq.read_schema(output / "data" / f"{split}.parquet").remove_metadata() == TRIPLET_SCHEMA

    train = _rows(output / "data" / "train.parquet")
    assert [row["query_id"] for row in train] == ["train-1", "train-2", "train-3", "train-4", "train-5"]
    assert train[0] == {
        "query_id": "train-1",
        "query_video": GYM_Q,
        "query_label": LABEL_A,
        "modification": "Add one more turn.",
        "target_video": GYM_T1,
        "target_videos": [GYM_T1, GYM_T2],  # every target of (query video, target label)
        "target_label": LABEL_B,
        "source": "finegym",
    }
    assert train[1]["target_video"] == GYM_T2 and train[1]["target_videos"] == [GYM_T1, GYM_T2]
    assert train[2]["modification"] == "Stretch the body instead of tucking."
    assert train[2]["target_videos"] == [GYM_T3]
    assert train[3]["source"] == "finediving" and train[3]["target_videos"] == [DIVE_T]
    # an integer-keyed dict (labels as class ids) still finds the text of label2
    assert train[4]["modification"] == "with two and a half twists"
    assert train[4]["source"] == "unknown"

    test = _rows(output / "data" / "test.parquet")
    assert test[0] == {
        "query_id": "101",
        "query_video": GYM_Q,
        "query_label": "",
        "modification": "show it with 2 turns",
        "target_video": GYM_T2,
        "target_videos": [GYM_T1, GYM_T2, GYM_T3],
        "target_label": "",
        "source": "finegym",
    }
    assert test[1]["source"] == "finediving"

    written = json.loads((output / "build_report.json").read_text())
    assert written == report


def test_load_dataset_round_trip(tmp_path):
    import datasets

    csv_dir = _write_valid_csvs(tmp_path / "csv")
    output = _hub_copy(tmp_path)
    build_tfcovr_dataset(csv_dir, output)
    loaded = datasets.load_dataset(str(output), cache_dir=str(tmp_path / "cache"))
    assert isinstance(loaded, datasets.DatasetDict)
    assert set(loaded) == {"train", "val", "test"}
    assert [loaded[split].num_rows for split in ("train", "val", "test")] == [5, 1, 2]
    assert list(loaded["train"].column_names) == list(TRIPLET_COLUMNS)
    assert loaded["train"].features["target_videos"] == datasets.List(datasets.Value("string"))
    assert loaded["val"][0]["modification"] == "one turn fewer"
    assert loaded["val"][0]["query_id"] == "val-1"
    assert loaded["test"][0]["target_videos"] == [GYM_T1, GYM_T2, GYM_T3]


def test_invalid_rows_are_reported_and_nothing_is_written(tmp_path):
    csv_dir = _write_valid_csvs(tmp_path / "csv")
    marker = tmp_path / "PWNED"
    rows = _train_rows()[:1] + [
        [GYM_Q, "", LABEL_A, LABEL_B, _modification((LABEL_B, "x"))],  # row 2: empty target_video
        [GYM_Q, GYM_T1, LABEL_A, LABEL_B, "{'oops': "],  # row 3: unparsable literal
        [GYM_Q, GYM_T1, LABEL_A, LABEL_B, _modification((LABEL_B, "   "))],  # row 4: empty modification
        [GYM_Q, GYM_T1, LABEL_A],  # row 5: missing columns
        [GYM_Q, GYM_T1, LABEL_A, LABEL_B, _modification((LABEL_C, "other"))],  # row 6: no entry for label2
        [GYM_Q, GYM_T1, LABEL_A, LABEL_B, f"__import__('pathlib').Path({str(marker)!r}).touch()"],  # row 7
        ["../../etc/passwd", GYM_T1, LABEL_A, LABEL_B, _modification((LABEL_B, "x"))],  # row 8: unsafe id
    ]
    _write_csv(csv_dir / "train_finegd.csv", TRAIN_HEADER, rows)
    output = _hub_copy(tmp_path)

    with pytest.raises(DataFormatError) as caught:
        build_tfcovr_dataset(csv_dir, output)
    message = str(caught.value)
    assert "7 invalid row(s)" in message
    assert "train_finegd.csv row 2 (line 3; the header is line 1): empty value in column 'target_video'" in message
    assert "row 3 (line 4; the header is line 1): cannot parse 'modification' as a Python literal" in message
    assert "row 4 (line 5; the header is line 1): empty modification text" in message
    assert "row 5 (line 6; the header is line 1): row has 3 field(s) but the header has 5" in message
    assert "row 6 (line 7; the header is line 1): 'modification' has no entry for target label" in message
    assert "row 7 (line 8; the header is line 1): cannot parse 'modification'" in message
    assert (
        "row 8 (line 9; the header is line 1): query_video '../../etc/passwd' is not a plain video file name" in message
    )
    assert not marker.exists()  # literals are never evaluated
    assert not (output / "data").exists()
    assert not (output / "build_report.json").exists()
    assert sorted(p.name for p in output.iterdir()) == ["README.md"]


def test_skip_invalid_writes_valid_rows_and_report(tmp_path):
    csv_dir = _write_valid_csvs(tmp_path / "csv")
    _write_csv(
        csv_dir / "test_finegd.csv",
        TEST_HEADER,
        [
            ["101", GYM_Q, GYM_T2, repr([GYM_T1, GYM_T2]), "with 2 turns"],
            ["102", GYM_Q, GYM_T2, "[unclosed", "with 2 turns"],  # row 2: bad list literal
            ["103", GYM_Q, GYM_T3, repr([GYM_T1]), "with 2 turns"],  # row 3: annotated target not listed
            ["104", GYM_Q, GYM_T3, repr([]), "with 2 turns"],  # row 4: empty list
            ["105", GYM_Q, GYM_T1, repr([GYM_T1]), ""],  # row 5: empty modification
            ["106", DIVE_Q, DIVE_T, repr([DIVE_T]), "with a pike"],
        ],
    )
    output = _hub_copy(tmp_path)
    script = load_command("build-dataset")
    assert script.main(["--csv-dir", str(csv_dir), "--output", str(output), "--skip-invalid"]) == 0

    test = _rows(output / "data" / "test.parquet")
    assert [row["query_id"] for row in test] == ["101", "106"]
    report = json.loads((output / "build_report.json").read_text())
    assert report["splits"]["test"] == {
        "file": "test_finegd.csv",
        "layout": "test",
        "rows_read": 6,
        "triplets_written": 2,
        "rows_skipped": 4,
    }
    skipped = {(entry["split"], entry["row"], entry["line"]): entry["reason"] for entry in report["skipped_rows"]}
    assert set(skipped) == {("test", 2, 3), ("test", 3, 4), ("test", 4, 5), ("test", 5, 6)}
    assert skipped[("test", 2, 3)].startswith("cannot parse 'target_videos_ids' as a Python literal")
    assert skipped[("test", 3, 4)] == f"target_video {GYM_T3!r} is not among target_videos_ids"
    assert skipped[("test", 4, 5)] == "'target_videos_ids' is an empty list"
    assert skipped[("test", 5, 6)] == "empty value in column 'modification'"
    assert len(_rows(output / "data" / "train.parquet")) == 5


def test_line_numbers_follow_multiline_fields_and_blank_lines(tmp_path):
    csv_dir = _write_valid_csvs(tmp_path / "csv")
    literal = "{'B':\n {'modification': 'spans two lines'}}"  # a newline between tokens is a valid literal
    text = (
        "query_video,target_video,label1,label2,modification\n"
        + f'{GYM_Q},{GYM_T1},A,B,"{literal}"\n'
        + "\n"
        + f"{GYM_Q},{GYM_T2},A,B,\n"
    )
    (csv_dir / "val_finegd.csv").write_text(text, encoding="utf-8")
    output = _hub_copy(tmp_path)
    report = build_tfcovr_dataset(csv_dir, output, skip_invalid=True)
    assert report["skipped_rows"] == [
        {
            "file": "val_finegd.csv",
            "split": "val",
            "row": 2,
            "line": 5,
            "reason": "empty value in column 'modification'",
        }
    ]
    assert _rows(output / "data" / "val.parquet")[0]["modification"] == "spans two lines"


def test_failed_build_keeps_previous_files(tmp_path):
    csv_dir = _write_valid_csvs(tmp_path / "csv")
    output = _hub_copy(tmp_path)
    build_tfcovr_dataset(csv_dir, output)
    before = {p.name: p.read_bytes() for p in (output / "data").iterdir()}
    _write_csv(csv_dir / "val_finegd.csv", TRAIN_HEADER, [[GYM_Q, GYM_T1, LABEL_A, LABEL_B, "not a dict"]])
    with pytest.raises(DataFormatError, match="row 1 \\(line 2"):
        build_tfcovr_dataset(csv_dir, output)
    assert {p.name: p.read_bytes() for p in (output / "data").iterdir()} == before


def test_missing_header_column_is_a_file_error_even_when_skipping(tmp_path):
    csv_dir = _write_valid_csvs(tmp_path / "csv")
    _write_csv(
        csv_dir / "train_finegd.csv", ["query_video", "target_video", "label1", "modification"], [["a", "b", "c", "d"]]
    )
    with pytest.raises(DataFormatError, match="missing column\\(s\\) label2"):
        build_tfcovr_dataset(csv_dir, tmp_path / "out", skip_invalid=True)
    assert not (tmp_path / "out").exists()


def test_cli_reports_invalid_rows_and_fails(tmp_path, capsys):
    csv_dir = _write_valid_csvs(tmp_path / "csv")
    _write_csv(csv_dir / "val_finegd.csv", TRAIN_HEADER, [[GYM_Q, GYM_T1, LABEL_A, LABEL_B, "{1: 2"]])
    script = load_command("build-dataset")
    assert script.main(["--csv-dir", str(csv_dir), "--output", str(tmp_path / "out")]) == 1
    assert "val_finegd.csv row 1 (line 2; the header is line 1): cannot parse 'modification'" in capsys.readouterr().err
    assert not (tmp_path / "out" / "data").exists()


def test_find_split_csvs(tmp_path):
    for name in ("train_finegd.csv", "validation.csv", "test-set.csv", "notes.txt"):
        (tmp_path / name).write_text("x\n")
    assert {split: path.name for split, path in find_split_csvs(tmp_path).items()} == {
        "train": "train_finegd.csv",
        "val": "validation.csv",
        "test": "test-set.csv",
    }
    (tmp_path / "val_finegd.csv").write_text("x\n")
    with pytest.raises(DataFormatError, match="several CSVs match split 'val'"):
        find_split_csvs(tmp_path)
    (tmp_path / "validation.csv").unlink()
    (tmp_path / "test-set.csv").unlink()
    with pytest.raises(DataFormatError, match="no CSV for split 'test'"):
        find_split_csvs(tmp_path)


@pytest.mark.parametrize(
    ("video_id", "label", "expected"),
    [
        (GYM_Q, "", "finegym"),
        (DIVE_Q, "", "finediving"),
        ("01_1", "Forward 2.5 Soms.Pike", "finediving"),
        ("x", "(BB) split leap forward", "finegym"),
        ("x", "12", "unknown"),
    ],
)
def test_derive_source(video_id, label, expected):
    assert derive_source(video_id, label) == expected
