"""A folder of clips + labels -> a stage-1 clips dataset (Hugging Face `datasets`, parquet) in a named label space.

Labels come from any of:
- TF-CoVR's stage-1 table (`AIM_Embeddings`): a CSV with columns `video_file` (clip id) and `label`;
- TF-CoVR's annotation CSVs: `query_video` labelled `label1`, `target_video` labelled `label2`;
- FineGym's element lists (`gym288_*_element*.txt`): `<clip id> <label>` per line.

The result is the layout `scripts/train_classifier.py --dataset-dir` reads: `clips/<split>.parquet`
with columns `video` (path relative to the folder), `video_id`, `label` (the label's name) and
`label_id` (a `ClassLabel` over the label set, in its order), `labels.json` (the label names in
index order, which becomes the model's `id2label`), `videos` (a link to the clips folder) and
`report.json`. As in the official stage-1 data module, rows whose label is not in the label set are
left out; so are rows whose clip file does not exist (a clip whose preparation failed). Both are
counted and listed in `report.json`.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ..data.label_sets import get_label_set
from ..errors import DataFormatError
from ..video_io import resolve_video_path


def read_label_table(path: str | os.PathLike) -> list[tuple[str, str, str]]:
    """`(clip id, label, where)` rows of a stage-1 table, a TF-CoVR CSV or a FineGym element list."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"label table {path} does not exist")
    rows: list[tuple[str, str, str]] = []
    if path.suffix.lower() == ".txt":
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                raise DataFormatError(f"{path}, line {number}: expected '<clip id> <label>', got {line!r}")
            rows.append((parts[0], parts[1], f"{path}:{number}"))
        return rows
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        columns = set(reader.fieldnames or [])
        if {"video_file", "label"} <= columns:
            pairs = [("video_file", "label")]
        elif {"query_video", "label1", "target_video", "label2"} <= columns:
            pairs = [("query_video", "label1"), ("target_video", "label2")]
        else:
            raise DataFormatError(
                f"{path}: expected columns video_file,label (stage-1 table) or query_video,label1,"
                f"target_video,label2 (TF-CoVR train/val CSV); found {sorted(columns)}"
            )
        for number, row in enumerate(reader, start=2):
            for video_column, label_column in pairs:
                video, label = (row.get(video_column) or "").strip(), (row.get(label_column) or "").strip()
                if not video or not label:
                    raise DataFormatError(f"{path}, line {number}: empty {video_column} or {label_column}")
                rows.append((Path(video).name.removesuffix(".mp4"), label, f"{path}:{number}"))
    return rows


def _clean(label: str) -> str:
    # an integer label column that went through a float ("12.0") is the label "12"
    return label[:-2] if label.endswith(".0") and label[:-2].isdigit() else label


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def build_clips_dataset(
    output_dir: str | os.PathLike,
    videos_dir: str | os.PathLike,
    splits: Mapping[str, Sequence[str | os.PathLike]],
    label_set: str | None = "tfcovr-306",
) -> dict:
    """Writes the clips dataset of `splits` (`{split: [label tables]}`) to `output_dir`; returns the report.

    `label_set` names the label space (see `modeling_tfcovr.data.label_sets`); `None` takes the sorted labels
    found in the tables (your own label space).

    Raises:
        DataFormatError: a table has none of the known layouts, or a clip is given two different labels.
    """
    import datasets

    tables = {split: [row for table in paths for row in read_label_table(table)] for split, paths in splits.items()}
    names = (
        list(get_label_set(label_set))
        if label_set
        else sorted({_clean(r[1]) for rows in tables.values() for r in rows})
    )
    index = {name: i for i, name in enumerate(names)}
    output_dir = Path(output_dir)
    (output_dir / "clips").mkdir(parents=True, exist_ok=True)
    videos_dir = Path(videos_dir).resolve()
    link = output_dir / "videos"
    if link.resolve() != videos_dir:
        if link.is_symlink():
            link.unlink()
        link.symlink_to(videos_dir, target_is_directory=True)
    features = datasets.Features(
        {
            "video": datasets.Value("string"),
            "video_id": datasets.Value("string"),
            "label": datasets.Value("string"),
            "label_id": datasets.ClassLabel(names=names),
        }
    )
    report: dict = {"label_set": label_set or "from the tables", "num_labels": len(names), "splits": {}}
    for split, rows in tables.items():
        labels: dict[str, tuple[str, str]] = {}
        for clip_id, label, where in rows:
            label = _clean(label)
            seen = labels.setdefault(clip_id, (label, where))
            if seen[0] != label:
                raise DataFormatError(f"clip {clip_id!r} is labelled {seen[0]!r} at {seen[1]} and {label!r} at {where}")
        unknown = sorted({label for label, _ in labels.values() if label not in index})
        missing = sorted(
            c for c, (label, _) in labels.items() if label in index and not resolve_video_path(videos_dir, c).is_file()
        )
        keep = sorted(c for c, (label, _) in labels.items() if label in index and c not in set(missing))
        columns = {
            "video": [f"videos/{c}.mp4" for c in keep],
            "video_id": keep,
            "label": [labels[c][0] for c in keep],
            "label_id": [index[labels[c][0]] for c in keep],
        }
        dataset = datasets.Dataset.from_dict(columns, features=features)
        target = output_dir / "clips" / f"{split}.parquet"
        tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
        dataset.to_parquet(str(tmp))
        os.replace(tmp, target)
        report["splits"][split] = {
            "clips": len(keep),
            "labels_used": len({labels[c][0] for c in keep}),
            "dropped_unknown_label": sum(1 for label, _ in labels.values() if label not in index),
            "unknown_labels": unknown,
            "dropped_missing_video": len(missing),
            "missing_videos": missing,
        }
    _write_atomic(output_dir / "labels.json", json.dumps(names))
    _write_atomic(output_dir / "report.json", json.dumps(report, indent=2))
    return report


def parse_split_arguments(values: Iterable[str]) -> dict[str, list[str]]:
    """`["train=a.csv", "train=b.txt", "val=c.csv"]` -> `{"train": ["a.csv", "b.txt"], "val": ["c.csv"]}`."""
    splits: dict[str, list[str]] = {}
    for value in values:
        split, sep, path = value.partition("=")
        if not sep or not split or not path:
            raise ValueError(f"expected SPLIT=FILE, got {value!r}")
        splits.setdefault(split, []).append(path)
    return splits


__all__ = ["build_clips_dataset", "parse_split_arguments", "read_label_table"]
