"""FineGym raw videos -> TF-CoVR's sub-action clips.

The annotation is FineGym's `finegym_annotation_info_v1.1.json`:
`{youtube_id: {"E_%06d_%06d": {"event": int, "timestamps": [[start_s, end_s]],
"segments": null | {"A_%04d_%04d": {"stages": int, "timestamps": [[s, e], ...]}}}}}`, event times in
absolute seconds of the raw video, stage times in seconds relative to the event.

TF-CoVR (`data/trim_events.py`, `data/trim_subaction.py` of UCF-CRCV/TF-CoVR) cuts in two steps:
the event clip `<youtube_id>_<E key>` holds the raw frames whose time lies in [start, end) (ffmpeg
`-ss start -t end-start` after `-i`, which decodes and re-times from the event's first frame);
the sub-action clip `<youtube_id>_<E key>_<A key>` holds the event clip's frames whose time lies in
[first stage's start, last stage's end), no audio. Here both steps happen in one decoding pass of
the raw video (no event clip is written unless asked for), with the same frame selection: a
sub-action's times count from the event clip's first frame. Clips keep the source frame rate.

Failures (in `failures.jsonl`): `missing_video` (no `<youtube_id>.{mp4,avi,mkv,mov,webm}`),
`zero_length` (a clip whose end equals its start, or that contains no frame; a zero-length stage inside a
longer sub-action is reported with `written: true` and the clip is made, as the official cut makes it), `reversed` (an
event, a sub-action or one of its stages ending before it starts), `beyond_end` (a clip ending
more than half a frame after the raw video, or a sub-action ending after its event),
`undecodable` (the raw video cannot be opened or decoded).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from ..errors import DataFormatError
from .jobs import (
    BEYOND_END,
    MISSING_VIDEO,
    REVERSED,
    UNDECODABLE,
    ZERO_LENGTH,
    ClipJob,
    ClipResult,
    RunSummary,
    clip_path,
    in_shard,
    run_clip_jobs,
)
from .mp4 import ClipWriter

RAW_VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm")  # the order trim_events.py looks them up in
_EVENT_KEY = re.compile(r"E_\d{6}_\d{6}")
_ACTION_KEY = re.compile(r"A_\d{4}_\d{4}")
_EPS = Fraction(1, 1_000_000)  # JSON floats vs exact frame times: 12.3 s is frame 123 at 10 fps


@dataclass
class ClipSpan:
    """A clip to cut: `start`/`end` in seconds relative to the event clip's first frame."""

    clip_id: str
    start: float
    end: float
    note: tuple[str, str] | None = None  # an anomaly to report although the clip is made


@dataclass
class EventPlan:
    """The clips to cut from one event of one raw video, in one decoding pass."""

    youtube_id: str
    event_key: str
    video_path: str
    start: float
    end: float
    clips: list[ClipSpan] = field(default_factory=list)


def event_clip_id(youtube_id: str, event_key: str) -> str:
    return f"{youtube_id}_{event_key}"


def subaction_clip_id(youtube_id: str, event_key: str, action_key: str) -> str:
    return f"{youtube_id}_{event_key}_{action_key}"


