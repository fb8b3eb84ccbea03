"""Official TF-CoVR annotation CSVs -> one parquet table per split, in the project's triplet schema.

The official release ships three CSVs in two layouts:

- train style: `query_video, target_video, label1, label2, modification`, where `modification` is a
  Python-literal dict string keyed by target label, each value `{"modification": "<text>"}`;
- test style: `query_id, query_video, target_video, target_videos_ids, modification`, where
  `target_videos_ids` is a Python-literal list string and `modification` plain text.

The layout of each file is detected from its header, so a validation file in either layout works.
Every split is written with the same columns (`TRIPLET_SCHEMA`), which is also what the synthetic
benchmark writes, so every tool of the project reads both.

Literals are parsed with `ast.literal_eval` only. Invalid rows (missing or empty values, unparsable literals,
video ids that are not plain file names, bytes that are not UTF-8, a repeated row or `query_id`) are collected with
their row number and the reason; the build either stops before writing anything or, with `skip_invalid=True`, leaves
them out and records them in `build_report.json`. Files are written under temporary names and renamed only
once every split has been written, so a failed build never leaves half a dataset behind.
"""

from __future__ import annotations

import ast
import contextlib
import csv
import io
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import DataFormatError, UnsafePathError
from ..io_utils import atomic_path
from ..video_io import VIDEO_EXTENSIONS, resolve_video_path

SPLITS = ("train", "val", "test")

TRIPLET_COLUMNS = (
    "query_id",
    "query_video",
    "query_label",
    "modification",
    "target_video",
    "target_videos",
    "target_label",
    "source",
)

TRIPLET_SCHEMA = pa.schema(
    [
        pa.field("query_id", pa.string(), nullable=False),
        pa.field("query_video", pa.string(), nullable=False),
        pa.field("query_label", pa.string(), nullable=False),
        pa.field("modification", pa.string(), nullable=False),
        pa.field("target_video", pa.string(), nullable=False),
        pa.field("target_videos", pa.list_(pa.string()), nullable=False),
        pa.field("target_label", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
    ]
)
"""Arrow schema of a triplet table (TF-CoVR and synthetic splits alike)."""

REPORT_FILENAME = "build_report.json"

TRAIN_STYLE_COLUMNS = ("query_video", "target_video", "label1", "label2", "modification")
TEST_STYLE_COLUMNS = ("query_video", "target_video", "target_videos_ids", "modification")

_SPLIT_ALIASES = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}
_MAX_ERRORS_IN_MESSAGE = 20

# FineGym sub-action clips are named `<youtube id>_E_<start>_<end>_A_<start>_<end>`.
_FINEGYM_ID = re.compile(r"_E_\d+_\d+_A_\d+_\d+$")
_FINEDIVING_ID_HINTS = ("finadiving", "finediving", "diving")
_FINEGYM_LABEL_WORDS = (
    "salto",
    "handspring",
    "round-off",
    "flic-flac",
    "leap",
    "hop",
    "split",
    "giant",
    "kip",
    "handstand",
    "vault",
    "beam",
    "floor",
    "bars",
    "(vt)",
    "(fx)",
    "(bb)",
    "(ub)",
)
_FINEDIVING_LABEL_WORDS = (
    "soms",
    "somersault",
    "pike",
    "tuck",
    "armstand",
    "inward",
    "dive",
    "diving",
    "platform",
    "springboard",
)


@dataclass(frozen=True)
class RowError:
    """One invalid CSV row: where it is and what is wrong with it."""

    file: str
    split: str
    row: int
    """1-based data row number; the header is not counted."""
    line: int
    """1-based line in the file where the row starts; the header is line 1."""
    reason: str

    def __str__(self) -> str:
        return f"{self.file} row {self.row} (line {self.line}; the header is line 1): {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "split": self.split, "row": self.row, "line": self.line, "reason": self.reason}


