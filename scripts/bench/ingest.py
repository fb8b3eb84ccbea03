#!/usr/bin/env python
"""Benchmark: video ingest through the project's data path against decord's raw frame decoding.

Two clip sets are rendered into a temporary folder first (not timed as ingest):

- the synthetic gym's clips (default 256 clips, 32 x 32 px, 32 frames), the stage-1 data of the small models;
- a 224 px set (default 64 clips, 224 x 224 px, 48 frames): the same renderer at the paper's input size.

For each set and each number of DataLoader workers (default 1 and 2), the same clips are read with:

- raw (the limit): `decord.VideoReader(path, num_threads=1).get_batch(indices)` of the 12 segment-middle frames, the
  uint8 frames stacked into a batch and nothing else;
- ours: `VideoClipDataset` (decode + segment sampling via `read_frames`) and `VideoCollator` (resize, centre crop,
  rescale and normalise with `TFCoVRVideoProcessor`, in batches), i.e. what stage-1 training runs.

Reported: clips/s and sampled frames/s of both, and their ratio at the same number of workers (target: ours >= 0.8x
raw). Per video backend (decord, torchcodec, PyAV, and torchcodec through a `datasets` `Video` column), in the main
process: sampled frames/s of `read_frames` on the same clips, and the largest pixel difference to decord's frames
(must be at most `--backend-tolerance`, default 0). A main-process breakdown (decode, wrapper, processor) and a
profile of the processor show where the time goes.
The decoded frames must equal decord's, and the normalised pixels must map back to them; the script exits with status
1 otherwise.

Example:
    python scripts/bench/ingest.py              # full size (about a minute and a half on 2 cores)
    python scripts/bench/ingest.py --quick      # seconds
"""

from __future__ import annotations

import argparse
import concurrent.futures
import cProfile
import io
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from benchmarking import (
    BenchmarkReport,
    Timing,
    command_line,
    format_table,
    parse_benchmark_args,
    ratio,
    settings_of,
)

from modeling_tfcovr.data.synthetic import SyntheticConfig, render_clip, split_clips
from modeling_tfcovr.training.data import VideoClipDataset, VideoCollator
from modeling_tfcovr.video_io import VIDEO_BACKENDS, dataset_videos, read_frames, write_mp4
from modeling_tfcovr.video_processing_tfcovr import TFCoVRVideoProcessor, segment_frame_indices, to_rgb_frames

QUICK = {"synthetic_clips": 32, "large_clips": 8, "repeats": 1, "profile_clips": 4}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synthetic-clips", type=int, default=256, help="clips of the synthetic-gym set")
    parser.add_argument("--synthetic-size", type=int, default=32, help="frame size of the synthetic-gym set")
    parser.add_argument("--synthetic-frames", type=int, default=32, help="frames per synthetic-gym clip")
    parser.add_argument("--large-clips", type=int, default=64, help="clips of the large set (0: skip it)")
    parser.add_argument("--large-size", type=int, default=224, help="frame size of the large set")
    parser.add_argument("--large-frames", type=int, default=48, help="frames per large clip")
    parser.add_argument("--num-frames", type=int, default=12, help="frames sampled per clip (segment middles)")
    parser.add_argument("--batch-size", type=int, default=8, help="clips per DataLoader batch")
    parser.add_argument("--workers", default="1,2", help="comma-separated DataLoader worker counts")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over each set (after a warm-up)")
    parser.add_argument("--profile-clips", type=int, default=16, help="clips of the main-process breakdown")
    parser.add_argument(
        "--backends",
        default=",".join(VIDEO_BACKENDS) + ",datasets",
        help="video backends to compare (datasets: torchcodec through a datasets Video column)",
    )
    parser.add_argument(
        "--backend-tolerance", type=int, default=0, help="largest pixel difference to decord a backend may have (0-255)"
    )
    parser.add_argument(
        "--clip-dir",
        type=Path,
        default=None,
        help="folder to render the clips into and keep (default: a temporary folder, removed)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes for a smoke run: " + ", ".join(f"{k.replace('_', '-')}={v}" for k, v in QUICK.items()),
    )
    parser.add_argument("--output", type=Path, default=Path("runs/bench/ingest.json"), help="JSON report")
    return parser


# ----------------------------------------------------------------------------------------------------------------------
# Clips
# ----------------------------------------------------------------------------------------------------------------------


