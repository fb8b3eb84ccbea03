"""Bad inputs: every kind of broken video, table, text and embedding that real collections contain, fed to the
processor, the dataset builder, the pipeline, extraction and the scripts. Each must end in a project error
(`TFCoVRError`) that names the input and the problem, or, in batch jobs, in an entry of the failures report while
everything else completes. The table in docs/reliability.md maps each input kind to its test here."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

import modeling_tfcovr as mt
from modeling_tfcovr.commands import load_command
from modeling_tfcovr.data.embeddings import read_embeddings, validate_embeddings, write_embeddings_parquet
from modeling_tfcovr.data.tfcovr_csv import build_tfcovr_dataset
from modeling_tfcovr.errors import DataFormatError, TFCoVRError, UnsafePathError, VideoDecodeError
from modeling_tfcovr.pipeline_tfcovr import TASK, ComposedVideoRetrievalPipeline
from modeling_tfcovr.retrieval_index import RetrievalIndex
from modeling_tfcovr.training.extract import extract_embeddings, read_failures
from modeling_tfcovr.video_io import read_frames, resolve_relative_video_path, resolve_video_path, write_mp4
from modeling_tfcovr.video_processing_tfcovr import segment_frame_indices

from .conftest import TINY_TEXT_WORDS, TINY_VISION, brightness_frames, tiny_text_config
from .training_fixtures import build_embedding_world, stage2_arguments

ROOT = Path(__file__).resolve().parents[1]
TFCOVR = [sys.executable, "-m", "modeling_tfcovr.commands"]  # the `tfcovr` program
SMALL = dict(num_frames=4, size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})


def _pixels_to_levels(pixels: torch.Tensor, processor) -> np.ndarray:
    """`pixel_values_videos` (T, 3, H, W) back to 0-255 values."""
    mean = torch.tensor(processor.image_mean)[:, None, None]
    std = torch.tensor(processor.image_std)[:, None, None]
    return ((pixels * std + mean) * 255).numpy()


def _write_with_pyav(
    path: Path,
    frames: np.ndarray,
    container: str,
    codec: str,
    pix_fmt: str,
    input_format: str,
    options: dict | None = None,
) -> Path:
    """Encodes `frames` losslessly or in odd pixel formats (grey, alpha), which `write_mp4` does not do."""
    with av.open(str(path), mode="w", format=container, options=options or {}) as output:
        stream = output.add_stream(codec, rate=8)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        if codec == "libx264":
            stream.options = {"crf": "18", "preset": "veryfast", "threads": "1"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format=input_format)):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return path


def _write_audio_only_mp4(path: Path) -> Path:
    with av.open(str(path), mode="w", format="mp4") as output:
        stream = output.add_stream("aac", rate=16000)
        for index in range(8):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, index * 1024
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return path


# Broken files, each with the reason its error must give.
BAD_VIDEO_REASONS = {
    "missing": "file does not exist",
    "zero_bytes": "file is empty (0 bytes)",
    "text_named_mp4": "not a readable video",
    "random_bytes": "not a readable video",
    "png_named_mp4": "not a readable video",
    "audio_only": "not a readable video",
    "truncated": "not a readable video",
    "truncated_faststart": "not a readable video",
    "directory": "is a directory",
}


def _make_bad_videos(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    good = folder / ".source.mp4"
    write_mp4(good, brightness_frames(20))
    paths = {kind: folder / f"{kind}.mp4" for kind in BAD_VIDEO_REASONS}
    paths["zero_bytes"].write_bytes(b"")
    paths["text_named_mp4"].write_text("query_video,target_video\nthis is a CSV, not a video\n")
    paths["random_bytes"].write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(paths["png_named_mp4"], format="PNG")
    _write_audio_only_mp4(paths["audio_only"])
    data = good.read_bytes()
    paths["truncated"].write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: it is cut off
    faststart = _write_with_pyav(
        folder / ".faststart.mp4",
        np.random.default_rng(1).integers(0, 255, (12, 64, 64, 3), np.uint8),
        "mp4",
        "libx264",
        "yuv420p",
        "rgb24",
        {"movflags": "faststart"},
    )
    data = faststart.read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")  # the index comes first: the frame data is what is cut off
    paths["truncated_faststart"].write_bytes(data[: int(len(data) * 0.6)])
    paths["directory"].mkdir()
    good.unlink()
    faststart.unlink()
    return paths


@pytest.fixture(scope="module")
def bad_videos(tmp_path_factory) -> dict[str, Path]:
    return _make_bad_videos(tmp_path_factory.mktemp("bad_videos"))


# Unusual but valid videos, each with the grey level of each of its frames.
def _make_odd_videos(folder: Path) -> dict[str, tuple[Path, list[int]]]:
    folder.mkdir(parents=True, exist_ok=True)
    videos = {}
    write_mp4(folder / "one_frame.mp4", np.full((1, 32, 48, 3), 120, np.uint8))
    videos["one_frame"] = (folder / "one_frame.mp4", [120])
    grey = np.stack([np.full((32, 48), 30 * i, np.uint8) for i in range(6)])
    _write_with_pyav(folder / "grayscale.mkv", grey, "matroska", "ffv1", "gray", "gray")  # lossless, 1 channel
    videos["grayscale"] = (folder / "grayscale.mkv", [30 * i for i in range(6)])
    rgba = np.concatenate([np.repeat(grey[..., None], 3, axis=-1), np.full((6, 32, 48, 1), 77, np.uint8)], axis=-1)
    _write_with_pyav(folder / "rgba.mov", rgba, "mov", "qtrle", "argb", "rgba")  # lossless, with an alpha channel
    videos["rgba"] = (folder / "rgba.mov", [30 * i for i in range(6)])
    large = np.zeros((3, 1500, 2000, 3), np.uint8)  # 2000x1500; 2000 is not a multiple of 32 either
    for index in range(3):
        large[index] = 40 * index
    write_mp4(folder / "large_2000x1500.mp4", large)
    videos["large_2000x1500"] = (folder / "large_2000x1500.mp4", [0, 40, 80])
    return videos


@pytest.fixture(scope="module")
def odd_videos(tmp_path_factory) -> dict[str, tuple[Path, list[int]]]:
    return _make_odd_videos(tmp_path_factory.mktemp("odd_videos"))


def _tiny_model_and_processor(seed: int = 0):
    tokenizer = mt.build_word_level_tokenizer(TINY_TEXT_WORDS)
    config = mt.TFCoVRConfig(
        vision_config=TINY_VISION,
        text_config=tiny_text_config(len(tokenizer)),
        embed_dim=32,
        combiner_projection_dim=48,
        combiner_hidden_dim=64,
    )
    torch.manual_seed(seed)
    model = mt.TFCoVRModel(config).eval()
    return model, mt.TFCoVRProcessor(mt.TFCoVRVideoProcessor(**SMALL), tokenizer)


@pytest.fixture(scope="module")
def pipe():
    model, processor = _tiny_model_and_processor()
    return ComposedVideoRetrievalPipeline(model=model, processor=processor, task=TASK)


@pytest.fixture(scope="module")
def good_videos(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("good_videos")
    paths = []
    for index in range(3):
        frames = brightness_frames(16, step=12)
        frames[:, : 8 * (index + 1)] = 255 - 60 * index  # a different band per video: different embeddings
        write_mp4(folder / f"good_{index}.mp4", frames)
        paths.append(folder / f"good_{index}.mp4")
    return paths


# ----------------------------------------------------------------------------------------------------------------------
# Video files: the processor
# ----------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(BAD_VIDEO_REASONS))
def test_broken_video_file_raises_video_decode_error_naming_it(bad_videos, kind):
    path = bad_videos[kind]
    processor = mt.TFCoVRVideoProcessor(**SMALL)
    for call in (lambda: processor(str(path)), lambda: read_frames(path), lambda: processor([str(path)] * 2)):
        with pytest.raises(VideoDecodeError) as caught:
            call()
        assert isinstance(caught.value, TFCoVRError)
        assert caught.value.path == str(path)
        assert str(path) in str(caught.value) and BAD_VIDEO_REASONS[kind] in str(caught.value)


def test_one_frame_video_gives_that_frame_num_frames_times(odd_videos):
    path, levels = odd_videos["one_frame"]
    processor = mt.TFCoVRVideoProcessor(**SMALL)
    for mode in ("middle", "random"):
        pixels = processor(str(path), sampling_mode=mode, sampling_seed=0)["pixel_values_videos"]
        assert pixels.shape == (1, 4, 3, 32, 32)
        values = _pixels_to_levels(pixels[0], processor)
        assert np.abs(values - levels[0]).max() <= 2  # H.264 keeps a flat grey within a level or two
        torch.testing.assert_close(pixels[0, 1:], pixels[0, :1].expand(3, -1, -1, -1))


@pytest.mark.parametrize("kind", ["grayscale", "rgba"])
def test_grayscale_and_rgba_video_files_decode_to_rgb(odd_videos, kind):
    path, levels = odd_videos[kind]
    frames = read_frames(path)
    assert frames.shape == (6, 32, 48, 3) and frames.dtype == np.uint8
    assert frames[:, 0, 0].tolist() == [[level] * 3 for level in levels]  # lossless codecs: exact values
    processor = mt.TFCoVRVideoProcessor(**SMALL)
    values = _pixels_to_levels(processor(str(path))["pixel_values_videos"][0], processor)
    expected = [levels[i] for i in segment_frame_indices(6, 4)]  # the middle frames: 0, 2, 3, 5
    np.testing.assert_allclose(values.mean(axis=(1, 2, 3)), expected, atol=0.01)


def test_grayscale_and_rgba_arrays_and_images_equal_their_rgb_version():
    processor = mt.TFCoVRVideoProcessor(**SMALL)
    grey = np.stack([np.full((32, 48), 30 * i, np.uint8) for i in range(6)])
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    reference = processor(rgb)["pixel_values_videos"]
    alpha = np.random.default_rng(0).integers(0, 256, (6, 32, 48, 1), dtype=np.uint8)
    variants = {
        "(T, H, W)": grey,
        "(T, H, W, 1)": grey[..., None],
        "(T, H, W, 4)": np.concatenate([rgb, alpha], axis=-1),
        "PIL L": [Image.fromarray(frame) for frame in grey],
        "PIL RGBA": [Image.fromarray(frame) for frame in np.concatenate([rgb, alpha], axis=-1)],
        "float in [0, 1]": rgb.astype(np.float32) / 255.0,
    }
    for name, video in variants.items():
        torch.testing.assert_close(processor(video)["pixel_values_videos"], reference, msg=name)
    with pytest.raises(VideoDecodeError, match="frames have 2 channels"):
        processor(np.zeros((6, 32, 48, 2), np.uint8))
    with pytest.raises(VideoDecodeError, match="no frames"):
        processor(np.zeros((0, 32, 48, 3), np.uint8))


def test_very_large_resolution_video_is_decoded_and_resized(odd_videos):
    path, levels = odd_videos["large_2000x1500"]
    processor = mt.TFCoVRVideoProcessor(**SMALL)
    pixels = processor(str(path))["pixel_values_videos"]
    assert pixels.shape == (1, 4, 3, 32, 32)
    values = _pixels_to_levels(pixels[0], processor).mean(axis=(1, 2, 3))
    expected = [levels[i] for i in segment_frame_indices(3, 4)]  # frames 0, 1, 1, 2
    np.testing.assert_allclose(values, expected, atol=2)


# ----------------------------------------------------------------------------------------------------------------------
# Batch jobs over videos: extraction and pipeline.index record the bad ones and finish the rest
# ----------------------------------------------------------------------------------------------------------------------


def test_extraction_lists_every_bad_video_and_embeds_the_rest(bad_videos, odd_videos, good_videos, tmp_path):
    vision = _tiny_model_and_processor()[0].vision_model
    processor = mt.TFCoVRVideoProcessor(**SMALL)
    good = [(p.stem, p) for p in good_videos] + [(name, path) for name, (path, _) in odd_videos.items()]
    bad = [(kind, path) for kind, path in bad_videos.items()]
    mixed = [pair for pairs in zip(good, bad) for pair in pairs] + good[len(bad) :] + bad[len(good) :]
    summary = extract_embeddings(
        vision, processor, mixed, tmp_path / "mixed", shard_size=4, batch_size=3, progress=False
    )
    assert summary.failures == len(bad) and summary.videos_embedded == len(good)

    failures = {record["video_id"]: record for record in read_failures(tmp_path / "mixed")}
    assert set(failures) == set(BAD_VIDEO_REASONS)
    for kind, record in failures.items():
        assert record["path"] == str(bad_videos[kind])
        assert str(bad_videos[kind]) in record["error"] and BAD_VIDEO_REASONS[kind] in record["error"]

    ids, embeddings = read_embeddings(tmp_path / "mixed")
    clean_ids, clean = [], []
    for video_id, path in good:  # each good video alone: the same embedding as inside the mixed job
        extract_embeddings(vision, processor, [(video_id, path)], tmp_path / f"alone_{video_id}", progress=False)
        one_id, one = read_embeddings(tmp_path / f"alone_{video_id}")
        clean_ids += one_id
        clean.append(one)
    order = [ids.index(video_id) for video_id in clean_ids]
    assert sorted(ids) == sorted(clean_ids)
    np.testing.assert_allclose(embeddings[order], np.concatenate(clean), rtol=1e-5, atol=1e-6)


def test_pipeline_index_lists_bad_videos_and_indexes_the_rest(pipe, bad_videos, good_videos):
    bad = [bad_videos[kind] for kind in ("missing", "zero_bytes", "truncated", "text_named_mp4", "directory")]
    videos = [good_videos[0], bad[0], bad[1], good_videos[1], bad[2], bad[3], good_videos[2], bad[4]]
    gallery = pipe.index([str(v) for v in videos], batch_size=3, progress=False)
    assert list(gallery.video_ids) == ["good_0", "good_1", "good_2"]
    assert [f["video_id"] for f in pipe.index_failures] == [
        "missing",
        "zero_bytes",
        "truncated",
        "text_named_mp4",
        "directory",
    ]
    assert [f["index"] for f in pipe.index_failures] == [1, 2, 4, 5, 7]
    for failure, path in zip(pipe.index_failures, bad):
        assert str(path) in failure["error"]
    clean = pipe.index([str(v) for v in good_videos], progress=False)
    np.testing.assert_allclose(gallery.embeddings, clean.embeddings, rtol=1e-5, atol=1e-6)
    with pytest.raises(TFCoVRError, match="none of the 2 videos could be decoded"):
        pipe.index([str(bad[0]), str(bad[1])], progress=False)


def test_pipeline_query_with_a_broken_video_names_it(pipe, bad_videos, good_videos):
    gallery = pipe.index([str(v) for v in good_videos], progress=False)
    with pytest.raises(VideoDecodeError, match="truncated.mp4': not a readable video"):
        pipe(video=str(bad_videos["truncated"]), text="one more rotation", gallery=gallery)


# ----------------------------------------------------------------------------------------------------------------------
# Video ids that would leave the video root
# ----------------------------------------------------------------------------------------------------------------------

UNSAFE_IDS = [
    "../outside",
    "../../etc/passwd",
    "sub/clip",
    "sub\\clip",
    "..",
    ".",
    "",
    "/abs/clip",
    "..hidden",
    "clip\x00.mp4",
]


@pytest.mark.parametrize("video_id", UNSAFE_IDS)
def test_unsafe_video_ids_are_refused(tmp_path, video_id):
    root = tmp_path / "videos"
    root.mkdir()
    with pytest.raises(UnsafePathError) as caught:
        resolve_video_path(root, video_id)
    assert repr(video_id) in str(caught.value)


def test_safe_ids_and_user_symlinks_resolve_inside_the_root(tmp_path):
    root, elsewhere = tmp_path / "videos", tmp_path / "disk2"
    root.mkdir()
    elsewhere.mkdir()
    write_mp4(elsewhere / "real.mp4", brightness_frames(4))
    (root / "linked.mp4").symlink_to(elsewhere / "real.mp4")  # the user's own link: allowed
    assert resolve_video_path(root, "linked") == root.resolve() / "linked.mp4"
    assert read_frames(resolve_video_path(root, "linked")).shape == (4, 32, 48, 3)
    assert resolve_video_path(root, "a..b") == root.resolve() / "a..b.mp4"
    assert resolve_video_path(root, "clip.mkv") == root.resolve() / "clip.mkv"
    assert resolve_relative_video_path(root, "sub/clip.mp4") == root.resolve() / "sub" / "clip.mp4"
    for relative in ("../real.mp4", "sub/../../real.mp4", str(elsewhere / "real.mp4"), "", "sub\\..\\..\\x.mp4"):
        with pytest.raises(UnsafePathError, match="refusing to read outside"):
            resolve_relative_video_path(root, relative)


def _outside_world(tmp_path: Path) -> dict:
    """A video root and, next to it, a valid video that ids in a table try to reach."""
    root = tmp_path / "root" / "videos"
    root.mkdir(parents=True)
    write_mp4(root / "inside.mp4", brightness_frames(8))
    write_mp4(tmp_path / "root" / "outside.mp4", brightness_frames(8))  # readable, but outside the video root
    vision = mt.TFCoVRVisionModel(mt.TFCoVRVisionConfig(**TINY_VISION))
    vision.save_pretrained(tmp_path / "vision")
    return {"root": root, "vision": tmp_path / "vision"}


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("video_id", "../outside", "video id '../outside' is not a plain file name"),
        ("video", "../outside.mp4", "video path '../outside.mp4' contains '..'"),
        ("video", "PLACEHOLDER_ABSOLUTE", "is not a relative path"),
    ],
)
def test_extract_script_refuses_a_table_with_ids_leaving_the_root(tmp_path, column, value, message):
    world = _outside_world(tmp_path)
    if value == "PLACEHOLDER_ABSOLUTE":
        value = str(tmp_path / "root" / "outside.mp4")
    table = tmp_path / "videos.parquet"
    pq.write_table(pa.table({column: ["inside" if column == "video_id" else "inside.mp4", value]}), table)
    script = load_command("extract-embeddings")
    with pytest.raises(UnsafePathError, match=message.replace("(", r"\(")):
        script.main(
            [
                "--model",
                str(world["vision"]),
                "--videos",
                str(table),
                "--video-root",
                str(world["root"]),
                "--output",
                str(tmp_path / "out"),
                "--num-workers",
                "0",
            ]
        )
    assert not (tmp_path / "out").exists()  # refused before anything was read or written


def test_extract_script_cli_prints_the_error_without_a_traceback(tmp_path):
    world = _outside_world(tmp_path)
    table = tmp_path / "videos.parquet"
    pq.write_table(pa.table({"video_id": ["inside", "../outside"]}), table)
    result = subprocess.run(
        [
            *TFCOVR,
            "extract-embeddings",
            "--model",
            str(world["vision"]),
            "--videos",
            str(table),
            "--video-root",
            str(world["root"]),
            "--output",
            str(tmp_path / "out"),
            "--num-workers",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 1
    assert "error: UnsafePathError: video id '../outside' is not a plain file name" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_stage2_raw_video_training_refuses_ids_leaving_the_root(tmp_path):
    world = build_embedding_world(tmp_path / "world", num_labels=2, clips_per_label={"train": 1})
    root = tmp_path / "videos"
    root.mkdir()
    triplets = tmp_path / "triplets"
    _triplets(
        _mkdir(triplets / "data") / "train.parquet",
        [("train_0_0", "", ["train_1_0"]), ("../../etc/passwd", "", ["train_1_0"])],
    )
    arguments = stage2_arguments(world, tmp_path / "run", triplets=triplets, video_root=root, num_train_epochs=1)
    position = arguments.index("--embeddings")
    del arguments[position : position + 2]  # raw videos instead of embeddings
    with pytest.raises(UnsafePathError, match="video id '../../etc/passwd' is not a plain file name"):
        load_command("train-retrieval").main(arguments)
    assert not (tmp_path / "run").exists()


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


# ----------------------------------------------------------------------------------------------------------------------
# Official CSVs: the TF-CoVR builder
# ----------------------------------------------------------------------------------------------------------------------

TRAIN_HEADER = ["query_video", "target_video", "label1", "label2", "modification"]
TEST_HEADER = ["query_id", "query_video", "target_video", "target_videos_ids", "modification"]


def _modification(label: str, text: str) -> str:
    return repr({label: {"modification": text}})


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _valid_csvs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    _write_csv(
        folder / "train.csv",
        TRAIN_HEADER,
        [
            ["q1", "t1", "A", "B", _modification("B", "one more turn")],
            ["q2", "t2", "A", "C", _modification("C", "the same but on the beam")],
        ],
    )
    _write_csv(folder / "val.csv", TRAIN_HEADER, [["q3", "t3", "A", "B", _modification("B", "one more turn")]])
    _write_csv(
        folder / "test.csv",
        TEST_HEADER,
        [["1", "q4", "t4", "['t4', 't5']", "with 2 turns"], ["2", "q5", "t6", "['t6']", "reverse the direction"]],
    )
    return folder


def _rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def test_csv_missing_file_zero_bytes_and_missing_columns_are_file_errors(tmp_path):
    folder = _valid_csvs(tmp_path / "csv")
    files = {split: folder / f"{split}.csv" for split in ("train", "val", "test")}
    with pytest.raises(DataFormatError, match=r"cannot read '.*gone\.csv': No such file"):
        build_tfcovr_dataset(None, tmp_path / "out", csv_files={**files, "val": folder / "gone.csv"})
    (folder / "val.csv").write_bytes(b"")
    with pytest.raises(DataFormatError, match=r"val\.csv' is empty; expected a header line"):
        build_tfcovr_dataset(folder, tmp_path / "out", skip_invalid=True)
    _write_csv(
        folder / "val.csv", ["query_id", "query_video", "target_video", "target_videos_ids"], [["1", "a", "b", "['b']"]]
    )
    with pytest.raises(DataFormatError, match=r"val\.csv' line 1 \(header\): missing column\(s\) modification"):
        build_tfcovr_dataset(folder, tmp_path / "out", skip_invalid=True)  # no row can be read: skipping cannot help
    assert not (tmp_path / "out").exists()


def test_csv_malformed_literals_are_reported_per_row_and_never_run(tmp_path):
    folder = _valid_csvs(tmp_path / "csv")
    marker = tmp_path / "EXECUTED"
    _write_csv(
        folder / "test.csv",
        TEST_HEADER,
        [
            ["1", "q4", "t4", "['t4', 't5']", "with 2 turns"],
            ["2", "q5", "t6", "['t6'", "x"],  # unclosed
            ["3", "q5", "t6", "{'t6': 1}", "x"],  # a dict, not a list
            ["4", "q5", "t6", f"[__import__('pathlib').Path({str(marker)!r}).touch()]", "x"],  # code
            ["5", "q5", "t6", "[" * 300 + "]" * 300, "x"],  # too deeply nested for the parser
            ["6", "q5", "t6", "[None]", "x"],
        ],
    )
    report = build_tfcovr_dataset(folder, tmp_path / "out", skip_invalid=True)
    reasons = {entry["row"]: entry["reason"] for entry in report["skipped_rows"]}
    assert sorted(reasons) == [2, 3, 4, 5, 6]
    assert reasons[2].startswith("cannot parse 'target_videos_ids' as a Python literal")
    assert reasons[3] == "'target_videos_ids' must be a list literal, got a dict"
    assert reasons[4].startswith("cannot parse 'target_videos_ids' as a Python literal")
    assert reasons[5].startswith("cannot parse 'target_videos_ids' as a Python literal")
    assert reasons[6] == "'target_videos_ids' holds None, not a video id"
    assert not marker.exists()
    assert [row["query_id"] for row in _rows(tmp_path / "out" / "data" / "test.parquet")] == ["1"]


def test_csv_duplicate_rows_and_query_ids_are_invalid_rows(tmp_path):
    folder = _valid_csvs(tmp_path / "csv")
    train = [
        ["q1", "t1", "A", "B", _modification("B", "one more turn")],
        ["q2", "t2", "A", "C", _modification("C", "on the beam")],
        ["q1", "t1", "A", "B", _modification("B", "one more turn")],
    ]  # row 3 repeats row 1
    _write_csv(folder / "train.csv", TRAIN_HEADER, train)
    _write_csv(folder / "test.csv", TEST_HEADER, [["1", "q4", "t4", "['t4']", "x"], ["1", "q5", "t6", "['t6']", "y"]])
    with pytest.raises(DataFormatError) as caught:
        build_tfcovr_dataset(folder, tmp_path / "out")
    message = str(caught.value)
    assert "train.csv row 3 (line 4; the header is line 1): duplicate of row 1 (line 2)" in message
    assert "test.csv row 2 (line 3; the header is line 1): query_id '1' is already used by row 1" in message
    assert not (tmp_path / "out").exists()

    script = load_command("build-dataset")
    assert script.main(["--csv-dir", str(folder), "--output", str(tmp_path / "out"), "--skip-invalid"]) == 0
    train_rows = _rows(tmp_path / "out" / "data" / "train.parquet")
    assert [(row["query_video"], row["target_video"]) for row in train_rows] == [("q1", "t1"), ("q2", "t2")]
    assert train_rows[0]["target_videos"] == ["t1"]  # the duplicate does not count twice as a target either
    assert [row["query_video"] for row in _rows(tmp_path / "out" / "data" / "test.parquet")] == ["q4"]
    report = json.loads((tmp_path / "out" / "build_report.json").read_text())
    assert [(e["split"], e["row"]) for e in report["skipped_rows"]] == [("train", 3), ("test", 2)]


@pytest.mark.parametrize("column", ["query_video", "target_video", "target_videos_ids"])
@pytest.mark.parametrize("bad_id", ["../outside", "sub/clip", "sub\\clip", ".."])
def test_csv_video_ids_leaving_the_root_are_invalid_rows(tmp_path, column, bad_id):
    folder = _valid_csvs(tmp_path / "csv")
    row = {
        "query_id": "9",
        "query_video": "q9",
        "target_video": "t9",
        "target_videos_ids": "['t9']",
        "modification": "x",
    }
    row[column] = repr([bad_id]) if column == "target_videos_ids" else bad_id
    if column == "target_video":
        row["target_videos_ids"] = repr([bad_id])
    _write_csv(folder / "test.csv", TEST_HEADER, [["1", "q4", "t4", "['t4']", "x"], [row[c] for c in TEST_HEADER]])
    with pytest.raises(DataFormatError, match="row 2 .*is not a plain video file name"):
        build_tfcovr_dataset(folder, tmp_path / "strict")
    report = build_tfcovr_dataset(folder, tmp_path / "out", skip_invalid=True)
    assert report["skipped_rows"][0]["row"] == 2 and repr(bad_id) in report["skipped_rows"][0]["reason"]
    assert [r["query_video"] for r in _rows(tmp_path / "out" / "data" / "test.parquet")] == ["q4"]


def test_csv_target_video_missing_from_its_target_list_is_an_invalid_row(tmp_path):
    folder = _valid_csvs(tmp_path / "csv")
    _write_csv(folder / "test.csv", TEST_HEADER, [["1", "q4", "t4", "['t4']", "x"], ["2", "q5", "t9", "['t6']", "y"]])
    report = build_tfcovr_dataset(folder, tmp_path / "out", skip_invalid=True)
    assert report["skipped_rows"] == [
        {
            "file": "test.csv",
            "split": "test",
            "row": 2,
            "line": 3,
            "reason": "target_video 't9' is not among target_videos_ids",
        }
    ]


def test_csv_with_bytes_that_are_not_utf8_reports_the_row(tmp_path):
    folder = _valid_csvs(tmp_path / "csv")
    header = ",".join(TRAIN_HEADER).encode()
    good = b"q3,t3,A,B,\"{'B': {'modification': 'one more turn'}}\""
    latin1 = b"q4,t4,A,B,\"{'B': {'modification': 'caf\xe9 turn'}}\""  # Latin-1, not UTF-8
    (folder / "val.csv").write_bytes(b"\r\n".join([header, good, latin1, b"q5,t5\xff,A,B,x", b""]))
    with pytest.raises(DataFormatError) as caught:
        build_tfcovr_dataset(folder, tmp_path / "strict")
    message = str(caught.value)
    assert (
        "val.csv row 2 (line 3; the header is line 1): column 'modification' is not valid UTF-8 text (byte 0xe9"
        in message
    )
    assert (
        "val.csv row 3 (line 4; the header is line 1): column 'target_video' is not valid UTF-8 text (byte 0xff"
        in message
    )
    report = build_tfcovr_dataset(folder, tmp_path / "out", skip_invalid=True)
    assert [(e["row"], e["line"]) for e in report["skipped_rows"]] == [(2, 3), (3, 4)]
    assert [r["modification"] for r in _rows(tmp_path / "out" / "data" / "val.parquet")] == ["one more turn"]
    json.loads((tmp_path / "out" / "build_report.json").read_text(encoding="utf-8"))  # the report is valid UTF-8 JSON
    (folder / "val.csv").write_bytes(b"query_video,target_video,label1,label\xff2,modification\nq,t,A,B,x\n")
    with pytest.raises(DataFormatError, match=r"val\.csv' line 1 \(header\): field 4 is not valid UTF-8 text"):
        build_tfcovr_dataset(folder, tmp_path / "out2", skip_invalid=True)


def test_csv_empty_modification_is_invalid_and_a_10000_character_one_is_kept_whole(tmp_path):
    folder = _valid_csvs(tmp_path / "csv")
    long_text = ("add one more twist and " * 500)[:10_000]
    _write_csv(
        folder / "test.csv",
        TEST_HEADER,
        [["1", "q4", "t4", "['t4']", long_text], ["2", "q5", "t6", "['t6']", "  "], ["3", "q6", "t7", "['t7']", ""]],
    )
    report = build_tfcovr_dataset(folder, tmp_path / "out", skip_invalid=True)
    assert [(e["row"], e["reason"]) for e in report["skipped_rows"]] == [
        (2, "empty value in column 'modification'"),
        (3, "empty value in column 'modification'"),
    ]
    assert _rows(tmp_path / "out" / "data" / "test.parquet")[0]["modification"] == long_text.strip()


# ----------------------------------------------------------------------------------------------------------------------
# Modification texts: processor and pipeline
# ----------------------------------------------------------------------------------------------------------------------


def test_a_10000_character_modification_is_capped_to_30_words_and_77_tokens(pipe, good_videos):
    long_text = ("one more rotation " * 700)[:10_000]
    processor = pipe.processor
    assert processor.prepare_text(long_text) == [" ".join(["one", "more", "rotation"] * 10)]
    encoded = processor(text=[long_text, "one more rotation"])
    assert encoded["input_ids"].shape == (2, 32)  # 30 words + start and end tokens; padded to the longer text
    gallery = pipe.index([str(v) for v in good_videos], progress=False)
    capped = " ".join(long_text.split()[:30])
    results = pipe(video=str(good_videos[0]), text=long_text, gallery=gallery, top_k=2)
    assert results == pipe(video=str(good_videos[0]), text=capped, gallery=gallery, top_k=2)
    assert [r["video_id"] for r in results] != [] and "good_0" not in [r["video_id"] for r in results]


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_pipeline_refuses_an_empty_modification(pipe, good_videos, text):
    gallery = pipe.index([str(v) for v in good_videos], progress=False)
    with pytest.raises(DataFormatError, match=r"query 0 \(good_1\): the modification text is empty"):
        pipe(video=str(good_videos[1]), text=text, gallery=gallery)
    with pytest.raises(DataFormatError, match=r"query 1 \(good_2\): the modification text is empty"):
        pipe(video=[str(good_videos[1]), str(good_videos[2])], text=["one more rotation", text], gallery=gallery)


def test_bytes_and_non_text_where_text_is_expected_are_refused(pipe, good_videos):
    invalid_utf8 = b"one more \xff\xfe rotation"
    with pytest.raises(DataFormatError, match=r"modification text must be a str, got bytes b'one more \\xff"):
        mt.normalize_modification_text(invalid_utf8)
    with pytest.raises(DataFormatError, match=r"text 0 must be a str, got bytes b'one more rotation' \(decode"):
        pipe.processor(text=b"one more rotation")  # not iterated into 17 integers
    with pytest.raises(DataFormatError, match=r"text 1 must be a str, got int '3'"):
        pipe.processor(text=["one more rotation", 3])
    gallery = pipe.index([str(v) for v in good_videos], progress=False)
    with pytest.raises(DataFormatError, match=r"query 0 \(good_0\): the modification text must be a str, got bytes"):
        pipe(video=str(good_videos[0]), text=invalid_utf8, gallery=gallery)
    with pytest.raises(DataFormatError, match=r"query 1 \(good_1\): the modification text must be a str, got NoneType"):
        pipe(video=[str(good_videos[0]), str(good_videos[1])], text=["one more rotation", None], gallery=gallery)


# ----------------------------------------------------------------------------------------------------------------------
# Embeddings: NaN / inf, wrong dimension, broken files
# ----------------------------------------------------------------------------------------------------------------------


def _raw_embeddings_parquet(path: Path, ids: list[str], rows: list[list[float]], fixed: int | None = None) -> Path:
    """Writes an embeddings table with pyarrow directly, bypassing the project's validation."""
    if fixed:
        column = pa.FixedSizeListArray.from_arrays(pa.array(np.asarray(rows, np.float32).reshape(-1)), fixed)
    else:
        column = pa.array(rows, pa.list_(pa.float32()))
    pq.write_table(pa.table({"video_id": ids, "embedding": column}), path)
    return path


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_embeddings_are_refused_naming_the_video(pipe, tmp_path, bad_value):
    rng = np.random.default_rng(0)
    values = rng.normal(size=(3, 32)).astype(np.float32)
    values[1, 7] = bad_value
    ids = ["clip_a", "clip_b", "clip_c"]
    with pytest.raises(DataFormatError, match="NaN or inf in the embedding of video\\(s\\) 'clip_b'"):
        write_embeddings_parquet(tmp_path / "e.parquet", ids, values)
    assert not (tmp_path / "e.parquet").exists()
    path = _raw_embeddings_parquet(tmp_path / "raw.parquet", ids, values.tolist(), fixed=32)
    with pytest.raises(DataFormatError, match="NaN or inf in the embedding of video\\(s\\) 'clip_b'"):
        read_embeddings(path)
    with pytest.raises(
        DataFormatError, match=re.escape(f"{path}: the embedding of video 'clip_b' (row 1) contains NaN")
    ):
        pipe.index(str(path))
    with pytest.raises(DataFormatError, match="the embedding of video 'clip_b' \\(row 1\\) contains NaN or inf"):
        RetrievalIndex(ids, values)
    gallery = RetrievalIndex(ids[:1], values[:1])
    with pytest.raises(DataFormatError, match="query embedding 1 contains NaN or inf"):
        pipe(query_embeds=values[[0, 1]], gallery=gallery)