def load_finegym_annotations(path: str | os.PathLike) -> dict:
    """Reads and checks `finegym_annotation_info_v1.1.json` (the structure only; times are checked per clip)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise DataFormatError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise DataFormatError(f"{path}: expected an object keyed by YouTube id, got {type(data).__name__}")
    for youtube_id, events in data.items():
        where = f"{path}: video {youtube_id!r}"
        if not isinstance(events, dict):
            raise DataFormatError(f"{where}: expected an object of events")
        for event_key, event in events.items():
            if not _EVENT_KEY.fullmatch(event_key) or not isinstance(event, dict):
                raise DataFormatError(f"{where}: event {event_key!r} is not an 'E_%06d_%06d' key with an object")
            _check_pairs(event.get("timestamps"), f"{where}, event {event_key}")
            segments = event.get("segments")
            if segments is None:
                continue
            if not isinstance(segments, dict):
                raise DataFormatError(f"{where}, event {event_key}: 'segments' must be null or an object")
            for action_key, action in segments.items():
                if not _ACTION_KEY.fullmatch(action_key) or not isinstance(action, dict):
                    raise DataFormatError(
                        f"{where}, event {event_key}: sub-action {action_key!r} is not an "
                        "'A_%04d_%04d' key with an object"
                    )
                _check_pairs(action.get("timestamps"), f"{where}, event {event_key}, sub-action {action_key}")
    return data


def _check_pairs(value: object, where: str) -> None:
    if (
        not isinstance(value, list)
        or not value
        or not all(
            isinstance(p, (list, tuple))
            and len(p) == 2
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in p)
            for p in value
        )
    ):
        raise DataFormatError(f"{where}: 'timestamps' must be a non-empty list of [start, end] numbers, got {value!r}")


def find_raw_video(videos_dir: str | os.PathLike, youtube_id: str) -> Path | None:
    """`<videos_dir>/<youtube_id>.<ext>` for the first extension that exists, else `None`."""
    for extension in RAW_VIDEO_EXTENSIONS:
        path = Path(videos_dir) / f"{youtube_id}{extension}"
        if path.is_file():
            return path
    return None


def plan_finegym_clips(
    annotations: dict,
    videos_dir: str | os.PathLike,
    only_ids: set[str] | None = None,
    event_clips: bool = False,
    shard: tuple[int, int] | None = None,
) -> tuple[list[EventPlan], list[ClipResult]]:
    """The events to decode with their clips, and the clips that fail before any decoding (only the events of
    `shard`, `(I, N)`, when given)."""
    plans: list[EventPlan] = []
    failures: list[ClipResult] = []
    for youtube_id, events in annotations.items():
        video_path = None
        for event_key, event in events.items():
            if not in_shard(event_clip_id(youtube_id, event_key), shard):
                continue
            start, end = event["timestamps"][0]
            spans: list[ClipSpan] = []
            candidates: list[tuple[str, list]] = []
            if event_clips:
                candidates.append((event_clip_id(youtube_id, event_key), [[0.0, end - start]]))
            for action_key, action in (event.get("segments") or {}).items():
                candidates.append((subaction_clip_id(youtube_id, event_key, action_key), action["timestamps"]))
            for clip_id, stages in candidates:
                if only_ids is not None and clip_id not in only_ids:
                    continue
                problem = _timing_problem(start, end, stages)
                if problem:
                    failures.append(ClipResult(clip_id, "failed", problem[0], problem[1], youtube_id))
                else:
                    empty = [n for n, (a, b) in enumerate(stages, start=1) if a == b]
                    note = (
                        (
                            ZERO_LENGTH,
                            f"stage {empty[0]} starts and ends at {stages[empty[0] - 1][0]} s; the clip "
                            "still spans the first stage's start to the last stage's end",
                        )
                        if empty
                        else None
                    )
                    spans.append(ClipSpan(clip_id, float(stages[0][0]), float(stages[-1][1]), note))
            if not spans:
                continue
            if video_path is None:
                video_path = find_raw_video(videos_dir, youtube_id) or ""
            if not video_path:
                failures.extend(
                    ClipResult(
                        s.clip_id,
                        "failed",
                        MISSING_VIDEO,
                        f"no {youtube_id}{{{','.join(RAW_VIDEO_EXTENSIONS)}}} in {videos_dir}",
                        youtube_id,
                    )
                    for s in spans
                )
                continue
            plans.append(EventPlan(youtube_id, event_key, str(video_path), float(start), float(end), spans))
    return plans, failures


def _span_problem(start: float, end: float, what: str, before: str) -> tuple[str, str] | None:
    """The failure code and message of a time span that is reversed, empty, or starts before `before` (None if
    none)."""
    if end < start:
        return REVERSED, f"{what} ends at {end} s before it starts at {start} s"
    if end == start:
        return ZERO_LENGTH, f"{what} starts and ends at {start} s"
    if start < 0:
        return BEYOND_END, f"{what} starts at {start} s, before {before}"
    return None


def _timing_problem(event_start: float, event_end: float, stages: list) -> tuple[str, str] | None:
    """Why a clip (the first stage's start to the last stage's end, relative to its event) cannot be cut, or None."""
    if problem := _span_problem(event_start, event_end, "event", "the video"):
        return problem
    for number, (stage_start, stage_end) in enumerate(stages, start=1):
        if stage_end < stage_start:
            return REVERSED, f"stage {number} ends at {stage_end} s before it starts at {stage_start} s"
    first, last = stages[0][0], stages[-1][1]
    if problem := _span_problem(first, last, "the clip", "its event"):
        return problem
    if last > event_end - event_start + 1e-6:
        return BEYOND_END, f"ends at {last} s, after its event ({event_end - event_start:.3f} s long)"
    return None


def cut_event(plan: EventPlan, output_dir: str) -> list[ClipResult]:
    """Decodes the event's part of the raw video once and writes each of its clips (a worker job)."""
    import av

    clips = [c for c in plan.clips if not clip_path(output_dir, c.clip_id).exists()]
    results = [ClipResult(c.clip_id, "skipped") for c in plan.clips if c not in clips]
    if not clips:
        return results
    writers: dict[str, ClipWriter] = {}

    def fail_all(reason: str, detail: str) -> list[ClipResult]:
        for writer in writers.values():
            writer.abort()
        return results + [ClipResult(c.clip_id, "failed", reason, detail, plan.youtube_id) for c in clips]

    start, end = Fraction(plan.start), Fraction(plan.end)
    needed = max(Fraction(c.end) for c in clips)  # decoding stops after the last frame any clip needs
    for seek in (True, False):
        try:
            with av.open(plan.video_path) as container:
                if not container.streams.video:
                    return fail_all(UNDECODABLE, f"{plan.video_path} has no video stream")
                stream = container.streams.video[0]
                rate = stream.average_rate or stream.guessed_rate or stream.base_rate
                if not rate:
                    return fail_all(UNDECODABLE, f"{plan.video_path}: unknown frame rate")
                rate = Fraction(rate)
                # ffmpeg's -ss counts from the file's start (the earliest stream), as here
                origin = Fraction(container.start_time or 0, 1_000_000)
                if container.duration is not None and start > Fraction(container.duration, 1_000_000) + origin:
                    return fail_all(
                        BEYOND_END,
                        f"the event starts at {plan.start} s, after the end of "
                        f"{plan.video_path} ({container.duration / 1e6:.3f} s)",
                    )
                seeked = seek and plan.start > 1
                if seeked:
                    offset = int((start - 1 + origin) / stream.time_base)
                    container.seek(offset, stream=stream, backward=True)
                first = last = None
                decoded_any, ran_out = False, True
                for frame in container.decode(stream):
                    if frame.pts is None:
                        continue
                    t = frame.pts * stream.time_base - origin
                    if not decoded_any and seeked and t > start + 1 / (2 * rate):
                        break  # the seek went past the event's start: decode from the beginning instead
                    decoded_any = True
                    last = t
                    if t < start - _EPS:
                        continue
                    if first is None:
                        first = t
                    if t >= end - _EPS or t - first >= needed - _EPS:
                        ran_out = False
                        break
                    relative = t - first
                    for clip in clips:
                        if Fraction(clip.start) - _EPS <= relative < Fraction(clip.end) - _EPS:
                            writer = writers.get(clip.clip_id)
                            if writer is None:
                                writer = writers[clip.clip_id] = ClipWriter(
                                    clip_path(output_dir, clip.clip_id), rate, frame.width, frame.height
                                )
                            writer.write_frame(frame)
                if seeked and not decoded_any:
                    continue
                break
        except (av.error.FFmpegError, OSError, ValueError) as error:
            return fail_all(UNDECODABLE, f"{plan.video_path}: {type(error).__name__}: {error}")

    if last is None:
        return fail_all(UNDECODABLE, f"{plan.video_path}: no frame could be decoded")
    video_end = last + 1 / rate  # when the video ran out: it ends one frame after its last frame
    tolerance = 1 / (2 * rate)
    for clip in clips:
        writer = writers.pop(clip.clip_id, None)
        clip_end = (first if first is not None else start) + Fraction(clip.end)
        if ran_out and clip_end > video_end + tolerance:
            detail = f"ends at {float(clip_end):.3f} s of {plan.video_path}, which ends at {float(video_end):.3f} s"
            results.append(ClipResult(clip.clip_id, "failed", BEYOND_END, detail, plan.youtube_id))
        elif writer is None:
            detail = f"no frame of {plan.video_path} lies in [{clip.start}, {clip.end}) s of the event"
            results.append(ClipResult(clip.clip_id, "failed", ZERO_LENGTH, detail, plan.youtube_id))
        else:
            try:
                writer.close()
            except (av.error.FFmpegError, OSError) as error:
                writer.abort()
                results.append(ClipResult(clip.clip_id, "failed", UNDECODABLE, f"encoding failed: {error}"))
                continue
            if clip.note:  # made, as by the official cut, and reported
                results.append(ClipResult(clip.clip_id, "done", *clip.note, plan.youtube_id, written=True))
            else:
                results.append(ClipResult(clip.clip_id, "done"))
            continue
        if writer is not None:
            writer.abort()
    return results


