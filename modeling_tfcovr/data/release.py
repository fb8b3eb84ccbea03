"""The TF-CoVR release as downloaded from the Hugging Face dataset repo `ucf-crcv/TF-CoVR` -> the
project's triplet dataset and embeddings parquet, with a report of what does not match.

The official layout of a release folder:

    annotations/{train,val,test}_finegd.csv
    embedding_files/aim_embeddings_12f_all_files.pkl     a stream of pickled {video_id: tensor[768]} dicts
    Embeddings/AIM/<video id>.pth                         one torch.save'd tensor per video

The embeddings may be present in either form, or both. The `.pth` files load with
`torch.load(weights_only=True)`, which rebuilds tensors and nothing else, so they need no trust;
the pickle stream can only be read by unpickling it, which can run code hidden in the file, so it
is read only with `trust_pickle=True`. `embeddings="auto"` prefers the `.pth` folder for that
reason.

A `.pth` file is accepted when it holds one floating-point tensor of shape `(D,)` or `(1, D)` with
finite values, `D` the dimension of the other files (or `expected_dim`). The official test
(`src/data/finegd_test.py`, model "aim") uses the loaded tensor as it is and stacks the gallery
into `(N, D)` before `query @ gallery.T`, which only works with `(D,)`; `(1, D)` is the same vector
with a batch axis (the shape one embedding of a batch of one is saved with), so it is flattened as
the pickle stream's values are. Any other shape, such as `(12, 768)` per-frame features, would need
a pooling choice the file does not tell, and is refused. Every file that cannot be used is listed
with the reason, and the other files are still written.
"""

from __future__ import annotations

import json
import os
import pickle
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import yaml

from ..errors import DataFormatError, UntrustedFileError
from .embeddings import load_pickle_embeddings, write_embeddings_parquet
from .tfcovr_csv import SPLITS, build_tfcovr_dataset, find_split_csvs, write_files_atomically

ANNOTATIONS_DIR = "annotations"
PICKLE_PATH = "embedding_files/aim_embeddings_12f_all_files.pkl"
PTH_DIR = "Embeddings/AIM"
EMBEDDING_FORMS = ("auto", "pth", "pickle")

TRIPLETS_DIRNAME = "triplets"
EMBEDDINGS_FILENAME = "embeddings.parquet"
REPORT_FILENAME = "import_report.json"


@dataclass(frozen=True)
class ReleaseLayout:
    """What a release folder holds: the CSV of each split and the embedding forms present."""

    root: Path
    csv_files: dict[str, Path]
    pickle_path: Path | None
    pth_dir: Path | None

    @property
    def forms_present(self) -> list[str]:
        return [form for form, path in (("pth", self.pth_dir), ("pickle", self.pickle_path)) if path is not None]


@dataclass
class PthEmbeddings:
    """The usable `.pth` embeddings of a folder, and the files that could not be used."""

    embeddings: dict[str, np.ndarray] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)


def find_release_layout(release_dir: str | os.PathLike) -> ReleaseLayout:
    """Finds the annotation CSVs and the embedding forms of a release folder.

    The CSVs are `annotations/{split}_finegd.csv`; when one of those names is absent, the split's
    CSV is looked up in `annotations/` by name (see `find_split_csvs`). The `.pth` form counts as
    present when `Embeddings/AIM/` holds at least one `.pth` file.

    Raises:
        DataFormatError: the folder or its `annotations/` folder is missing, or a split has no CSV.
    """
    root = Path(release_dir)
    if not root.is_dir():
        raise DataFormatError(f"release folder {str(root)!r} does not exist or is not a directory")
    annotations = root / ANNOTATIONS_DIR
    if not annotations.is_dir():
        raise DataFormatError(
            f"release folder {str(root)!r} has no {ANNOTATIONS_DIR}/ folder "
            f"(expected {ANNOTATIONS_DIR}/{{train,val,test}}_finegd.csv)"
        )
    csv_files = {split: annotations / f"{split}_finegd.csv" for split in SPLITS}
    if not all(path.is_file() for path in csv_files.values()):
        csv_files = find_split_csvs(annotations)
    pickle_path = root / PICKLE_PATH
    pth_dir = root / PTH_DIR
    has_pth = pth_dir.is_dir() and any(_pth_files(pth_dir))
    return ReleaseLayout(root, csv_files, pickle_path if pickle_path.is_file() else None, pth_dir if has_pth else None)