def test_embeddings_of_the_wrong_dimension_are_refused(pipe, tmp_path):
    rng = np.random.default_rng(0)
    ids = ["clip_a", "clip_b"]
    path = write_embeddings_parquet(tmp_path / "d16.parquet", ids, rng.normal(size=(2, 16)))
    with pytest.raises(DataFormatError, match="embedding of video 'clip_a' has dimension 16, expected 32"):
        read_embeddings(path, expected_dim=32)
    with pytest.raises(
        DataFormatError,
        match=re.escape(f"{path}: embeddings have dimension 16, but the model's queries have dimension 32"),
    ):
        pipe.index(str(path))
    ragged = _raw_embeddings_parquet(tmp_path / "ragged.parquet", ids, [[0.5] * 32, [0.5] * 31])
    with pytest.raises(
        DataFormatError, match="embedding of video 'clip_b' has dimension 31, but video 'clip_a' has 32"
    ):
        read_embeddings(ragged)
    with pytest.raises(DataFormatError, match=re.escape(f"{ragged}: column 'embedding' holds embeddings of different")):
        pipe.index(str(ragged))
    shards = tmp_path / "shards"
    shards.mkdir()
    write_embeddings_parquet(shards / "a.parquet", ["clip_a"], rng.normal(size=(1, 32)))
    write_embeddings_parquet(shards / "b.parquet", ["clip_b"], rng.normal(size=(1, 24)))
    with pytest.raises(DataFormatError, match="clip_b"):
        read_embeddings(shards)
    with pytest.raises(
        DataFormatError, match="query embeddings have dimension 31 but the gallery's embeddings have dimension 32"
    ):
        pipe(query_embeds=np.ones(31), gallery=RetrievalIndex(ids, rng.normal(size=(2, 32))))
    with pytest.raises(DataFormatError, match="embedding of video 'clip_a' has dimension 16, expected 768"):
        validate_embeddings(ids, rng.normal(size=(2, 16)), expected_dim=768)