def _render_and_write(job: tuple[str, Any, int, int]) -> None:
    path, params, fps, crf = job
    # x264's assembly kernels on (deterministic=False): several times faster to write, equally costly to decode.
    write_mp4(Path(path), render_clip(params), fps=fps, crf=crf, deterministic=False)


def render_clip_set(folder: Path, count: int, size: int, num_frames: int, seed: int) -> list[str]:
    """Renders `count` synthetic-gym clips of `size` px and `num_frames` frames into `folder` (one process per core
    for large sets; clips already there are kept); returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    config = SyntheticConfig(size=size, num_frames=num_frames)
    clips = split_clips(config, seed, "train")
    while len(clips) < count:  # more clips than the split has: draw them from further seeds
        clips += split_clips(config, seed + len(clips), "train")
    paths = [str(folder / f"clip_{number:05d}.mp4") for number in range(count)]
    jobs = [
        (path, params, config.fps, config.crf) for path, (_, params) in zip(paths, clips) if not Path(path).exists()
    ]
    processes = min(os.cpu_count() or 1, 4)
    if processes > 1 and len(jobs) * size * size * num_frames > 2**24:  # worth starting processes
        with concurrent.futures.ProcessPoolExecutor(processes) as pool:
            list(pool.map(_render_and_write, jobs, chunksize=4))
    else:
        for job in jobs:
            _render_and_write(job)
    return paths


# ----------------------------------------------------------------------------------------------------------------------
# The two paths
# ----------------------------------------------------------------------------------------------------------------------


class RawDecodeDataset(torch.utils.data.Dataset):
    """The limit: decord's `get_batch` of the segment-middle frames of each clip, as a uint8 tensor (T, H, W, 3)."""

    def __init__(self, video_paths: Sequence[str], num_frames: int) -> None:
        self.video_paths = list(video_paths)
        self.num_frames = num_frames

    def __len__(self) -> int:
        return len(self.video_paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        import decord

        reader = decord.VideoReader(self.video_paths[index], num_threads=1)
        indices = segment_frame_indices(len(reader), self.num_frames, "middle")
        return torch.from_numpy(reader.get_batch(indices.tolist()).asnumpy())


def stack_frames(items: list[torch.Tensor]) -> torch.Tensor:
    """Collates raw clips into one uint8 batch (B, T, H, W, 3)."""
    return torch.stack(items)


def stack_dataset_frames(items: list[dict]) -> torch.Tensor:
    """Collates `VideoClipDataset` items without normalising: one uint8 batch (B, T, H, W, 3)."""
    return torch.stack([torch.from_numpy(item["frames"]) for item in items])


def make_processor(size: int, num_frames: int) -> TFCoVRVideoProcessor:
    """The video processor a model of input size `size` uses (as stage-1 training builds it)."""
    return TFCoVRVideoProcessor(
        num_frames=num_frames, size={"shortest_edge": size}, crop_size={"height": size, "width": size}
    )


def make_loader(
    dataset: torch.utils.data.Dataset, collate: Callable, workers: int, batch_size: int
) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate,
        persistent_workers=workers > 0,
    )


def timed_pass(loader: torch.utils.data.DataLoader) -> tuple[float, int]:
    """Seconds to iterate `loader` once, and the number of clips delivered."""
    start = time.perf_counter()
    clips = 0
    for batch in loader:
        clips += (batch["pixel_values_videos"] if isinstance(batch, dict) else batch).shape[0]
    return time.perf_counter() - start, clips


def warm_up(loader: torch.utils.data.DataLoader, batches: int = 2) -> None:
    """Starts the (persistent) workers and runs a few batches through them."""
    for number, _ in enumerate(loader):
        if number + 1 >= batches:
            break


# ----------------------------------------------------------------------------------------------------------------------
# Checks and breakdown
# ----------------------------------------------------------------------------------------------------------------------


