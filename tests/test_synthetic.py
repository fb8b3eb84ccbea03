"""The synthetic gym: rendering, label space, triplets, statistics, determinism and loading."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from modeling_tfcovr.commands import load_command
from modeling_tfcovr.data.synthetic import (
    CLIP_SCHEMA,
    SyntheticConfig,
    SyntheticLabel,
    build_synthetic_benchmark,
    label_space,
    load_label_list,
    modification_text,
    number_words,
    render_background,
    render_clip,
    reverse_clip_params,
    rotation_phrase,
    sample_clip_params,
    split_clips,
)
from modeling_tfcovr.data.tfcovr_csv import TRIPLET_SCHEMA
from modeling_tfcovr.errors import DataFormatError
from modeling_tfcovr.model_card import CITATION
from modeling_tfcovr.video_io import read_frames, write_mp4

REPO = Path(__file__).resolve().parents[1]
SPLITS = ("train", "val", "test")
SMALL = SyntheticConfig(
    num_frames=12,
    apparatus=("floor", "beam"),
    rotations=(1.0, 2.0),
    train_clips_per_label=2,
    val_clips_per_label=2,
    test_clips_per_label=1,
    train_triplets_per_query=3,
)
SMALL_ARGS = [
    "--frames", "12", "--apparatus", "floor,beam", "--rotations", "1,2",
    "--train-clips-per-label", "2", "--val-clips-per-label", "2", "--test-clips-per-label", "1",
    "--train-triplets-per-query", "3", "--quiet",
]  # fmt: skip


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """The same small config built twice with seed 3 (library and CLI) and once with seed 4."""
    root = tmp_path_factory.mktemp("synthetic")
    stats = build_synthetic_benchmark(root / "a", seed=3, config=SMALL)
    assert load_command("build-synthetic").main(["--output", str(root / "b"), "--seed", "3", *SMALL_ARGS]) == 0
    build_synthetic_benchmark(root / "c", seed=4, config=SMALL)
    return {"a": root / "a", "b": root / "b", "c": root / "c", "stats": stats}


def _table(directory: Path, kind: str, split: str) -> list[dict]:
    return pq.read_table(directory / kind / f"{split}.parquet").to_pylist()


def test_same_seed_gives_identical_bytes_and_frames(builds):
    a, b, c = builds["a"], builds["b"], builds["c"]
    for relative in [f"{kind}/{split}.parquet" for kind in ("data", "clips") for split in SPLITS] + [
        "labels.json",
        "stats.json",
        "README.md",
    ]:
        assert (a / relative).read_bytes() == (b / relative).read_bytes(), relative
    videos = sorted(p.name for p in (a / "videos").iterdir())
    assert videos == sorted(p.name for p in (b / "videos").iterdir())
    for name in videos:
        np.testing.assert_array_equal(read_frames(a / "videos" / name), read_frames(b / "videos" / name))
    # another seed gives other clips and triplets
    assert (a / "data" / "train.parquet").read_bytes() != (c / "data" / "train.parquet").read_bytes()
    assert not np.array_equal(read_frames(a / "videos" / videos[0]), read_frames(c / "videos" / videos[0]))


def test_clip_encoding_is_byte_stable(tmp_path):
    """x264's SIMD kernels made identical frames encode differently from run to run; the writer must not."""
    config = replace(SyntheticConfig(size=64, num_frames=12), noise_std=(4.0, 4.0))
    frames = render_clip(
        sample_clip_params(SyntheticLabel("beam", "salto", 2.0, "cw"), config, np.random.default_rng(5))
    )
    outputs = set()
    for index in range(30):
        write_mp4(tmp_path / f"{index}.mp4", frames, fps=16)
        outputs.add((tmp_path / f"{index}.mp4").read_bytes())
    assert len(outputs) == 1
    decoded = read_frames(tmp_path / "0.mp4")
    assert decoded.shape == frames.shape
    assert np.abs(decoded.astype(int) - frames.astype(int)).mean() < 8  # near-lossless at crf 18


def test_every_clip_decodes_to_the_configured_frames(builds):
    directory = builds["a"]
    listed = []
    for split in SPLITS:
        for clip in _table(directory, "clips", split):
            frames = read_frames(directory / clip["video"])
            assert frames.shape == (SMALL.num_frames, SMALL.size, SMALL.size, 3)
            listed.append(Path(clip["video"]).name)
    assert sorted(listed) == sorted(p.name for p in (directory / "videos").iterdir())