def _cut_job(payload: EventPlan, output_dir: str) -> list[ClipResult]:
    return cut_event(payload, output_dir)


def prepare_finegym(
    annotations_file: str | os.PathLike,
    videos_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    workers: int = 1,
    only_ids: Iterable[str] | None = None,
    event_clips: bool = False,
    progress: bool = True,
    shard: tuple[int, int] | None = None,
) -> RunSummary:
    """Cuts every (or every listed) sub-action clip of the annotation into `<output_dir>/<clip id>.mp4`; with
    `shard=(I, N)` only the I-th of N disjoint parts (by event), e.g. one per machine."""
    if not Path(videos_dir).is_dir():
        raise FileNotFoundError(f"raw video folder {videos_dir} does not exist")
    annotations = load_finegym_annotations(annotations_file)
    plans, failures = plan_finegym_clips(
        annotations, videos_dir, set(only_ids) if only_ids is not None else None, event_clips, shard
    )
    jobs = [ClipJob([c.clip_id for c in plan.clips], plan) for plan in plans]
    return run_clip_jobs(
        jobs,
        _cut_job,
        output_dir,
        workers=workers,
        progress=progress,
        upfront_failures=failures,
        description="FineGym clips",
    )


__all__ = [
    "ClipSpan",
    "EventPlan",
    "cut_event",
    "event_clip_id",
    "find_raw_video",
    "load_finegym_annotations",
    "plan_finegym_clips",
    "prepare_finegym",
    "subaction_clip_id",
]