def check_equal_to_raw(
    paths: Sequence[str], num_frames: int, processor: TFCoVRVideoProcessor, size: int, sample: int
) -> dict[str, Any]:
    """Decoded frames of `VideoClipDataset` must equal decord's raw frames; the collator's normalised pixels, mapped
    back to 0-255, must equal them too when no resize is needed (clip size = processor size), else they must equal
    the processor applied to the raw frames."""
    ours = VideoClipDataset(paths[:sample], [0] * min(sample, len(paths)), num_frames, training=False)
    raw = RawDecodeDataset(paths[:sample], num_frames)
    items = [ours[i] for i in range(len(ours))]
    raw_frames = [raw[i].numpy() for i in range(len(raw))]
    frames_equal = all(np.array_equal(item["frames"], frames) for item, frames in zip(items, raw_frames))
    pixels = VideoCollator(processor)(items)["pixel_values_videos"]
    mean = torch.tensor(processor.image_mean).view(1, 1, 3, 1, 1)
    std = torch.tensor(processor.image_std).view(1, 1, 3, 1, 1)
    if raw_frames[0].shape[1:3] == (size, size):
        restored = (pixels * std + mean) * 255.0  # (B, T, 3, H, W) on the 0-255 scale
        expected = torch.from_numpy(np.stack(raw_frames)).permute(0, 1, 4, 2, 3).float()
        pixel_error = float((restored - expected).abs().max())
        pixels_ok = pixel_error < 0.01
        reference = "raw frames / 255, normalised with CLIP mean and std"
    else:
        expected = processor(raw_frames, do_sample_frames=False, return_tensors="pt")["pixel_values_videos"]
        pixel_error = float((pixels - expected).abs().max())
        pixels_ok = pixel_error == 0.0
        reference = "the processor applied to decord's raw frames"
    return {
        "clips": len(items),
        "frames_equal": frames_equal,
        "max_pixel_error": pixel_error,
        "reference": reference,
        "passed": bool(frames_equal and pixels_ok),
    }


def _per_clip(function: Callable[[], Any], clips: int, repeats: int = 3) -> float:
    function()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best / clips


def breakdown(
    paths: Sequence[str], num_frames: int, processor: TFCoVRVideoProcessor, batch_size: int
) -> dict[str, Any]:
    """Per-clip milliseconds of each stage of our path, in the main process, and the processor's top functions."""
    raw = RawDecodeDataset(paths, num_frames)
    ours = VideoClipDataset(paths, [0] * len(paths), num_frames, training=False)
    collator = VideoCollator(processor)
    count = len(paths)

    def indices(total: int) -> np.ndarray:
        return segment_frame_indices(total, num_frames, "middle")

    decoded = [ours[i] for i in range(count)]
    batches = [decoded[i : i + batch_size] for i in range(0, count, batch_size)]
    stages = {
        "decord open + get_batch (raw)": _per_clip(lambda: [raw[i] for i in range(count)], count),
        "read_frames (project wrapper)": _per_clip(lambda: [read_frames(p, indices) for p in paths], count),
        "VideoClipDataset item (read_frames + to_rgb_frames)": _per_clip(
            lambda: [ours[i] for i in range(count)], count
        ),
        "to_rgb_frames alone": _per_clip(lambda: [to_rgb_frames(item["frames"]) for item in decoded], count),
        "VideoCollator (processor: resize, crop, normalise, stack)": _per_clip(
            lambda: [collator(batch) for batch in batches], count
        ),
        "raw collate (stack uint8)": _per_clip(
            lambda: [stack_frames([torch.from_numpy(item["frames"]) for item in batch]) for batch in batches], count
        ),
    }
    profiler = cProfile.Profile()
    profiler.enable()
    for batch in batches:
        collator(batch)
    profiler.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream).sort_stats("tottime")
    top = []
    for (filename, line, function), (_, calls, tottime, _cumulative, _) in sorted(
        stats.stats.items(), key=lambda item: -item[1][2]
    )[:8]:
        top.append(
            {
                "function": f"{Path(filename).name}:{line}({function})",
                "calls": calls,
                "ms_per_clip": 1000 * tottime / count,
            }
        )
    return {"ms_per_clip": {name: 1000 * seconds for name, seconds in stages.items()}, "processor_profile": top}