def test_clip_tables(builds):
    directory = builds["a"]
    labels = load_label_list(directory)
    assert labels == [label.name for label in label_space(SMALL)]
    assert len(labels) == 2 * 2 * 2 * 2
    assert labels[0] == "floor/salto/1.0/cw"
    seen: dict[str, set[str]] = {}
    for split in SPLITS:
        assert pq.read_schema(directory / "clips" / f"{split}.parquet").remove_metadata() == CLIP_SCHEMA
        clips = _table(directory, "clips", split)
        assert len(clips) == len(labels) * SMALL.clips_per_label(split)
        counts = {label: 0 for label in labels}
        for clip in clips:
            assert re.fullmatch(rf"syn_{split}_\d{{5}}", clip["video_id"])
            assert clip["video"] == f"videos/{clip['video_id']}.mp4"
            assert labels[clip["label_id"]] == clip["label"]
            parsed = SyntheticLabel.parse(clip["label"])
            assert (clip["apparatus"], clip["element"], clip["rotations"], clip["direction"]) == (
                parsed.apparatus, parsed.element, parsed.rotations, parsed.direction,
            )  # fmt: skip
            idle = SMALL.num_frames - (clip["action_end"] - clip["action_start"])
            low, high = SMALL.idle_fraction
            assert math.ceil(low * SMALL.num_frames) <= idle <= math.floor(high * SMALL.num_frames)
            counts[clip["label"]] += 1
        assert set(counts.values()) == {SMALL.clips_per_label(split)}
        seen[split] = {clip["video_id"] for clip in clips}
    assert not (seen["train"] & seen["val"] or seen["train"] & seen["test"] or seen["val"] & seen["test"])


def test_triplets_follow_the_tfcovr_rules(builds):
    directory = builds["a"]
    stats = json.loads((directory / "stats.json").read_text())
    for split in SPLITS:
        assert pq.read_schema(directory / "data" / f"{split}.parquet").remove_metadata() == TRIPLET_SCHEMA
        clips = {clip["video_id"]: clip["label"] for clip in _table(directory, "clips", split)}
        gallery: dict[str, list[str]] = {}
        for video_id, label in clips.items():
            gallery.setdefault(label, []).append(video_id)
        triplets = _table(directory, "data", split)
        assert len(triplets) == len(clips) * SMALL.triplets_per_query(split)
        assert len({row["query_id"] for row in triplets}) == len(triplets)
        per_query: dict[str, set[str]] = {}
        for row in triplets:
            assert row["source"] == "synthetic"
            assert clips[row["query_video"]] == row["query_label"]
            # every clip of the target label in this split, and nothing else, is a valid target
            assert row["target_videos"] == sorted(gallery[row["target_label"]])
            assert row["target_video"] in row["target_videos"]
            assert row["query_video"] not in row["target_videos"]
            changed = SyntheticLabel.parse(row["query_label"]).changed_attributes(
                SyntheticLabel.parse(row["target_label"])
            )
            assert 1 <= len(changed) <= 2
            assert row["modification"] and not re.search(r"\d", row["modification"])
            per_query.setdefault(row["query_video"], set()).add(row["target_label"])
        assert set(map(len, per_query.values())) == {SMALL.triplets_per_query(split)}  # distinct targets per query
        targets = [len(row["target_videos"]) for row in triplets]
        assert stats["splits"][split]["targets_per_query"] == {
            "mean": round(float(np.mean(targets)), 3),
            "min": min(targets),
            "max": max(targets),
        }
        assert stats["splits"][split]["targets_per_query"]["min"] == SMALL.clips_per_label(split)
        assert stats["splits"][split]["self_targets"] == 0
        assert stats["splits"][split]["triplets"] == len(triplets)
        kinds = stats["splits"][split]["modification_kinds"]
        assert sum(kinds.values()) == len(triplets)


