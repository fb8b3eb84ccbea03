#!/usr/bin/env python
"""Benchmark: time and disk of the preparation steps (FineGym cut, FineDiving frames -> clips) on rendered inputs.

Renders (not timed) a FineGym-like raw video (default 640 x 360, 30 fps, 60 s: moving shapes over a gradient with
mild noise) with an annotation of events and ~2 s sub-actions, and FineDiving-like frame folders (default 455 x 256
jpgs, 120 frames each), then runs `prepare_finegym` and `prepare_finediving` with the given worker processes.
Reported per step: clips, wall seconds, CPU seconds (this process and its workers), clip bytes, and both scaled to
1,000 clips (a linear extrapolation from the measured run).

Example:
    python scripts/bench/preparation.py --workers 2 --output runs/bench/preparation.json
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from modeling_tfcovr.preparation import prepare_finediving, prepare_finegym
from modeling_tfcovr.preparation.mp4 import ClipWriter


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def render(index: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    frame = np.stack([(x + 3 * index) % 256, (y + 2 * index) % 256, ((x + y) // 2 + index) % 256], -1).astype(np.int16)
    top, left = (37 * index) % (height - 60), (53 * index) % (width - 80)
    frame[top : top + 60, left : left + 80] = (255, 200, 40)
    frame += rng.integers(-4, 5, frame.shape, dtype=np.int16)
    return np.clip(frame, 0, 255).astype(np.uint8)


def measure(step, output: Path) -> dict:
    wall, cpu = time.perf_counter(), cpu_seconds()
    summary = step()
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    clips = summary.done
    size = sum(p.stat().st_size for p in output.glob("*.mp4"))
    return {
        "clips": clips,
        "failed": summary.failed,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "clip_bytes": size,
        "per_1000_clips": {
            "wall_min": round(wall / clips * 1000 / 60, 1),
            "cpu_min": round(cpu / clips * 1000 / 60, 1),
            "disk_mb": round(size / clips * 1000 / 2**20, 1),
        },
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", default="640x360", help="raw FineGym video WIDTHxHEIGHT")
    parser.add_argument("--seconds", type=int, default=60, help="raw video length")
    parser.add_argument("--folders", type=int, default=16, help="FineDiving frame folders")
    parser.add_argument("--output", type=Path, default=None, help="JSON file for the results")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(0)
    results: dict = {"workers": args.workers, "raw_size": args.size}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "raw").mkdir()
        writer = ClipWriter(tmp / "raw" / "abcdefgh-_1.mp4", 30, width, height)
        for index in range(30 * args.seconds):
            writer.write_frame(render(index, height, width, rng))
        writer.close()
        events = {}
        for start in range(2, args.seconds - 8, 10):  # an event every 10 s, 4 sub-actions of ~2 s each
            segments = {
                f"A_{s:04d}_{s + 2:04d}": {"stages": 1, "timestamps": [[s + 0.1, s + 2.0]]} for s in (0, 2, 4, 6)
            }
            events[f"E_{start:06d}_{start + 8:06d}"] = {
                "event": 1,
                "timestamps": [[float(start), start + 8.0]],
                "segments": segments,
            }
        (tmp / "ann.json").write_text(json.dumps({"abcdefgh-_1": events}))
        results["finegym"] = measure(
            lambda: prepare_finegym(tmp / "ann.json", tmp / "raw", tmp / "gym", workers=args.workers, progress=False),
            tmp / "gym",
        )
        frame = render(0, 256, 455, rng)
        for folder in range(args.folders):
            path = tmp / "frames" / "FINADivingWorldCup2021_Men3m_final_r1" / str(folder)
            path.mkdir(parents=True)
            for number in range(120):
                Image.fromarray(np.roll(frame, 7 * number, axis=1)).save(path / f"{1000 + number:05d}.jpg", quality=90)
        jpg_bytes = sum(p.stat().st_size for p in (tmp / "frames").rglob("*.jpg"))
        results["finediving"] = measure(
            lambda: prepare_finediving(tmp / "frames", tmp / "diving", workers=args.workers, progress=False),
            tmp / "diving",
        )
        results["finediving"]["jpg_bytes_per_1000_clips_mb"] = round(jpg_bytes / args.folders * 1000 / 2**20, 1)
    print(json.dumps(results, indent=2))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
    sys.exit(0)