@dataclass
class SplitResult:
    """The parsed rows of one split, and the rows that were invalid."""

    split: str
    file: str
    layout: str
    num_rows: int = 0
    triplets: list[dict[str, Any]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def find_split_csvs(csv_dir: str | os.PathLike) -> dict[str, Path]:
    """Finds the CSV of each split in `csv_dir` (e.g. `train_finegd.csv`, `val.csv`, `test_finegd.csv`).

    A file belongs to a split when one of the words of its name (split on non-letters) is the split
    name (`val`, `valid` and `validation` all mean the validation split).

    Raises:
        DataFormatError: the directory is missing, a split has no CSV, or several CSVs match one split.
    """
    csv_dir = Path(csv_dir)
    if not csv_dir.is_dir():
        raise DataFormatError(f"CSV directory {str(csv_dir)!r} does not exist or is not a directory")
    candidates = sorted(p for p in csv_dir.iterdir() if p.suffix.lower() == ".csv" and p.is_file())
    found: dict[str, Path] = {}
    for split in SPLITS:
        matches = [p for p in candidates if set(re.split(r"[^a-z]+", p.stem.lower())) & set(_SPLIT_ALIASES[split])]
        if not matches:
            names = ", ".join(p.name for p in candidates) or "no CSV files"
            raise DataFormatError(
                f"no CSV for split {split!r} in {str(csv_dir)!r} (found: {names}); "
                f"expected a name such as {split}.csv or {split}_finegd.csv"
            )
        if len(matches) > 1:
            raise DataFormatError(
                f"several CSVs match split {split!r} in {str(csv_dir)!r}: {', '.join(p.name for p in matches)}; "
                "pass the files explicitly"
            )
        found[split] = matches[0]
    return found


def derive_source(video_id: str, label: str = "") -> str:
    """`"finegym"` or `"finediving"` when the video id or the label tells, else `"unknown"`.

    FineGym sub-action ids end in `_E_<start>_<end>_A_<start>_<end>`; FineDiving ids come from its
    `FINADiving...` frame folders. Failing that, words of the label decide (`salto`, `beam`, ... for
    FineGym; `pike`, `tuck`, `soms`, ... for FineDiving) when only one of the two vocabularies matches.
    """
    if _FINEGYM_ID.search(video_id):
        return "finegym"
    lowered_id = video_id.lower()
    if any(hint in lowered_id for hint in _FINEDIVING_ID_HINTS):
        return "finediving"
    words = label.lower()
    gym = any(word in words for word in _FINEGYM_LABEL_WORDS)
    diving = any(word in words for word in _FINEDIVING_LABEL_WORDS)
    if gym != diving:
        return "finegym" if gym else "finediving"
    return "unknown"


def parse_split_csv(path: str | os.PathLike, split: str) -> SplitResult:
    """Parses one official CSV into triplet rows (see `TRIPLET_SCHEMA`), collecting invalid rows.

    Raises:
        DataFormatError: the file cannot be read, or its header lacks the columns of both layouts
            (a file-level problem that skipping rows cannot fix).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataFormatError(f"cannot read {str(path)!r}: {error.strerror or error}") from None
    # Bytes that are not UTF-8 become lone surrogates (surrogateescape), so that the rows holding them are
    # reported (and skipped with skip_invalid) instead of the whole file being refused.
    text = raw.decode("utf-8-sig", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise DataFormatError(f"{str(path)!r} is empty; expected a header line") from None
    except csv.Error as error:
        raise DataFormatError(f"{str(path)!r} line 1: malformed CSV header ({error})") from None
    invalid = _invalid_utf8(header)
    if invalid is not None:
        raise DataFormatError(f"{str(path)!r} line 1 (header): {invalid}")
    columns = [name.strip() for name in header]
    layout = _detect_layout(columns, path)
    result = SplitResult(split=split, file=path.name, layout=layout)
    position = {name: index for index, name in enumerate(columns) if name}
    row_number = 0
    start_line = reader.line_num + 1
    first_seen: dict[tuple[str, ...], tuple[int, int]] = {}  # row values -> (row, line) of the first copy
    query_id_rows: dict[str, int] = {}
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            row_number += 1
            result.errors.append(RowError(path.name, split, row_number, start_line, f"malformed CSV ({error})"))
            start_line = reader.line_num + 1
            continue
        line, start_line = start_line, reader.line_num + 1
        if not values:  # a blank line is not a row
            continue
        row_number += 1
        try:
            invalid = _invalid_utf8(values, columns)
            if invalid is not None:
                raise _RowProblem(invalid)
            triplet = _parse_row(values, columns, position, layout, split, row_number)
            key = tuple(value.strip() for value in values)
            if key in first_seen:
                raise _RowProblem("duplicate of row {} (line {})".format(*first_seen[key]))
            if triplet["query_id"] in query_id_rows:
                raise _RowProblem(
                    f"query_id {triplet['query_id']!r} is already used by row {query_id_rows[triplet['query_id']]}"
                )
        except _RowProblem as problem:
            result.errors.append(RowError(path.name, split, row_number, line, str(problem)))
            continue
        first_seen[key] = (row_number, line)
        query_id_rows[triplet["query_id"]] = row_number
        result.triplets.append(triplet)
    result.num_rows = row_number
    if layout == "train":
        _fill_train_targets(result.triplets)
    return result


def build_tfcovr_dataset(
    csv_dir: str | os.PathLike | None,
    output_dir: str | os.PathLike,
    skip_invalid: bool = False,
    csv_files: Mapping[str, str | os.PathLike] | None = None,
) -> dict[str, Any]:
    """Converts the official TF-CoVR CSVs into `<output_dir>/data/{train,val,test}.parquet`.

    Args:
        csv_dir: directory holding the three CSVs (see `find_split_csvs`); may be `None` when
            `csv_files` names every split.
        output_dir: the dataset repository (e.g. `hub_dataset`); parquet files go to its `data/`
            folder and the report to `build_report.json`.
        skip_invalid: leave invalid rows out (and list them in the report) instead of failing.
        csv_files: explicit `{split: path}` overriding what is found in `csv_dir`.

    Returns:
        The report written to `build_report.json`: rows read, triplets written and invalid rows per
        split, and the invalid rows themselves.

    Raises:
        DataFormatError: a file is missing or unreadable, or (without `skip_invalid`) some rows are
            invalid; in that case nothing is written, and the message lists the rows and reasons.
    """
    files: dict[str, Path] = {}
    if csv_dir is not None and not (csv_files and set(csv_files) >= set(SPLITS)):
        files.update(find_split_csvs(csv_dir))
    for split, path in (csv_files or {}).items():
        if split not in SPLITS:
            raise DataFormatError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        files[split] = Path(path)
    missing = [split for split in SPLITS if split not in files]
    if missing:
        raise DataFormatError(f"no CSV given for split(s) {', '.join(missing)}")

    results = {split: parse_split_csv(files[split], split) for split in SPLITS}
    errors = [error for result in results.values() for error in result.errors]
    if errors and not skip_invalid:
        raise DataFormatError(_describe_errors(errors))
    empty = [split for split, result in results.items() if not result.triplets]
    if empty:
        raise DataFormatError(f"no valid rows left for split(s) {', '.join(empty)}; nothing written")

    report = {
        "splits": {
            split: {
                "file": result.file,
                "layout": result.layout,
                "rows_read": result.num_rows,
                "triplets_written": len(result.triplets),
                "rows_skipped": len(result.errors),
            }
            for split, result in results.items()
        },
        "row_numbering": "row: 1-based data row (header not counted); line: 1-based line in the file, header is line 1",
        "skipped_rows": [error.to_dict() for error in errors],
    }
    output_dir = Path(output_dir)
    tables = {f"data/{split}.parquet": triplets_to_table(result.triplets) for split, result in results.items()}
    write_files_atomically(output_dir, tables, {REPORT_FILENAME: json.dumps(report, indent=2) + "\n"})
    return report


def triplets_to_table(triplets: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Arrow table in `TRIPLET_SCHEMA` from dicts with (at least) the triplet columns."""
    rows = list(triplets)
    columns = {name: [row[name] for row in rows] for name in TRIPLET_COLUMNS}
    return pa.Table.from_pydict(columns, schema=TRIPLET_SCHEMA)


def write_parquet_atomic(table: pa.Table, path: str | os.PathLike) -> Path:
    """Writes `table` to `path` via a temporary file and a rename; the bytes depend only on the table."""
    path = Path(path)
    write_files_atomically(path.parent, {path.name: table})
    return path


def write_files_atomically(
    root: str | os.PathLike,
    tables: Mapping[str, pa.Table],
    texts: Mapping[str, str] | None = None,
) -> None:
    """Writes parquet tables and text files under `root`, renaming them into place only after all
    of them were written successfully (temporary files are removed on failure)."""
    root = Path(root)
    texts = texts or {}
    finals = [root / relative for relative in [*tables, *texts]]
    with contextlib.ExitStack() as stack:
        # Entered last to first, so that the renames (on exit, in reverse) happen in the order the files are given.
        tmps = [stack.enter_context(atomic_path(final)) for final in reversed(finals)][::-1]
        for tmp, table in zip(tmps, tables.values()):
            pq.write_table(table, tmp, compression="snappy")
        for tmp, text in zip(tmps[len(tables) :], texts.values()):
            tmp.write_text(text, encoding="utf-8")


class _RowProblem(Exception):
    """Internal: why one row is invalid."""


def _invalid_utf8(values: list[str], columns: list[str] | None = None) -> str | None:
    """Why `values` (decoded with surrogateescape) are not valid UTF-8 text, or `None` when they are."""
    for index, value in enumerate(values):
        bad = re.search("[\udc80-\udcff]", value)
        if bad is not None:
            where = (
                f"column {columns[index]!r}" if columns is not None and index < len(columns) else f"field {index + 1}"
            )
            return (
                f"{where} is not valid UTF-8 text (byte 0x{ord(bad.group()) - 0xDC00:02x} at character {bad.start()})"
            )
    return None


def _detect_layout(columns: list[str], path: Path) -> str:
    present = set(columns)
    if "target_videos_ids" in present:
        missing = [name for name in TEST_STYLE_COLUMNS if name not in present]
        if not missing:
            return "test"
    else:
        missing = [name for name in TRAIN_STYLE_COLUMNS if name not in present]
        if not missing:
            return "train"
    raise DataFormatError(
        f"{str(path)!r} line 1 (header): missing column(s) {', '.join(missing)}; found {', '.join(columns)}. "
        f"Expected the train layout ({', '.join(TRAIN_STYLE_COLUMNS)}) or the test layout "
        f"(query_id, {', '.join(TEST_STYLE_COLUMNS)})"
    )


def _parse_row(
    values: list[str], columns: list[str], position: Mapping[str, int], layout: str, split: str, row_number: int
) -> dict[str, Any]:
    if len(values) < len(columns):
        missing = [name for name in columns[len(values) :] if name]
        raise _RowProblem(
            f"row has {len(values)} field(s) but the header has {len(columns)}; missing {', '.join(missing)}"
        )
    if len(values) > len(columns):
        raise _RowProblem(f"row has {len(values)} fields but the header has {len(columns)} (unquoted comma?)")

    def get(name: str, required: bool = True) -> str:
        if name not in position:
            return ""
        value = values[position[name]].strip()
        if required and not value:
            raise _RowProblem(f"empty value in column {name!r}")
        return value

    query_video = _video_id(get("query_video"), "query_video")
    target_video = _video_id(get("target_video"), "target_video")
    if layout == "train":
        query_label = get("label1")
        target_label = get("label2")
        modification = _modification_from_dict(get("modification"), target_label)
        query_id = f"{split}-{row_number}"
        target_videos: list[str] = []  # filled per (query video, target label) afterwards
    else:
        query_label = get("label1", required=False) or get("query_label", required=False)
        target_label = get("label2", required=False) or get("target_label", required=False)
        modification = get("modification")
        query_id = get("query_id") if "query_id" in position else f"{split}-{row_number}"
        target_videos = _target_list(get("target_videos_ids"))
        if target_video not in target_videos:
            raise _RowProblem(f"target_video {target_video!r} is not among target_videos_ids")
    if not modification.strip():
        raise _RowProblem("empty modification text")
    return {
        "query_id": query_id,
        "query_video": query_video,
        "query_label": query_label,
        "modification": modification.strip(),
        "target_video": target_video,
        "target_videos": target_videos,
        "target_label": target_label,
        "source": _row_source(query_video, query_label, target_video, target_label),
    }


def _row_source(query_video: str, query_label: str, target_video: str, target_label: str) -> str:
    source = derive_source(query_video, query_label)
    return source if source != "unknown" else derive_source(target_video, target_label)


def _video_id(value: str, column: str) -> str:
    stem = value
    if Path(value).suffix.lower() in VIDEO_EXTENSIONS:
        stem = value[: -len(Path(value).suffix)]
    try:
        resolve_video_path(".", stem)
    except UnsafePathError:
        raise _RowProblem(f"{column} {value!r} is not a plain video file name (no '/', '\\' or '..' allowed)") from None
    return stem


def _literal(text: str, column: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as error:
        detail = getattr(error, "msg", None) or str(error) or type(error).__name__
        raise _RowProblem(f"cannot parse {column!r} as a Python literal ({detail})") from None


def _modification_from_dict(text: str, target_label: str) -> str:
    value = _literal(text, "modification")
    if not isinstance(value, dict):
        raise _RowProblem(f"'modification' must be a dict literal keyed by target label, got a {type(value).__name__}")
    entry = None
    for key, candidate in value.items():
        if str(key).strip() == target_label:
            entry = candidate
            break
    if entry is None:
        keys = ", ".join(repr(str(key)) for key in value) or "none"
        raise _RowProblem(f"'modification' has no entry for target label {target_label!r} (keys: {keys})")
    if isinstance(entry, dict):
        if "modification" not in entry:
            raise _RowProblem(f"'modification' entry for {target_label!r} has no 'modification' key")
        entry = entry["modification"]
    if not isinstance(entry, str):
        raise _RowProblem(f"'modification' text for {target_label!r} is a {type(entry).__name__}, not a string")
    return entry


def _target_list(text: str) -> list[str]:
    value = _literal(text, "target_videos_ids")
    if not isinstance(value, (list, tuple)):
        raise _RowProblem(f"'target_videos_ids' must be a list literal, got a {type(value).__name__}")
    if not value:
        raise _RowProblem("'target_videos_ids' is an empty list")
    targets: list[str] = []
    for item in value:
        if not isinstance(item, (str, int)) or isinstance(item, bool) or not str(item).strip():
            raise _RowProblem(f"'target_videos_ids' holds {item!r}, not a video id")
        # Repeats are kept as written: the official test counts |G| with them (the "unique" protocol ignores them).
        targets.append(_video_id(str(item).strip(), "target_videos_ids"))
    return targets


def _fill_train_targets(triplets: list[dict[str, Any]]) -> None:
    """Every target of the same (query video, target label) is a valid target (first-seen order)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for triplet in triplets:
        group = groups.setdefault((triplet["query_video"], triplet["target_label"]), [])
        if triplet["target_video"] not in group:
            group.append(triplet["target_video"])
    for triplet in triplets:
        triplet["target_videos"] = list(groups[(triplet["query_video"], triplet["target_label"])])


def _describe_errors(errors: list[RowError]) -> str:
    lines = [
        f"{len(errors)} invalid row(s); nothing was written (use skip_invalid=True / --skip-invalid to skip them):"
    ]
    lines += [f"  {error}" for error in errors[:_MAX_ERRORS_IN_MESSAGE]]
    if len(errors) > _MAX_ERRORS_IN_MESSAGE:
        lines.append(f"  ... and {len(errors) - _MAX_ERRORS_IN_MESSAGE} more")
    return "\n".join(lines)