def test_load_dataset_round_trip(builds, tmp_path):
    import datasets

    directory = builds["a"]
    triplets = datasets.load_dataset(str(directory), cache_dir=str(tmp_path))
    assert set(triplets) == set(SPLITS)
    for split in SPLITS:
        assert triplets[split].to_list() == _table(directory, "data", split)
    assert triplets["train"].features["target_videos"] == datasets.List(datasets.Value("string"))
    clips = datasets.load_dataset(str(directory), "clips", cache_dir=str(tmp_path))
    assert clips["val"].to_list() == _table(directory, "clips", "val")
    assert clips["val"].features["label_id"] == datasets.Value("int64")
    card = (directory / "README.md").read_text()
    assert "license: mit" in card and CITATION in card and "Why single-frame models must fail" in card


def test_default_config_sizes_without_rendering():
    config = SyntheticConfig()
    labels = label_space(config)
    assert len(labels) == 36 and len({label.name for label in labels}) == 36
    assert (config.size, config.num_frames, config.fps) == (32, 16, 8)
    assert config.rotations == (0.5, 1.0, 1.5)  # half-turn steps: "half a rotation more" is a modification
    counts = {split: len(split_clips(config, 0, split)) for split in SPLITS}
    assert counts == {"train": 1152, "val": 144, "test": 144}


def test_body_scale_grows_the_body_and_keeps_saltos_in_the_frame():
    label = SyntheticLabel("floor", "salto", 1.0, "cw")
    body_pixels, travels = {}, {}
    for scale in (1.0, 1.3):
        config = SyntheticConfig(size=64, body_scale=scale, noise_std=(0.0, 0.0))
        params = sample_clip_params(label, config, np.random.default_rng(3))
        background = render_background(label.apparatus, 64, params.tint)
        frames = render_clip(params).astype(np.int32)
        body_pixels[scale] = (np.abs(frames - np.rint(background)).sum(-1) > 30).sum(axis=(1, 2)).mean()
        travels[scale] = abs(params.end_xy[0] - params.start_xy[0])
        extent = params.half_length + params.head_radius
        assert (
            min(params.start_xy[0], params.end_xy[0]) >= 0.8 * extent - 1e-9
        )  # at most a fifth of it leaves the frame
        assert max(params.start_xy[0], params.end_xy[0]) <= 1 - 0.8 * extent + 1e-9
    assert body_pixels[1.3] / body_pixels[1.0] == pytest.approx(1.3**2, rel=0.2)  # an area: the square of the scale
    assert travels[1.3] < travels[1.0]
    with pytest.raises(ValueError, match="body_scale"):
        SyntheticConfig(body_scale=3.0)


def test_rendered_direction_and_rotation_count_are_what_the_label_says():
    """Track the yellow head around the body centre: its unwrapped angle must turn by 2*pi*R, with
    the label's sign (clockwise on screen = growing angle, as y points down)."""
    config = SyntheticConfig(size=64, num_frames=48, noise_std=(0.0, 0.0), idle_fraction=(0.0, 0.0))
    for rotations, direction in ((1.0, "cw"), (2.0, "ccw"), (1.5, "cw")):
        params = sample_clip_params(
            SyntheticLabel("floor", "turn", rotations, direction), config, np.random.default_rng(7)
        )
        frames = render_clip(params).astype(np.int32)
        head = (frames[..., 0] > 200) & (frames[..., 1] > 170) & (frames[..., 2] < 90)
        ys, xs = np.mgrid[0:64, 0:64] + 0.5
        centre_x, centre_y = params.start_xy[0] * 64, params.start_xy[1] * 64
        angles = [math.atan2((ys[m]).mean() - centre_y, (xs[m]).mean() - centre_x) for m in head]
        turned = np.unwrap(angles)[-1] - angles[0]
        sign = 1 if direction == "cw" else -1
        assert turned == pytest.approx(sign * 2 * math.pi * rotations, abs=0.35)
        assert head.sum(axis=(1, 2)).min() >= 10  # the head is visible in every frame