def choose_embeddings_form(layout: ReleaseLayout, form: str = "auto", trust_pickle: bool = False) -> tuple[str, str]:
    """Which embedding form to read, and a sentence saying why.

    Raises:
        DataFormatError: `form` is unknown, or the requested form (any form for `auto`) is absent.
        UntrustedFileError: the pickle stream would be read and `trust_pickle` is not `True`; nothing
            has been read then.
    """
    if form not in EMBEDDING_FORMS:
        raise DataFormatError(f"unknown embeddings form {form!r}; expected one of {', '.join(EMBEDDING_FORMS)}")
    root = str(layout.root)
    if form == "pth" and layout.pth_dir is None:
        raise DataFormatError(f"release folder {root!r} has no .pth embeddings in {PTH_DIR}/")
    if form == "pickle" and layout.pickle_path is None:
        raise DataFormatError(f"release folder {root!r} has no pickle stream {PICKLE_PATH}")
    if form == "auto" and not layout.forms_present:
        raise DataFormatError(
            f"release folder {root!r} holds no embeddings: expected {PTH_DIR}/<video id>.pth files "
            f"or the pickle stream {PICKLE_PATH}"
        )
    chosen = form if form != "auto" else ("pth" if layout.pth_dir is not None else "pickle")
    if chosen == "pickle" and trust_pickle is not True:
        raise UntrustedFileError(
            f"refusing to read {str(layout.pickle_path)!r}: it is a pickle stream, and unpickling a file can execute "
            f"arbitrary code hidden in it. The release folder has no {PTH_DIR}/<video id>.pth files, which would need "
            "no trust. Pass --trust-pickle (trust_pickle=True in Python) only if the file comes from a source you "
            "trust, such as the official TF-CoVR release."
            if layout.pth_dir is None
            else f"refusing to read {str(layout.pickle_path)!r} without --trust-pickle (trust_pickle=True): it is a "
            "pickle stream, and unpickling can execute code hidden in it. The .pth form in "
            f"{PTH_DIR}/ needs no trust (--embeddings pth or auto)."
        )
    if chosen == "pth":
        reason = f"{PTH_DIR}/*.pth (torch.load with weights_only=True, no unpickling" + (
            "; the pickle stream is also present and was not read)" if layout.pickle_path is not None else ")"
        )
    else:
        reason = f"{PICKLE_PATH} (unpickled: --trust-pickle given" + (
            f"; the {PTH_DIR}/ folder is also present and was not read)" if layout.pth_dir is not None else ")"
        )
    return chosen, ("requested: " if form != "auto" else "auto: ") + reason


def load_pth_embeddings(folder: str | os.PathLike, expected_dim: int | None = None) -> PthEmbeddings:
    """Loads `<folder>/<video id>.pth` (one tensor per video) with `torch.load(weights_only=True)`.

    A file is used when it holds a floating-point tensor of shape `(D,)` or `(1, D)` with finite
    values; values become float32, as the official test's `.to(torch.float32)`. `D` is
    `expected_dim`, or else the dimension most files have (ties: the first file's in name order).
    Every other file is recorded in `failures` (`{"file", "video_id", "reason"}`) and skipped.
    """
    import torch

    result = PthEmbeddings()
    for path in _pth_files(Path(folder)):
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            reason = f"refused by torch.load(weights_only=True), it holds more than tensors ({_unsafe_detail(error)})"
            result.failures.append(_failure(path, reason))
            continue
        except Exception as error:  # any unreadable file is one failure of the batch, not the end of it
            first = str(error).strip().split(". ")[0].splitlines()[0][:200] if str(error).strip() else ""
            result.failures.append(_failure(path, f"cannot be loaded ({type(error).__name__}: {first})"))
            continue
        vector, problem = _pth_vector(loaded)
        if problem is not None:
            result.failures.append(_failure(path, problem))
            continue
        result.embeddings[path.stem] = vector
    folder = Path(folder)
    result.failures += _drop_other_dims(result.embeddings, expected_dim, lambda video_id: folder / f"{video_id}.pth")
    result.failures.sort(key=lambda failure: failure["file"])
    return result


