"""Running clip-cutting jobs: worker processes, a progress bar, skipping finished clips, a failures report.

A job makes one or more clips (`<output>/<clip id>.mp4`) and returns one [`ClipResult`] per clip.
Clips are written under a temporary name and renamed when complete, so a clip file that exists is
finished: a rerun skips it. Every failure is appended to `<output>/failures.jsonl` as soon as it is
known (one JSON object per line: `clip_id`, `reason`, `detail`, `source`), so a killed run loses
nothing; each run starts the report afresh, so it lists what is still missing after that run. Partial files of
killed runs (`.<clip id>.tmp<pid>.mp4`, whose process is gone) are deleted when the next run starts.
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import os
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import DataFormatError

FAILURES_FILE = "failures.jsonl"

# The reasons a clip can fail (the `reason` field of failures.jsonl).
MISSING_VIDEO = "missing_video"
BEYOND_END = "beyond_end"
ZERO_LENGTH = "zero_length"
REVERSED = "reversed"
UNDECODABLE = "undecodable"
NO_FRAMES = "no_frames"
MISSING_FRAMES = "missing_frames"
UNREADABLE_FRAME = "unreadable_frame"
FRAME_SIZE_MISMATCH = "frame_size_mismatch"
ENCODE_FAILED = "encode_failed"


@dataclass
class ClipResult:
    """What became of one clip: `status` is `done` or `failed` (with `reason` and `detail`)."""

    clip_id: str
    status: str
    reason: str | None = None
    detail: str | None = None
    source: str | None = None
    written: bool = False  # a clip can be written and still reported (e.g. frames skipped on request)


@dataclass
class ClipJob:
    """One unit of work for a worker: `clip_ids` are the clips it makes."""

    clip_ids: list[str]
    payload: object


@dataclass
class RunSummary:
    done: int = 0
    skipped: int = 0
    failed: int = 0
    reasons: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {
            "done": self.done,
            "skipped": self.skipped,
            "failed": self.failed,
            "failure_reasons": dict(self.reasons),
        }


def clip_path(output_dir: str | os.PathLike, clip_id: str) -> Path:
    return Path(output_dir) / f"{clip_id}.mp4"


def run_clip_jobs(
    jobs: Sequence[ClipJob],
    worker: Callable[[object, str], list[ClipResult]],
    output_dir: str | os.PathLike,
    workers: int = 1,
    progress: bool = True,
    upfront_failures: Iterable[ClipResult] = (),
    description: str = "clips",
) -> RunSummary:
    """Runs `worker(job.payload, output_dir)` for every job with finished clips dropped, in `workers` processes.

    `upfront_failures` (found while planning, e.g. a reversed stage) go to the report first. A job
    whose every clip already exists is not run at all; the worker itself skips existing clips of a
    partly finished job. An exception escaping a worker is recorded for each of its clips.
    """
    from tqdm.auto import tqdm

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    summary = RunSummary()
    _remove_stale_partial_files(output_dir)
    pending: list[ClipJob] = []
    for job in jobs:
        if all(clip_path(output_dir, c).exists() for c in job.clip_ids):
            summary.skipped += len(job.clip_ids)
        else:
            pending.append(job)  # its worker reports the clips that exist as skipped
    total = sum(len(j.clip_ids) for j in pending)
    with (
        open(output_dir / FAILURES_FILE, "w") as report,
        tqdm(total=total, desc=description, disable=not progress, unit="clip") as bar,
    ):

        def record(results: Iterable[ClipResult]) -> None:
            for result in results:
                if result.status == "failed" or result.reason:
                    report.write(json.dumps({k: v for k, v in asdict(result).items() if k != "status"}) + "\n")
                    summary.reasons[result.reason] += 1
                if result.status == "done":
                    summary.done += 1
                elif result.status == "skipped":
                    summary.skipped += 1
                else:
                    summary.failed += 1
            report.flush()

        record(upfront_failures)
        if workers <= 1:
            for job in pending:
                record(_run_one(worker, job, output_dir))
                bar.update(len(job.clip_ids))
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = {pool.submit(_run_one, worker, job, output_dir): job for job in pending}
                while futures:
                    finished, _ = wait(futures, return_when=FIRST_COMPLETED)
                    for future in finished:
                        job = futures.pop(future)
                        record(future.result())
                        bar.update(len(job.clip_ids))
    return summary


def _remove_stale_partial_files(output_dir: Path) -> None:
    """Deletes `.<clip id>.tmp<pid>.mp4` files left by killed runs (their process no longer exists on this machine)."""
    for path in output_dir.glob(".*.tmp*.mp4"):
        pid = path.name.rsplit(".tmp", 1)[-1].removesuffix(".mp4")
        if pid.isdigit() and not _process_alive(int(pid)):
            path.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    try:  # a killed worker whose parent died stays a zombie until reaped: it writes nothing any more
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _run_one(worker: Callable[[object, str], list[ClipResult]], job: ClipJob, output_dir: Path) -> list[ClipResult]:
    try:
        return worker(job.payload, str(output_dir))
    except Exception as error:  # a bug or an unexpected decoder error: report it for the job's clips, keep going
        return [
            ClipResult(c, "failed", UNDECODABLE, f"{type(error).__name__}: {error}")
            for c in job.clip_ids
            if not clip_path(output_dir, c).exists()
        ]


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """`"I/N"` -> `(I, N)` with 0 <= I < N (the I-th of N shards), `None` -> `None`."""
    if text is None:
        return None
    index, sep, count = text.partition("/")
    if not sep or not index.isdigit() or not count.isdigit() or not 0 <= int(index) < int(count):
        raise ValueError(f"--shard expects I/N with 0 <= I < N, got {text!r}")
    return int(index), int(count)


def add_job_arguments(parser: argparse.ArgumentParser, verb: str) -> None:
    """The options every preparation command shares: `--workers`, `--only-ids`, `--shard`, `--no-progress`."""
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument(
        "--only-ids",
        type=Path,
        nargs="+",
        default=None,
        help=f"{verb} only these clips: text files of ids (one a line), TF-CoVR CSVs or stage-1 tables",
    )
    parser.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help="only the I-th of N disjoint parts (0 <= I < N), e.g. one per machine",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def job_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict:
    """`workers`, `only_ids`, `progress` and `shard` from the options of [`add_job_arguments`] (a bad `--shard`
    ends in the parser's usage error)."""
    try:
        shard = parse_shard(args.shard)
    except ValueError as error:
        parser.error(str(error))
    only_ids = set().union(*(read_id_list(path) for path in args.only_ids)) if args.only_ids else None
    return {"workers": args.workers, "only_ids": only_ids, "progress": not args.no_progress, "shard": shard}


def in_shard(key: str, shard: tuple[int, int] | None) -> bool:
    """Whether the unit of work `key` (a FineGym event, a FineDiving folder) belongs to `shard`; the split is a
    stable hash of the key, the same on every machine."""
    return shard is None or zlib.crc32(key.encode()) % shard[1] == shard[0]


def read_id_list(path: str | os.PathLike) -> set[str]:
    """Clip ids from a text file (one per line) or a CSV: TF-CoVR's annotation CSVs (`query_video`,
    `target_video`, `target_videos_ids`) or a stage-1 table (`video_file`). A `.mp4` suffix is dropped."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"id list {path} does not exist")
    ids: set[str] = set()
    if path.suffix.lower() == ".csv":
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            columns = [
                c for c in ("query_video", "target_video", "video_file", "video") if c in (reader.fieldnames or [])
            ]
            if not columns and "target_videos_ids" not in (reader.fieldnames or []):
                raise DataFormatError(
                    f"{path}: no id column (query_video, target_video, target_videos_ids, video_file)"
                )
            for line, row in enumerate(reader, start=2):
                ids.update(row[c] for c in columns if row[c])
                if row.get("target_videos_ids"):
                    try:
                        ids.update(str(v) for v in ast.literal_eval(row["target_videos_ids"]))
                    except (ValueError, SyntaxError):
                        raise DataFormatError(f"{path}, line {line}: target_videos_ids is not a list literal") from None
    else:
        ids = {line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")}
    return {Path(i).name.removesuffix(".mp4") for i in ids}


__all__ = [
    "ClipJob",
    "ClipResult",
    "RunSummary",
    "run_clip_jobs",
    "read_id_list",
    "clip_path",
    "FAILURES_FILE",
    "in_shard",
    "parse_shard",
]
