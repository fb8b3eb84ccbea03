"""FineDiving frame folders -> TF-CoVR's diving clips.

FineDiving ships frames as `<frames>/<competition>/<index>/<NNNNN>.jpg` (5-digit absolute frame
numbers). TF-CoVR (`data/frames_videos.py` of UCF-CRCV/TF-CoVR) turns each `<competition>/<index>`
folder into one clip, all frames in natural order at 30 fps, with the id `<competition>_<index>`
(competition names contain `_` themselves).

Failures (in `failures.jsonl`, per clip): `no_frames` (a folder without jpgs), `missing_frames`
(gaps in the frame numbers), `unreadable_frame` (a jpg that does not decode) and
`frame_size_mismatch` (a frame whose size differs from the folder's first). The official script
silently skips unreadable frames and cv2 drops differently sized ones; here such a clip is not
written unless `skip_bad_frames` is set, which writes it from the good frames (like the official
script) and still reports it (`written: true`).

The annotation pickles (`FineDiving_fine-grained_annotation.pkl`, `train_split.pkl`,
`test_split.pkl`, keyed by or listing `(competition, index)`) are read with the restricted
unpickler of [`modeling_tfcovr.safe_pickle`]: builtin containers and scalars, plus numpy arrays
and scalars, which the fine-grained annotation holds; nothing else is ever constructed.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataFormatError
from ..safe_pickle import load_data_pickle
from .jobs import (
    FRAME_SIZE_MISMATCH,
    MISSING_FRAMES,
    NO_FRAMES,
    UNREADABLE_FRAME,
    ClipJob,
    ClipResult,
    RunSummary,
    clip_path,
    in_shard,
    run_clip_jobs,
)
from .mp4 import ClipWriter

FINEDIVING_FPS = 30


@dataclass
class FrameFolder:
    clip_id: str
    path: str
    skip_bad_frames: bool = False


def finediving_clip_id(competition: str, index: object) -> str:
    return f"{competition}_{index}"


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def find_frame_folders(frames_dir: str | os.PathLike) -> list[tuple[str, str, Path]]:
    """`(competition, index, folder)` for every `<frames_dir>/<competition>/<index>/` folder, sorted."""
    frames_dir = Path(frames_dir)
    if not frames_dir.is_dir():
        raise FileNotFoundError(f"frames folder {frames_dir} does not exist")
    folders = []
    for competition in sorted(p for p in frames_dir.iterdir() if p.is_dir()):
        for index in sorted((p for p in competition.iterdir() if p.is_dir()), key=lambda p: _natural_key(p.name)):
            folders.append((competition.name, index.name, index))
    return folders


def read_annotation_keys(path: str | os.PathLike) -> dict[str, str | None]:
    """`{clip id: dive code or None}` from a FineDiving annotation pickle: a dict keyed by
    `(competition, index)` (the fine-grained annotation: the value's `action_type`, or its first
    element) or a list of such tuples (the split files)."""
    data = load_data_pickle(path, allow_numpy=True)
    items = (
        data.items()
        if isinstance(data, dict)
        else ((key, None) for key in data)
        if isinstance(data, (list, tuple))
        else None
    )
    if items is None:
        raise DataFormatError(
            f"{path}: expected a dict keyed by (competition, index) or a list of them, got {type(data).__name__}"
        )
    keys: dict[str, str | None] = {}
    for key, value in items:
        if not (isinstance(key, tuple) and len(key) == 2):
            raise DataFormatError(f"{path}: key {key!r} is not a (competition, index) tuple")
        label = None
        if isinstance(value, dict):
            label = value.get("action_type")
        elif isinstance(value, (list, tuple)) and value:
            label = value[0]
        keys[finediving_clip_id(*key)] = None if label is None else str(label)
    return keys


def write_frames_clip(folder: FrameFolder, output_dir: str) -> list[ClipResult]:
    """Encodes one frame folder as `<output_dir>/<clip id>.mp4` (a worker job)."""
    from PIL import Image

    target = clip_path(output_dir, folder.clip_id)
    if target.exists():
        return [ClipResult(folder.clip_id, "skipped")]
    names = sorted(
        (p.name for p in Path(folder.path).iterdir() if p.suffix.lower() == ".jpg" and p.is_file()), key=_natural_key
    )
    if not names:
        return [ClipResult(folder.clip_id, "failed", NO_FRAMES, f"no .jpg frames in {folder.path}", folder.path)]
    problems: list[tuple[str, str]] = []
    numbers = [int(Path(n).stem) for n in names if Path(n).stem.isdigit()]
    if len(numbers) == len(names):
        missing = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))
        if missing:
            shown = ", ".join(f"{m:05d}" for m in missing[:10]) + (" ..." if len(missing) > 10 else "")
            problems.append(
                (MISSING_FRAMES, f"{len(missing)} frame(s) missing between {names[0]} and {names[-1]}: {shown}")
            )
    if problems and not folder.skip_bad_frames:
        return [ClipResult(folder.clip_id, "failed", *problems[0], folder.path)]
    writer = None
    size = None
    for name in names:
        try:
            with Image.open(Path(folder.path) / name) as image:
                frame = np.asarray(image.convert("RGB"))
        except Exception as error:  # PIL raises OSError, SyntaxError, ValueError ... for broken files
            problems.append((UNREADABLE_FRAME, f"{name} cannot be decoded ({type(error).__name__}: {error})"))
        else:
            if size is None:
                size = frame.shape[:2]
            if frame.shape[:2] != size:
                problems.append(
                    (
                        FRAME_SIZE_MISMATCH,
                        f"{name} is {frame.shape[1]}x{frame.shape[0]}, "
                        f"the first frame {names[0]} is {size[1]}x{size[0]}",
                    )
                )
            else:
                if writer is None:
                    writer = ClipWriter(target, FINEDIVING_FPS, frame.shape[1], frame.shape[0])
                writer.write_frame(frame)
        if problems and not folder.skip_bad_frames:
            if writer is not None:
                writer.abort()
            return [ClipResult(folder.clip_id, "failed", *problems[0], folder.path)]
    if writer is None:
        return [ClipResult(folder.clip_id, "failed", NO_FRAMES, f"no readable frame in {folder.path}", folder.path)]
    writer.close()
    if problems:
        detail = "; ".join(d for _, d in problems[:5]) + (f"; {len(problems) - 5} more" if len(problems) > 5 else "")
        return [
            ClipResult(
                folder.clip_id,
                "done",
                problems[0][0],
                f"written without bad frames: {detail}",
                folder.path,
                written=True,
            )
        ]
    return [ClipResult(folder.clip_id, "done")]


def prepare_finediving(
    frames_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    workers: int = 1,
    only_ids: Iterable[str] | None = None,
    annotation_files: Iterable[str | os.PathLike] = (),
    skip_bad_frames: bool = False,
    progress: bool = True,
    shard: tuple[int, int] | None = None,
) -> RunSummary:
    """Encodes every (or every listed / annotated) frame folder as `<output_dir>/<competition>_<index>.mp4`.

    With annotation pickles, only their keys are encoded, and dive codes found in them are written
    to `<output_dir>/finediving_labels.csv` (columns `video_file`, `label`: the stage-1 table format).
    `shard=(I, N)` encodes only the I-th of N disjoint parts (by folder), e.g. one per machine.
    """
    wanted = set(only_ids) if only_ids is not None else None
    labels: dict[str, str | None] = {}
    for path in annotation_files:
        for clip_id, label in read_annotation_keys(path).items():
            labels[clip_id] = label or labels.get(clip_id)
    jobs = []
    folders = find_frame_folders(frames_dir)
    if labels and folders and not any(finediving_clip_id(c, i) in labels for c, i, _ in folders):
        raise DataFormatError(
            f"none of the {len(labels)} (competition, index) keys of the annotation pickles matches a "
            f"<competition>/<index> folder of {frames_dir} (e.g. key {next(iter(labels))!r}, folder "
            f"{folders[0][0]}/{folders[0][1]})"
        )
    for competition, index, path in folders:
        clip_id = finediving_clip_id(competition, index)
        if (
            (wanted is not None and clip_id not in wanted)
            or (labels and clip_id not in labels)
            or not in_shard(clip_id, shard)
        ):
            continue
        jobs.append(ClipJob([clip_id], FrameFolder(clip_id, str(path), skip_bad_frames)))
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if any(labels.values()):
        tmp = output_dir / ".finediving_labels.csv.tmp"
        with open(tmp, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["video_file", "label"])
            writer.writerows(sorted((c, lab) for c, lab in labels.items() if lab))
        os.replace(tmp, output_dir / "finediving_labels.csv")
    return run_clip_jobs(
        jobs, write_frames_clip, output_dir, workers=workers, progress=progress, description="FineDiving clips"
    )


__all__ = [
    "FINEDIVING_FPS",
    "find_frame_folders",
    "finediving_clip_id",
    "prepare_finediving",
    "read_annotation_keys",
    "write_frames_clip",
]