def compare_backends(
    name: str,
    paths: Sequence[str],
    num_frames: int,
    backends: Sequence[str],
    repeats: int,
    tolerance: int,
    report: BenchmarkReport,
) -> list[dict[str, Any]]:
    """Per backend: best-of-`repeats` sampled frames/s of `read_frames` over `paths` in the main process, and the
    largest absolute pixel difference to decord's frames of the same clips; records one check per backend."""
    import datasets

    def indices(total: int) -> np.ndarray:
        return segment_frame_indices(total, num_frames, "middle")

    column = datasets.Dataset.from_dict({"video": list(paths)}).cast_column("video", datasets.Video())
    sources = {backend: (list(paths), backend) for backend in backends if backend in VIDEO_BACKENDS}
    if "datasets" in backends:  # decoders opened through the column's feature, as `pipe.index(dataset)` reads them
        sources["datasets Video column (torchcodec)"] = (dataset_videos(column), "decord")
    reference = [read_frames(p, indices, "decord") for p in paths]
    rows = []
    for backend, (videos, option) in sources.items():
        frames = [read_frames(v, indices, option) for v in videos]  # warm-up, and the frames compared
        difference = max(int(np.abs(f.astype(np.int16) - r.astype(np.int16)).max()) for f, r in zip(frames, reference))
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            for video in videos:
                read_frames(video, indices, option)
            seconds.append(time.perf_counter() - start)
        timing = Timing(seconds)
        rate = len(paths) / timing.best
        rows.append(
            {
                "set": name,
                "backend": backend,
                "clips_per_s": rate,
                "frames_per_s": rate * num_frames,
                "max_pixel_difference_to_decord": difference,
                **timing.to_dict(),
            }
        )
        if backend != "decord":
            report.add_check(
                f"{name}_{backend.split(' ')[0]}_pixels_match_decord",
                difference <= tolerance,
                max_pixel_difference=difference,
                tolerance=tolerance,
                clips=len(paths),
            )
    decord_rate = next((r["clips_per_s"] for r in rows if r["backend"] == "decord"), float("nan"))
    for row in rows:
        row["vs_decord"] = ratio(row["clips_per_s"], decord_rate)
    print(
        f"  {name}, backends: "
        + ", ".join(
            f"{r['backend']} {r['frames_per_s']:.0f} frames/s (max diff {r['max_pixel_difference_to_decord']})"
            for r in rows
        ),
        flush=True,
    )
    return rows


# ----------------------------------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------------------------------