def test_direction_is_invisible_to_orderless_pooling():
    """A ccw clip equals the time reversal of a cw clip with the same nuisances (noise aside), so the
    multiset of frames cannot tell the direction; reversal maps the sampling distribution onto itself."""
    config = replace(SyntheticConfig(), noise_std=(0.0, 0.0))
    for element in ("salto", "turn"):
        params = sample_clip_params(SyntheticLabel("beam", element, 2.0, "cw"), config, np.random.default_rng(11))
        reversed_params = reverse_clip_params(params)
        assert reversed_params.label.direction == "ccw"
        forward, backward = render_clip(params), render_clip(reversed_params)
        difference = np.abs(forward[::-1].astype(int) - backward.astype(int))
        assert difference.max() <= 1 and (difference > 0).mean() < 1e-3
        # the same multiset of frames, but not the same video: the order carries the direction
        assert np.abs(forward.astype(int) - backward.astype(int)).max() > 100
        same_start = render_clip(replace(params, label=reversed_params.label))
        assert not np.array_equal(forward, same_start)


def test_apparatus_layouts_differ_and_ignore_the_body():
    backgrounds = {name: render_background(name, 32) for name in ("floor", "beam", "vault", "water")}
    names = list(backgrounds)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            assert np.abs(backgrounds[first] - backgrounds[second]).mean() > 20


def test_modification_texts():
    assert [number_words(x) for x in (0.5, 1, 1.5, 2, 3.5, 7)] == [
        "half",
        "one",
        "one and a half",
        "two",
        "three and a half",
        "seven",
    ]
    assert [rotation_phrase(x) for x in (0.5, 1, 2.5)] == [
        "half a rotation",
        "one rotation",
        "two and a half rotations",
    ]
    query = SyntheticLabel("floor", "turn", 1.0, "cw")
    texts = set()
    rng = np.random.default_rng(0)
    for _ in range(200):
        text, kind, style = modification_text(query, SyntheticLabel("floor", "turn", 2.0, "cw"), rng)
        assert kind == "rotations"
        texts.add((text, style))
    assert ("with two rotations instead of one rotation", "absolute") in texts
    assert ("one more rotation", "relative") in texts
    assert ("twice as many rotations", "relative") in texts
    text, kind, style = modification_text(query, SyntheticLabel("beam", "turn", 1.0, "ccw"), np.random.default_rng(1))
    assert kind == "apparatus+direction" and "on the beam" in text and " and " in text
    with pytest.raises(ValueError, match="changes 3 attributes"):
        modification_text(query, SyntheticLabel("beam", "salto", 1.0, "ccw"), rng)


def test_labels_and_config_validation(tmp_path):
    label = SyntheticLabel.parse("vault/salto/2.5/ccw")
    assert label == SyntheticLabel("vault", "salto", 2.5, "ccw") and label.name == "vault/salto/2.5/ccw"
    with pytest.raises(DataFormatError):
        SyntheticLabel.parse("vault/salto/two")
    with pytest.raises(ValueError, match="size must be an even number"):
        SyntheticConfig(size=33)
    with pytest.raises(ValueError, match="multiples of 0.5"):
        SyntheticConfig(rotations=(1.0, 1.3))
    with pytest.raises(ValueError, match="apparatus must be distinct values"):
        SyntheticConfig(apparatus=("floor", "moon"))
    with pytest.raises(DataFormatError, match="labels.json"):
        load_label_list(tmp_path)
    half_steps = SyntheticConfig(rotations=(0.5, 1.0, 1.5, 2.0, 2.5, 3.0))
    assert len(label_space(half_steps)) == 3 * 2 * 6 * 2


@pytest.mark.slow
def test_default_build_is_fast_enough(tmp_path):
    start = time.perf_counter()
    assert load_command("build-synthetic").main(["--output", str(tmp_path / "gym"), "--seed", "0", "--quiet"]) == 0
    assert time.perf_counter() - start < 120
    stats = json.loads((tmp_path / "gym" / "stats.json").read_text())
    assert {split: stats["splits"][split]["clips"] for split in SPLITS} == {"train": 1152, "val": 144, "test": 144}
    assert stats["splits"]["test"]["targets_per_query"] == {"mean": 4.0, "min": 4, "max": 4}
    assert len(list((tmp_path / "gym" / "videos").iterdir())) == 1440
    # and load_dataset reads it offline, in a fresh process
    probe = (
        "from datasets import load_dataset; import sys; d = load_dataset(sys.argv[1]); "
        "c = load_dataset(sys.argv[1], 'clips'); print(d.num_rows['test'], c.num_rows['train'])"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    loaded = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path / "gym")], env=env, capture_output=True, text=True, timeout=300
    )
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.split() == [str(stats["splits"]["test"]["triplets"]), "1152"]