def referenced_video_ids(triplets_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The video ids each split of a triplet dataset names (query, target and every valid target),
    with its rows: `{split: {"ids": set, "rows": [(query_video, target_video, target_videos)]}}`."""
    named: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        table = pq.read_table(
            Path(triplets_dir) / "data" / f"{split}.parquet", columns=["query_video", "target_video", "target_videos"]
        )
        rows = list(zip(*(table.column(name).to_pylist() for name in table.column_names)))
        ids = {video for query, target, targets in rows for video in (query, target, *targets)}
        named[split] = {"ids": ids, "rows": rows}
    return named


def import_release(
    release_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    embeddings: str = "auto",
    trust_pickle: bool = False,
    skip_invalid: bool = False,
    expected_dim: int | None = None,
) -> dict[str, Any]:
    """Writes `<output_dir>/triplets/` (the triplet dataset), `<output_dir>/embeddings.parquet` and
    `<output_dir>/import_report.json` from a release folder in the official layout.

    Args:
        release_dir: the downloaded `ucf-crcv/TF-CoVR` folder.
        output_dir: where to write; created if needed.
        embeddings: `"auto"` (the `.pth` folder if present, else the pickle stream), `"pth"` or `"pickle"`.
        trust_pickle: allow unpickling the pickle stream.
        skip_invalid: leave invalid CSV rows out (listed in `triplets/build_report.json`) instead of failing.
        expected_dim: the dimension every embedding must have (the release's AIM embeddings: 768).

    Returns:
        The report also written to `import_report.json`: the form used and why, the counts written,
        the video ids the CSVs name that have no embedding, the embeddings no CSV names, and the
        embedding files or entries that could not be used.

    Raises:
        UntrustedFileError: the pickle stream would be read without `trust_pickle` (nothing is written).
        DataFormatError: a missing folder or CSV, invalid rows (without `skip_invalid`), an unreadable
            pickle stream, or no usable embedding at all.
    """
    layout = find_release_layout(release_dir)
    form, reason = choose_embeddings_form(layout, embeddings, trust_pickle)
    output_dir = Path(output_dir)
    triplets_dir = output_dir / TRIPLETS_DIRNAME

    build_report = build_tfcovr_dataset(None, triplets_dir, skip_invalid=skip_invalid, csv_files=layout.csv_files)
    write_files_atomically(triplets_dir, {}, {"README.md": _dataset_card(layout)})

    if form == "pth":
        loaded = load_pth_embeddings(layout.pth_dir, expected_dim)
        vectors, failures, source = loaded.embeddings, loaded.failures, layout.pth_dir
    else:
        vectors, failures = _pickle_embeddings(layout.pickle_path, expected_dim)
        source = layout.pickle_path

    named = referenced_video_ids(triplets_dir)
    all_named = set().union(*(info["ids"] for info in named.values()))
    missing = sorted(all_named - set(vectors))
    unused = sorted(set(vectors) - all_named)
    report: dict[str, Any] = {
        "release_dir": str(layout.root),
        "embeddings": {
            "form": form,
            "source": str(source),
            "forms_present": layout.forms_present,
            "reason": reason,
            "output": None,
            "num_written": 0,
            "dim": None,
            "failures": len(failures),
        },
        "triplets": {
            "output": str(triplets_dir),
            "splits": {split: info["triplets_written"] for split, info in build_report["splits"].items()},
            "rows_skipped": len(build_report["skipped_rows"]),
            "build_report": str(triplets_dir / "build_report.json"),
        },
        "missing_embeddings": {
            "count": len(missing),
            "by_split": {split: _missing_in_split(info, set(vectors)) for split, info in named.items()},
            "ids": missing,
        },
        "unused_embeddings": {"count": len(unused), "ids": unused},
        "failures": failures,
    }
    if vectors:
        video_ids = list(vectors)
        matrix = np.stack([vectors[video_id] for video_id in video_ids])
        path = write_embeddings_parquet(output_dir / EMBEDDINGS_FILENAME, video_ids, matrix, expected_dim=expected_dim)
        report["embeddings"].update(output=str(path), num_written=len(video_ids), dim=int(matrix.shape[1]))
    write_files_atomically(output_dir, {}, {REPORT_FILENAME: json.dumps(report, indent=2) + "\n"})
    if not vectors:
        raise DataFormatError(
            f"no usable embedding in {str(source)!r} ({len(failures)} failure(s), listed in "
            f"{str(output_dir / REPORT_FILENAME)!r}); the triplets were written, the embeddings were not"
        )
    return report


def _pickle_embeddings(path: Path, expected_dim: int | None) -> tuple[dict[str, np.ndarray], list[dict[str, str]]]:
    vectors = load_pickle_embeddings(path, trust_pickle=True)  # the caller checked trust_pickle
    return vectors, _drop_other_dims(vectors, expected_dim, lambda video_id: path)


def _drop_other_dims(
    vectors: dict[str, np.ndarray], expected_dim: int | None, file_of: Callable[[str], Path]
) -> list[dict[str, str]]:
    """Removes from `vectors` (in place) the embeddings whose dimension is not `expected_dim`, or
    else not the most common one (ties: the first seen), and returns them as failures."""
    dims = Counter(vector.shape[0] for vector in vectors.values())
    if not dims:
        return []
    dim = expected_dim if expected_dim is not None else max(dims, key=lambda d: dims[d])
    expected = f"--dim is {dim}" if expected_dim is not None else f"the other {dims[dim]} embedding(s) have {dim}"
    failures = []
    for video_id in [v for v, vector in vectors.items() if vector.shape[0] != dim]:
        reason = f"dimension {vectors.pop(video_id).shape[0]}, but {expected}"
        failures.append({"file": str(file_of(video_id)), "video_id": video_id, "reason": reason})
    return failures


def _pth_files(folder: Path) -> list[Path]:
    """The `*.pth` files of `folder` (not recursive, hidden files skipped), in name order."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix == ".pth" and not p.name.startswith(".") and p.is_file())


def _pth_vector(loaded: Any) -> tuple[np.ndarray | None, str | None]:
    """The embedding of one loaded `.pth`, or why there is none."""
    import torch

    if not isinstance(loaded, torch.Tensor):
        return None, f"holds a {type(loaded).__name__}, not a tensor"
    shape = tuple(loaded.shape)
    if not loaded.is_floating_point():
        return None, f"tensor of dtype {str(loaded.dtype).replace('torch.', '')}, not floating point"
    if not (len(shape) == 1 or (len(shape) == 2 and shape[0] == 1)) or shape[-1] == 0:
        return None, f"tensor of shape {shape}, expected (D,) or (1, D)"
    if loaded.layout != torch.strided or loaded.is_meta:
        return None, f"tensor with layout {loaded.layout} on device {loaded.device}, expected a dense CPU tensor"
    vector = loaded.detach().to(torch.float32).reshape(-1).numpy().copy()
    if not np.isfinite(vector).all():
        return None, "tensor holds NaN or inf"
    return vector, None


def _unsafe_detail(error: Exception) -> str:
    """The line of torch's weights-only refusal that names what was refused (e.g. `GLOBAL posix.mkdir`)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    named = [line for line in lines[1:] if not line.startswith("Check the documentation")]
    return (named or lines or [type(error).__name__])[0]


def _failure(path: Path, reason: str) -> dict[str, str]:
    return {"file": str(path), "video_id": path.stem, "reason": reason}


def _missing_in_split(info: dict[str, Any], available: set[str]) -> dict[str, int]:
    rows = info["rows"]
    return {
        "ids_named": len(info["ids"]),
        "ids_missing": len(info["ids"] - available),
        "rows": len(rows),
        "rows_missing_query": sum(query not in available for query, _, _ in rows),
        "rows_missing_target_video": sum(target not in available for _, target, _ in rows),
        "rows_missing_a_valid_target": sum(any(t not in available for t in targets) for _, _, targets in rows),
    }


def _dataset_card(layout: ReleaseLayout) -> str:
    """A README card whose `configs` give `datasets.load_dataset(folder)` the splits train / val / test."""
    metadata = {
        "license": "mit",
        "pretty_name": "TF-CoVR triplets (imported from the official release)",
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": split, "path": f"data/{split}.parquet"} for split in SPLITS],
            }
        ],
    }
    sources = ", ".join(f"{split}: {path.name}" for split, path in layout.csv_files.items())
    return (
        "---\n" + yaml.safe_dump(metadata, sort_keys=False) + "---\n\n# TF-CoVR triplets\n\n"
        "Written by `tfcovr-import-release` (`modeling_tfcovr.data.release`) from the official annotation CSVs "
        f"({sources}) of the Hugging Face dataset repo `ucf-crcv/TF-CoVR` (MIT).\n"
    )