def bench_set(
    name: str, paths: list[str], size: int, args: argparse.Namespace, workers: list[int], report: BenchmarkReport
) -> list[dict[str, Any]]:
    processor = make_processor(size, args.num_frames)
    check = check_equal_to_raw(paths, args.num_frames, processor, size, sample=min(len(paths), 8))
    passed = check.pop("passed")
    report.add_check(f"{name}_frames_equal_raw_decode", passed, **check)

    raw_dataset = RawDecodeDataset(paths, args.num_frames)
    ours_dataset = VideoClipDataset(paths, [0] * len(paths), args.num_frames, training=False)
    rows = []
    for count in workers:
        loaders = {
            "raw decord get_batch": make_loader(raw_dataset, stack_frames, count, args.batch_size),
            "ours (VideoClipDataset + VideoCollator)": make_loader(
                ours_dataset, VideoCollator(processor), count, args.batch_size
            ),
            # Not a shipped path: our decoding with the normalisation left out (uint8 frames leave the workers), to
            # separate the cost of decoding from that of normalising and moving float32 pixels between processes.
            "ours, decode only (VideoClipDataset, uint8 batch)": make_loader(
                ours_dataset, stack_dataset_frames, count, args.batch_size
            ),
        }
        times: dict[str, list[float]] = {key: [] for key in loaders}
        for loader in loaders.values():
            warm_up(loader)
        for _ in range(args.repeats):  # alternate the two paths so that slow phases of a shared machine hit both
            for key, loader in loaders.items():
                seconds, clips = timed_pass(loader)
                assert clips == len(paths)
                times[key].append(seconds)
        del loaders
        raw_rate = len(paths) / Timing(times["raw decord get_batch"]).best
        for key, seconds in times.items():
            timing = Timing(seconds)
            rate = len(paths) / timing.best
            rows.append(
                {
                    "set": name,
                    "workers": count,
                    "path": key,
                    "clips_per_s": rate,
                    "frames_per_s": rate * args.num_frames,
                    "vs_raw": ratio(rate, raw_rate),
                    **timing.to_dict(),
                }
            )
        ours_ratio = next(r["vs_raw"] for r in rows[-len(times) :] if r["path"].startswith("ours (VideoClipDataset"))
        report.add_target(f"{name}_workers{count}_ours_vs_raw", ours_ratio, ">= 0.8x", ours_ratio >= 0.8)
        print(
            f"  {name}, {count} worker(s): raw {raw_rate:.1f} clips/s, "
            + ", ".join(f"{r['path'].split(' (')[0]}: {r['vs_raw']:.2f}x" for r in rows[-len(times) :][1:]),
            flush=True,
        )
    profile = breakdown(paths[: args.profile_clips], args.num_frames, processor, args.batch_size)
    # With one worker, clips flow one at a time: the extra milliseconds per clip of our path over our own decoding are
    # the processor's work plus moving float32 pixels (4x the bytes of uint8 frames) from the worker to the main
    # process; subtracting the processor's in-process time leaves the transfer.
    single = {row["path"]: 1000 / row["clips_per_s"] for row in rows if row["workers"] == 1}
    if len(single) == 3:
        ours_ms = single["ours (VideoClipDataset + VideoCollator)"]
        decode_ms = single["ours, decode only (VideoClipDataset, uint8 batch)"]
        collate_ms = profile["ms_per_clip"]["VideoCollator (processor: resize, crop, normalise, stack)"]
        profile["one_worker_ms_per_clip"] = {
            "raw": single["raw decord get_batch"],
            "ours": ours_ms,
            "ours_decode_only": decode_ms,
            "processor_in_process": collate_ms,
            "transfer_of_float32_pixels": ours_ms - decode_ms - collate_ms,
        }
    report.results.setdefault("breakdown", {})[name] = profile
    return rows


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark; returns 0 when our frames equal decord's, 1 otherwise."""
    args = parse_benchmark_args(build_parser(), argv, QUICK)
    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    started = time.perf_counter()
    report = BenchmarkReport("ingest", command_line("scripts/bench/ingest.py", argv), settings_of(args))

    folder = args.clip_dir or Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    try:
        sets = [("synthetic", args.synthetic_clips, args.synthetic_size, args.synthetic_frames)]
        if args.large_clips > 0:
            sets.append((f"{args.large_size}px", args.large_clips, args.large_size, args.large_frames))
        rows, backend_rows = [], []
        backends = [b.strip() for b in args.backends.split(",") if b.strip()]
        for name, count, size, frames in sets:
            start = time.perf_counter()
            paths = render_clip_set(folder / f"{name}_{size}px_{frames}f", count, size, frames, args.seed)
            render_s = time.perf_counter() - start
            report.results.setdefault("clip_sets", {})[name] = {
                "clips": count,
                "size": size,
                "frames_per_clip": frames,
                "render_s": render_s,
                "mean_file_bytes": float(np.mean([Path(p).stat().st_size for p in paths])),
            }
            print(f"{name}: {count} clips of {frames} frames at {size} px rendered in {render_s:.1f} s", flush=True)
            rows += bench_set(name, paths, size, args, workers, report)
            if backends:
                backend_rows += compare_backends(
                    name, paths, args.num_frames, backends, args.repeats, args.backend_tolerance, report
                )
    finally:
        if args.clip_dir is None:
            shutil.rmtree(folder, ignore_errors=True)

    report.results["rows"] = rows
    report.results["backends"] = backend_rows
    print(
        "\n"
        + format_table(
            rows,
            {
                "set": "set",
                "workers": "workers",
                "path": "path",
                "clips_per_s": "clips/s",
                "frames_per_s": "frames/s",
                "vs_raw": "x raw",
                "best_s": "best s / pass",
            },
        )
    )
    if backend_rows:
        print("\nvideo backends, main process (read_frames of the segment-middle frames)")
        print(
            format_table(
                backend_rows,
                {
                    "set": "set",
                    "backend": "backend",
                    "clips_per_s": "clips/s",
                    "frames_per_s": "frames/s",
                    "vs_decord": "x decord",
                    "max_pixel_difference_to_decord": "max pixel diff to decord",
                },
            )
        )
    for name, profile in report.results["breakdown"].items():
        print(f"\n{name}: main-process breakdown (ms per clip)")
        print(format_table([{"stage": k, "ms": v} for k, v in profile["ms_per_clip"].items()]))
        if "one_worker_ms_per_clip" in profile:
            print(
                f"{name}, 1 worker, ms per clip: "
                + ", ".join(f"{k} {v:.2f}" for k, v in profile["one_worker_ms_per_clip"].items())
            )
    return report.finish(args.output, started)


if __name__ == "__main__":
    sys.exit(main())