def test_missing_empty_and_corrupt_embedding_files(pipe, tmp_path):
    with pytest.raises(DataFormatError, match="embeddings source .*gone.parquet' does not exist"):
        read_embeddings(tmp_path / "gone.parquet")
    (tmp_path / "empty.parquet").write_bytes(b"")
    with pytest.raises(DataFormatError, match="cannot read parquet file .*empty.parquet"):
        read_embeddings(tmp_path / "empty.parquet")
    valid = write_embeddings_parquet(tmp_path / "valid.parquet", ["a", "b"], np.eye(2, 32))
    (tmp_path / "truncated.parquet").write_bytes(valid.read_bytes()[:-30])
    with pytest.raises(DataFormatError, match="cannot read parquet file .*truncated.parquet"):
        read_embeddings(tmp_path / "truncated.parquet")
    # a saved gallery whose files were damaged
    RetrievalIndex(["a", "b"], np.eye(2, 32, dtype=np.float32)).save(tmp_path / "gallery")
    matrix = (tmp_path / "gallery" / "embeddings.npy").read_bytes()
    for damaged in (b"", matrix[:-20], b"not an npy file" * 10):
        (tmp_path / "gallery" / "embeddings.npy").write_bytes(damaged)
        with pytest.raises(DataFormatError, match="cannot read the gallery embeddings .*embeddings.npy"):
            RetrievalIndex.load(tmp_path / "gallery")
    (tmp_path / "gallery" / "retrieval_index.json").write_text('{"format_version": 1, "num_vid')
    with pytest.raises(DataFormatError, match="retrieval_index.json is not a valid retrieval_index.json"):
        RetrievalIndex.load(tmp_path / "gallery")


