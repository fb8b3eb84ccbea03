"""Interrupted jobs: embedding extraction and both training stages run as real subprocesses, are killed with SIGKILL
at a random moment once some output exists, then rerun / resumed. They must end with the same outputs as an
uninterrupted run, keep what was finished, and never take a partial file for a finished one."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from safetensors.torch import load_file

import modeling_tfcovr as mt
from modeling_tfcovr.data.embeddings import read_embeddings
from modeling_tfcovr.data.synthetic import SyntheticConfig, build_synthetic_benchmark
from modeling_tfcovr.training.checkpoints import latest_complete_checkpoint
from modeling_tfcovr.training.extract import read_failures
from modeling_tfcovr.video_io import write_mp4

from .training_fixtures import build_embedding_world, stage2_arguments

ROOT = Path(__file__).resolve().parents[1]
TFCOVR = [sys.executable, "-m", "modeling_tfcovr.commands"]  # the `tfcovr` program
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _kill_at_a_random_moment(command: list[str], cwd: Path, ready, max_delay: float) -> float:
    """Starts `command`, waits until `ready()` (some output exists), waits a random delay more, then SIGKILLs it.
    Returns the delay (for the failure messages)."""
    delay = random.Random().uniform(0.0, max_delay)
    process = subprocess.Popen(command, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not ready():
            assert process.poll() is None, "the job ended before it wrote anything"
            assert time.monotonic() < deadline, "the job wrote nothing in 300 s"
            time.sleep(0.01)
        time.sleep(delay)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL, f"the job finished before it was killed (delay {delay:.2f} s)"
    return delay


# ----------------------------------------------------------------------------------------------------------------------
# Embedding extraction
# ----------------------------------------------------------------------------------------------------------------------


def _write_clip(path: Path, seed: int, height: int = 720, width: int = 1280, num_frames: int = 8) -> None:
    """A real H.264 clip, large enough that decoding and resizing take a while (so the job can be caught mid-way)."""
    yy, xx = np.mgrid[0:height, 0:width]
    frames = [
        ((xx // (8 * (seed + 1)) * 16 + yy // 32 * 8 + t * 20 + 37 * seed) % 256).astype(np.uint8)
        for t in range(num_frames)
    ]
    write_mp4(
        path, np.repeat(np.stack(frames)[..., None], 3, axis=-1), fps=8, crf=23, preset="ultrafast", deterministic=False
    )


def test_extraction_killed_and_rerun_equals_an_uninterrupted_run(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for seed in range(6):
        _write_clip(videos / f"clip_{seed}_0.mp4", seed)
        for copy in range(1, 8):  # same content under other names: many videos at little encoding cost
            shutil.copyfile(videos / f"clip_{seed}_0.mp4", videos / f"clip_{seed}_{copy}.mp4")
    (videos / "clip_3_broken.mp4").write_text("not a video")
    num_videos, shard_size = 49, 2
    num_shards = -(-num_videos // shard_size)
    vision = mt.TFCoVRVisionModel(
        mt.TFCoVRVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=32,
            patch_size=8,
            num_frames=4,
        )
    )
    vision.save_pretrained(tmp_path / "vision")

    def command(output: Path) -> list[str]:
        return [
            *TFCOVR,
            "extract-embeddings",
            "--model",
            str(tmp_path / "vision"),
            "--videos",
            str(videos),
            "--output",
            str(output),
            "--shard-size",
            str(shard_size),
            "--batch-size",
            "1",
            "--num-workers",
            "0",
        ]

    reference = json.loads(_run(command(tmp_path / "reference"), tmp_path).stdout)
    assert reference["shards_written"] == num_shards and reference["failures"] == 1

    output = tmp_path / "run"

    def shards() -> list[Path]:
        return sorted(output.glob("embeddings-*.parquet"))

    delay = _kill_at_a_random_moment(command(output), tmp_path, lambda: len(shards()) >= 1, max_delay=1.0)
    finished = {path.name: path.stat().st_mtime_ns for path in shards()}
    assert 1 <= len(finished) < num_shards, f"killed after {delay:.2f} s with {len(finished)} shards"
    for path in output.glob("embeddings-*.parquet"):
        pq.read_table(path)  # every file under a shard's name is a complete parquet file

    # A partial file left by a killed writer is hidden and temporary: plant one (valid parquet, wrong values) for a
    # shard that was not finished, as if the kill had hit while it was being written.
    unfinished = next(i for i in range(num_shards) if f"embeddings-{i:05d}-of-{num_shards:05d}.parquet" not in finished)
    planted = output / f".embeddings-{unfinished:05d}-of-{num_shards:05d}.parquet.tmp99999"
    bogus = pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(64, np.float32)), 32)
    pq.write_table(pa.table({"video_id": ["clip_0_0", "clip_0_1"], "embedding": bogus}), planted)

    rerun = json.loads(_run(command(output), tmp_path).stdout)
    assert rerun["shards_skipped"] == len(finished), f"delay {delay:.2f} s"
    assert rerun["shards_written"] == num_shards - len(finished)
    for name, mtime in finished.items():  # finished shards were not redone
        assert (output / name).stat().st_mtime_ns == mtime, name
    assert len(shards()) == num_shards

    expected_ids, expected = read_embeddings(tmp_path / "reference")
    ids, embeddings = read_embeddings(output)
    assert ids == expected_ids and len(ids) == num_videos - 1
    np.testing.assert_array_equal(embeddings, expected)  # bit for bit: the same computation
    assert np.abs(embeddings).sum(axis=1).min() > 0  # the planted zeros were not read
    assert read_failures(output) == read_failures(tmp_path / "reference")
    assert [f["video_id"] for f in read_failures(output)] == ["clip_3_broken"]


# ----------------------------------------------------------------------------------------------------------------------
# Stage-1 training
# ----------------------------------------------------------------------------------------------------------------------

TINY_STAGE1 = {
    "config_overrides": "num_frames=4,image_size=16,patch_size=8,hidden_size=16,intermediate_size=32,"
    "num_hidden_layers=1,num_attention_heads=2,drop_path_rate=0.1,classifier_dropout=0.3",
    "train_backbone": True,
    "learning_rate": 3e-3,
    "warmup_epochs": 1,
    "num_train_epochs": 30,
    "per_device_train_batch_size": 2,
    "per_device_eval_batch_size": 8,
    "use_cpu": True,
    "seed": 0,
    "dataloader_num_workers": 0,
    "disable_tqdm": True,
    "report_to": "none",
    "save_total_limit": 2,
}


def _kill_in_a_random_epoch(
    command: list[str], cwd: Path, output: Path, num_epochs: int, seconds_per_epoch: float
) -> str:
    """Runs a training `command` (saving a checkpoint every epoch into `output`) and SIGKILLs it somewhere inside a
    random epoch of the first half: once that epoch's checkpoint exists, after up to one epoch's time more (a fixed
    delay after the first checkpoint can outlast the whole run on a fast machine). Returns when it was killed."""
    kill_after_epoch = random.Random().randint(1, num_epochs // 2)

    def reached_epoch() -> bool:
        checkpoint = latest_complete_checkpoint(output)
        try:
            return (
                checkpoint is not None
                and json.loads((Path(checkpoint) / "trainer_state.json").read_text())["epoch"] >= kill_after_epoch
            )
        except (json.JSONDecodeError, FileNotFoundError):  # being written, or rotated away, right now
            return False

    delay = _kill_at_a_random_moment(command, cwd, reached_epoch, max_delay=seconds_per_epoch)
    moment = f"killed in epoch {kill_after_epoch} + {delay:.2f} s"
    assert not (output / "log_history.json").exists(), f"it really died before the end ({moment})"
    return moment


def _resume_and_compare(
    resume_command: list[str], cwd: Path, output: Path, reference: Path, metric_keys: tuple[str, ...], moment: str
) -> None:
    """Resumes a killed run from its last complete checkpoint and checks that it ends like the uninterrupted
    `reference`: the same final metrics, the same loss at every step logged after the resume, identical weights."""
    checkpoint = latest_complete_checkpoint(output)
    assert checkpoint is not None, moment
    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text())
    resumed_from, resumed_epoch = state["global_step"], round(state["epoch"])
    # A checkpoint folder cut off while being written (no trainer_state.json) is never resumed from.
    partial = output / "checkpoint-999999"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"cut off")
    assert latest_complete_checkpoint(output) == checkpoint
    shutil.rmtree(partial)  # Trainer itself would otherwise see a higher step to rotate

    resumed = _run([*resume_command, "--resume_from_checkpoint", "latest", "--log_level", "info"], cwd)
    assert f"Resuming training from checkpoint with epoch {resumed_epoch} and global step {resumed_from}" in (
        resumed.stderr + resumed.stdout
    ), f"it did not resume from the last complete checkpoint ({moment})"
    history = json.loads((output / "log_history.json").read_text())
    expected_history = json.loads((reference / "log_history.json").read_text())
    final = [entry for entry in history if metric_keys[0] in entry][-1]
    expected = [entry for entry in expected_history if metric_keys[0] in entry][-1]
    for key in (*metric_keys, "epoch", "step"):
        assert final[key] == pytest.approx(expected[key], abs=1e-6), (key, moment)
    losses = {entry["step"]: entry["loss"] for entry in history if "loss" in entry}
    expected_losses = {entry["step"]: entry["loss"] for entry in expected_history if "loss" in entry}
    assert losses.keys() == expected_losses.keys(), moment  # the log before the checkpoint travels with it
    for step, loss in losses.items():  # and every epoch trained after the resume matches the uninterrupted run
        assert loss == pytest.approx(expected_losses[step], abs=1e-6), (step, moment)
    weights, expected_weights = load_file(output / "model.safetensors"), load_file(reference / "model.safetensors")
    assert weights.keys() == expected_weights.keys()
    for key in weights:
        assert (weights[key] == expected_weights[key]).all(), (key, moment)


def _timed_run(command: list[str], cwd: Path, num_epochs: int) -> float:
    """Runs `command` to the end and returns its seconds per epoch (start-up included)."""
    started = time.monotonic()
    _run(command, cwd)
    return (time.monotonic() - started) / num_epochs


@pytest.mark.slow
def test_stage1_killed_and_resumed_ends_with_the_same_metrics(tmp_path):
    config = SyntheticConfig(
        size=16,
        num_frames=8,
        apparatus=("floor",),
        elements=("turn",),
        rotations=(1.0, 2.0),
        train_clips_per_label=4,
        val_clips_per_label=2,
        test_clips_per_label=1,
    )
    build_synthetic_benchmark(tmp_path / "synthetic", seed=0, config=config)

    def command(output: Path) -> list[str]:
        options = {**TINY_STAGE1, "dataset_dir": tmp_path / "synthetic", "output_dir": output}
        return [
            *TFCOVR,
            "train-classifier",
            *[part for key, value in options.items() for part in (f"--{key}", str(value))],
        ]

    epochs = TINY_STAGE1["num_train_epochs"]
    seconds_per_epoch = _timed_run(command(tmp_path / "reference"), tmp_path, epochs)
    moment = _kill_in_a_random_epoch(command(tmp_path / "run"), tmp_path, tmp_path / "run", epochs, seconds_per_epoch)
    _resume_and_compare(
        command(tmp_path / "run"),
        tmp_path,
        tmp_path / "run",
        tmp_path / "reference",
        ("eval_accuracy", "eval_loss", "eval_top5_accuracy"),
        moment,
    )


# ----------------------------------------------------------------------------------------------------------------------
# Stage 2 (retrieval training on embeddings)
# ----------------------------------------------------------------------------------------------------------------------


def test_stage2_killed_and_resumed_ends_with_the_same_metrics(tmp_path):
    world = build_embedding_world(tmp_path / "world")
    epochs = 10
    options = dict(
        save_strategy="epoch",
        save_total_limit=2,
        eval_strategy="no",
        num_train_epochs=epochs,
        per_device_train_batch_size=8,
        combiner_dropout=0.3,
    )

    def command(output: Path) -> list[str]:
        return [*TFCOVR, "train-retrieval", *stage2_arguments(world, output, **options)]

    seconds_per_epoch = _timed_run(command(tmp_path / "reference"), tmp_path, epochs)
    moment = _kill_in_a_random_epoch(command(tmp_path / "run"), tmp_path, tmp_path / "run", epochs, seconds_per_epoch)
    _resume_and_compare(
        command(tmp_path / "run"),
        tmp_path,
        tmp_path / "run",
        tmp_path / "reference",
        ("eval_map@10", "eval_map@5", "eval_map@50", "eval_recall@10"),
        moment,
    )