# ----------------------------------------------------------------------------------------------------------------------
# Evaluation: targets absent from the gallery, unsafe ids, wrong dimension
# ----------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    model, processor = _tiny_model_and_processor()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def _triplets(path: Path, rows: list[tuple[str, str, list[str]]]) -> Path:
    pq.write_table(
        pa.Table.from_pylist(
            [
                {
                    "query_id": str(i),
                    "query_video": q,
                    "query_label": "",
                    "modification": "one more rotation",
                    "target_video": targets[0],
                    "target_videos": targets,
                    "target_label": "",
                    "source": "synthetic",
                }
                for i, (q, _, targets) in enumerate(rows)
            ]
        ),
        path,
    )
    return path


def test_evaluation_reports_targets_absent_from_the_gallery(saved_model, tmp_path):
    triplets = _triplets(
        tmp_path / "test.parquet",
        [("q0", "", ["t0", "t1"]), ("q1", "", ["t2"]), ("q2", "", ["t3"]), ("q_missing", "", ["t0"])],
    )
    ids = ["q0", "q1", "q2", "t0", "t1", "t3"]  # t2 has no embedding, nor has q_missing
    embeddings = write_embeddings_parquet(tmp_path / "e.parquet", ids, np.random.default_rng(0).normal(size=(6, 32)))
    script = load_command("evaluate")
    report = script.main(
        [
            "--model",
            str(saved_model),
            "--triplets",
            str(triplets),
            "--embeddings",
            str(embeddings),
            "--output-dir",
            str(tmp_path / "eval"),
            "--k",
            "1,3",
        ]
    )
    assert report["missing_gallery_videos"] == ["t2"]
    assert report["queries_without_target_in_gallery"] == 1  # q1: its only target is missing
    assert report["num_queries"] == 3 and report["skipped_queries"] == 1  # q_missing has no embedding
    assert report["gallery_size"] == 3
    written = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert written["missing_gallery_videos"] == ["t2"]
    predictions = [json.loads(line) for line in (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()]
    assert [p["query_video"] for p in predictions] == ["q0", "q1", "q2"]
    assert all(not r["correct"] for r in predictions[1]["results"])  # nothing in the gallery can be right for q1
    for method in report["results"].values():
        assert 0.0 <= method["map@3"] <= 100 * 2 / 3 + 1e-9  # q1 scores 0 whatever the ranking


def test_evaluation_refuses_unsafe_ids_and_wrong_dimensions(saved_model, tmp_path):
    world = _outside_world(tmp_path)
    triplets = _triplets(tmp_path / "test.parquet", [("inside", "", ["inside"]), ("../outside", "", ["inside"])])
    script = load_command("evaluate")
    with pytest.raises(UnsafePathError, match="video id '../outside' is not a plain file name"):
        script.main(
            [
                "--model",
                str(saved_model),
                "--triplets",
                str(triplets),
                "--video-root",
                str(world["root"]),
                "--output-dir",
                str(tmp_path / "eval"),
            ]
        )
    assert not (tmp_path / "eval").exists()
    wrong = write_embeddings_parquet(tmp_path / "d8.parquet", ["inside"], np.ones((1, 8)))
    with pytest.raises(DataFormatError, match="embedding of video 'inside' has dimension 8, expected 32"):
        script.main(
            [
                "--model",
                str(saved_model),
                "--triplets",
                str(triplets),
                "--embeddings",
                str(wrong),
                "--output-dir",
                str(tmp_path / "eval"),
            ]
        )
