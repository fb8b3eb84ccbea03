"""The three video decoders (decord, torchcodec, PyAV) on rendered videos, and `datasets` `Video` columns (torchcodec
`VideoDecoder`s) in the processor, `pipe.index`, extraction and stage-1 training.

Tolerance: none. On these H.264 files the three decoders return identical pixels (maximum absolute difference 0,
measured on every file below): each decodes the same bitstream bit-exactly and converts yuv420p to RGB with FFmpeg's
swscale defaults, although they ship different FFmpeg builds (decord its own, PyAV its own, torchcodec Debian's).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import modeling_tfcovr as mt
from modeling_tfcovr.commands import load_command
from modeling_tfcovr.errors import VideoDecodeError
from modeling_tfcovr.video_io import (
    VIDEO_BACKENDS,
    DatasetVideo,
    count_frames,
    dataset_videos,
    read_frames,
    video_name,
    write_mp4,
)

from .conftest import brightness_frames, randomize_aim_parameters
from .test_reliability_inputs import BAD_VIDEO_REASONS, _make_bad_videos, _write_with_pyav

MAX_PIXEL_DIFFERENCE = 0  # measured: see the module docstring

# (frames, height, width): an odd frame count with a width that is not a multiple of 32 (decord cannot copy such
# rows and reads them through PyAV), a one-segment-per-frame count, and a larger frame.
SIZES = [(9, 40, 70), (13, 48, 64), (16, 64, 96), (7, 36, 50)]


def _textured_frames(num_frames: int, height: int, width: int, seed: int) -> np.ndarray:
    """Gradients that move with the frame index plus noise: every frame and every pixel differs."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    frames = np.stack(
        [
            np.stack([(x * 4 + t * 10) % 256, (y * 5 + t * 7) % 256, ((x + y) * 3 + t) % 256], -1)
            for t in range(num_frames)
        ]
    )
    noise = rng.integers(-20, 21, frames.shape)
    return np.clip(frames + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, tuple[str, np.ndarray]]:
    folder = tmp_path_factory.mktemp("rendered")
    videos = {}
    for seed, (num_frames, height, width) in enumerate(SIZES):
        frames = _textured_frames(num_frames, height, width, seed)
        path = folder / f"clip_{num_frames}x{height}x{width}.mp4"
        write_mp4(path, frames)
        videos[path.stem] = (str(path), frames)
    # Matroska has no frame count in its header: decord estimates duration x frame rate, PyAV counts the packets,
    # torchcodec scans the file; all three give the 11 frames written.
    frames = _textured_frames(11, 32, 48, 9)
    _write_with_pyav(folder / "clip_11x32x48.mkv", frames, "matroska", "libx264", "yuv420p", "rgb24")
    videos["clip_11x32x48"] = (str(folder / "clip_11x32x48.mkv"), frames)
    return videos


@pytest.fixture(scope="module")
def ramp(tmp_path_factory) -> str:
    """9 frames, 70 px wide, frame i of uniform grey level 8 * i: a decoded frame tells its index."""
    path = tmp_path_factory.mktemp("ramp") / "ramp.mp4"
    write_mp4(path, brightness_frames(9, 32, 70, step=24))
    return str(path)


@pytest.mark.parametrize("backend", VIDEO_BACKENDS)
def test_every_backend_counts_the_frames_written(rendered, backend):
    for path, frames in rendered.values():
        assert count_frames(path, backend) == len(frames), (path, backend)


@pytest.mark.parametrize("backend", ["torchcodec", "pyav"])
def test_backends_decode_the_same_pixels_as_decord(rendered, backend):
    for path, frames in rendered.values():
        reference = read_frames(path, None, "decord")
        decoded = read_frames(path, None, backend)
        assert decoded.dtype == np.uint8 and decoded.shape == frames.shape == reference.shape
        difference = np.abs(decoded.astype(np.int16) - reference.astype(np.int16)).max()
        assert difference <= MAX_PIXEL_DIFFERENCE, (path, backend, difference)
        # and they are the frames written, in order: H.264 is lossy, but each decoded frame is nearest its own source
        distances = np.abs(decoded[:, None].astype(np.int16) - frames[None].astype(np.int16)).mean(axis=(2, 3, 4))
        assert distances.argmin(axis=1).tolist() == list(range(len(frames)))


@pytest.mark.parametrize("backend", VIDEO_BACKENDS)
def test_every_backend_returns_the_requested_indices_in_order_with_repeats(ramp, backend):
    indices = [5, 2, 2, 8, 0, 7]
    levels = read_frames(ramp, indices, backend).reshape(len(indices), -1).mean(axis=1)
    np.testing.assert_allclose(levels, [24 * i for i in indices], atol=2)
    # a function of the frame count is called with the count every backend reports
    seen = []
    frames = read_frames(ramp, lambda total: seen.append(total) or [total - 1, 0], backend)
    assert seen == [9] and frames.shape == (2, 32, 70, 3)
    np.testing.assert_allclose(frames.reshape(2, -1).mean(axis=1), [192, 0], atol=2)


@pytest.mark.parametrize("backend", VIDEO_BACKENDS)
def test_index_out_of_range_names_the_file_in_every_backend(ramp, backend):
    with pytest.raises(VideoDecodeError, match=r"ramp\.mp4': frame index 9 out of range for 9 frames"):
        read_frames(ramp, [0, 9], backend)


# decord reads every packet when it opens a file, so it finds a cut-off end at once; the others when they decode.
TRUNCATED_WHILE_DECODING = "decoding failed, the file may be truncated"


@pytest.mark.parametrize("backend", VIDEO_BACKENDS)
def test_bad_files_give_a_video_decode_error_naming_the_file_in_every_backend(tmp_path, backend):
    bad = _make_bad_videos(tmp_path / "bad")
    for kind, path in bad.items():
        with pytest.raises(VideoDecodeError) as caught:
            read_frames(path, lambda total: [0, total - 1], backend)
        reason = BAD_VIDEO_REASONS[kind]
        if kind == "truncated_faststart" and backend != "decord":
            reason = TRUNCATED_WHILE_DECODING
        assert caught.value.path == str(path) and str(path) in str(caught.value), (kind, backend)
        assert reason in caught.value.reason, (kind, backend, caught.value.reason)


def test_unknown_backend_is_refused(ramp):
    with pytest.raises(ValueError, match="unknown video backend 'opencv'; choose one of decord, torchcodec, pyav"):
        read_frames(ramp, [0], "opencv")
    with pytest.raises(ValueError, match="unknown video backend 'opencv'"):
        mt.TFCoVRVideoProcessor(video_backend="opencv")


SMALL = dict(num_frames=4, size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})


def test_processor_backend_is_saved_and_gives_the_same_pixels_as_a_torchcodec_decoder(rendered, tmp_path):
    from torchcodec.decoders import VideoDecoder

    processor = mt.TFCoVRVideoProcessor(**SMALL, video_backend="pyav")
    processor.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "video_preprocessor_config.json").read_text())["video_backend"] == "pyav"
    assert mt.TFCoVRVideoProcessor.from_pretrained(tmp_path).video_backend == "pyav"
    assert mt.TFCoVRVideoProcessor(**SMALL).video_backend == "decord"

    paths = [path for path, _ in rendered.values()]
    pixels = {
        backend: mt.TFCoVRVideoProcessor(**SMALL, video_backend=backend)(paths)["pixel_values_videos"]
        for backend in VIDEO_BACKENDS
    }
    assert pixels["decord"].shape == (len(paths), 4, 3, 32, 32)
    for backend in ("torchcodec", "pyav"):
        assert torch.equal(pixels[backend], pixels["decord"]), backend
    # decoders as datasets opens them (NCHW) and as transformers users open them (NHWC), alone and in a list
    decoders = [VideoDecoder(path) for path in paths]
    assert torch.equal(processor(decoders)["pixel_values_videos"], pixels["decord"])
    one = processor(VideoDecoder(paths[0], dimension_order="NHWC"))["pixel_values_videos"]
    assert torch.equal(one, pixels["decord"][:1])
    # the option also works per call
    assert torch.equal(processor(paths[:2], video_backend="torchcodec")["pixel_values_videos"], pixels["decord"][:2])


# ----------------------------------------------------------------------------------------------------------------------
# datasets Video columns
# ----------------------------------------------------------------------------------------------------------------------


def _video_dataset(paths: list[str], **columns):
    import datasets

    return datasets.Dataset.from_dict({"video": paths, **columns}).cast_column("video", datasets.Video())


def test_a_video_column_holds_torchcodec_decoders_that_read_like_the_files(rendered):
    paths = [path for path, _ in rendered.values()]
    dataset = _video_dataset(paths)
    value = dataset[1]["video"]
    assert type(value).__module__.startswith("torchcodec.") and video_name(value) == paths[1]
    np.testing.assert_array_equal(read_frames(value, [0, 3, 3]), read_frames(paths[1], [0, 3, 3]))
    lazy = dataset_videos(dataset)
    assert [video.path for video in lazy] == paths and all(isinstance(v, DatasetVideo) for v in lazy)
    np.testing.assert_array_equal(read_frames(lazy[0]), read_frames(paths[0], None, "pyav"))


@pytest.fixture
def saved_pipeline_model(tmp_path, tiny_config, tiny_processor):
    torch.manual_seed(0)
    model = mt.TFCoVRModel(tiny_config).eval()
    randomize_aim_parameters(model)
    mt.save_for_pipeline(model, tiny_processor, tmp_path / "model")
    return tmp_path / "model"


def test_pipe_index_of_a_video_column_equals_the_gallery_of_the_paths(saved_pipeline_model, rendered, tmp_path):
    from transformers import pipeline

    pipe = pipeline("composed-video-retrieval", model=str(saved_pipeline_model), trust_remote_code=True)
    paths = [path for path, _ in rendered.values()]
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video")
    by_paths = pipe.index(paths, progress=False)
    assert len(by_paths) == len(paths)

    by_column = pipe.index(_video_dataset(paths + [str(broken)]), progress=False)
    assert (
        list(by_column.video_ids)
        == list(by_paths.video_ids)
        == [path.rsplit("/", 1)[1].split(".")[0] for path in paths]
    )
    assert list(by_column.paths) == paths
    np.testing.assert_allclose(by_column.embeddings, by_paths.embeddings, rtol=0, atol=1e-6)
    assert [(f["video_id"], f["video"]) for f in pipe.index_failures] == [("broken", str(broken))]
    assert "not a readable video" in pipe.index_failures[0]["error"]

    # ids from a video_id column; decoders taken out of the dataset one by one; every backend
    dataset = _video_dataset(paths, video_id=[f"clip-{i}" for i in range(len(paths))])
    assert list(pipe.index(dataset, progress=False).video_ids) == [f"clip-{i}" for i in range(len(paths))]
    decoders = [dataset[i]["video"] for i in range(len(dataset))]
    np.testing.assert_allclose(pipe.index(decoders, progress=False).embeddings, by_paths.embeddings, rtol=0, atol=1e-6)
    for backend in ("torchcodec", "pyav"):
        pipe.processor.video_processor.video_backend = backend
        np.testing.assert_allclose(pipe.index(paths, progress=False).embeddings, by_paths.embeddings, rtol=0, atol=1e-6)

    # a query given as a decoder never retrieves its own video
    answers = pipe(video=decoders[0], text="one more rotation", gallery=by_column, top_k=len(paths))
    assert paths[0] not in [a["path"] for a in answers] and len(answers) == len(paths) - 1


def test_extraction_of_a_video_column_equals_extraction_of_the_paths(rendered, tmp_path):
    from modeling_tfcovr.data.embeddings import read_embeddings
    from modeling_tfcovr.training.extract import extract_embeddings

    encoder = mt.TFCoVRVisionModel(
        mt.TFCoVRVisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=16,
            patch_size=8,
            num_frames=4,
        )
    )
    encoder.save_pretrained(tmp_path / "encoder")
    processor = mt.TFCoVRVideoProcessor(num_frames=4, size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    names, paths = list(rendered), [path for path, _ in rendered.values()]
    extract_embeddings(encoder, processor, list(zip(names, paths)), tmp_path / "paths", progress=False, num_workers=0)
    ids, expected = read_embeddings(tmp_path / "paths")
    assert ids == names

    # the dataset itself, decoded in a DataLoader worker (its values travel there undecoded)
    dataset = _video_dataset(paths, video_id=names)
    extract_embeddings(encoder, processor, dataset, tmp_path / "column", progress=False, num_workers=1)
    column_ids, embeds = read_embeddings(tmp_path / "column")
    assert column_ids == names
    np.testing.assert_allclose(embeds, expected, rtol=0, atol=1e-6)

    # the command: --video-backend, and a datasets folder (save_to_disk) as --videos
    dataset.save_to_disk(tmp_path / "videos_dataset")
    script = load_command("extract-embeddings")
    for backend, source in [("pyav", str(tmp_path / "videos_dataset")), ("torchcodec", "LIST")]:
        if source == "LIST":
            (tmp_path / "list.txt").write_text("\n".join(paths))
            source = str(tmp_path / "list.txt")
        out = tmp_path / f"cmd_{backend}"
        result = script.main(
            [
                "--model",
                str(tmp_path / "encoder"),
                "--videos",
                source,
                "--output",
                str(out),
                "--num-workers",
                "0",
                "--device",
                "cpu",
                "--video-backend",
                backend,
            ]
        )
        assert result["videos_embedded"] == len(names) and result["failures_total"] == 0
        command_ids, command_embeds = read_embeddings(out)
        order = [command_ids.index(name) for name in names]
        np.testing.assert_allclose(command_embeds[order], expected, rtol=0, atol=1e-6)


def test_stage1_trains_the_same_from_a_video_column_as_from_paths(tmp_path):
    import datasets

    folder = tmp_path / "clips"
    folder.mkdir()
    names, labels = [], []
    for index in range(6):
        write_mp4(folder / f"c{index}.mp4", _textured_frames(8, 16, 16, 100 + index))
        names.append(f"c{index}.mp4")
        labels.append(f"label_{index % 2}")
    (tmp_path / "clips.csv").write_text("video,label\n" + "".join(f"{n},{lab}\n" for n, lab in zip(names, labels)))
    datasets.Dataset.from_dict({"video": [str(folder / n) for n in names], "label": labels}).cast_column(
        "video", datasets.Video()
    ).save_to_disk(tmp_path / "clips_dataset")

    from modeling_tfcovr.training.stage1 import read_clip_table

    rows = read_clip_table(tmp_path / "clips_dataset")
    assert [r["label"] for r in rows] == labels and all(isinstance(r["video"], DatasetVideo) for r in rows)

    common = [
        "--config_overrides",
        "num_frames=4,image_size=16,patch_size=8,hidden_size=16,intermediate_size=32,num_hidden_layers=1,num_attention_heads=2",
        "--train_backbone",
        "--num_train_epochs",
        "1",
        "--per_device_train_batch_size",
        "3",
        "--learning_rate",
        "1e-3",
        "--use_cpu",
        "--seed",
        "0",
        "--disable_tqdm",
        "True",
        "--save_strategy",
        "no",
        "--eval_strategy",
        "no",
        "--load_best_model_at_end",
        "False",
        "--report_to",
        "none",
    ]
    script = load_command("train-classifier")
    script.main(
        [
            "--train_file",
            str(tmp_path / "clips.csv"),
            "--video_root",
            str(folder),
            "--output_dir",
            str(tmp_path / "from_paths"),
            *common,
        ]
    )
    script.main(
        [
            "--train_file",
            str(tmp_path / "clips_dataset"),
            "--video-backend",
            "pyav",
            "--output_dir",
            str(tmp_path / "from_column"),
            *common,
        ]
    )
    assert mt.TFCoVRVideoProcessor.from_pretrained(tmp_path / "from_column").video_backend == "pyav"
    first = mt.TFCoVRForVideoClassification.from_pretrained(tmp_path / "from_paths").state_dict()
    second = mt.TFCoVRForVideoClassification.from_pretrained(tmp_path / "from_column").state_dict()
    assert first.keys() == second.keys()
    changed = [k for k in first if not torch.equal(first[k], second[k])]
    assert not changed, changed[:5]


@pytest.fixture(scope="module")
def gym(tmp_path_factory):
    from modeling_tfcovr.data.synthetic import SyntheticConfig, build_synthetic_benchmark

    folder = tmp_path_factory.mktemp("gym")
    config = SyntheticConfig(
        size=32,
        num_frames=8,
        apparatus=("floor", "beam"),
        rotations=(1.0, 2.0),
        train_clips_per_label=1,
        val_clips_per_label=1,
        test_clips_per_label=2,
    )
    build_synthetic_benchmark(folder, seed=1, config=config)
    return folder


def test_evaluate_command_gives_the_same_metrics_with_every_backend(gym, tmp_path, tiny_config, tiny_processor):
    torch.manual_seed(0)
    model = mt.TFCoVRModel(tiny_config)
    randomize_aim_parameters(model)
    model.save_pretrained(tmp_path / "model")
    tiny_processor.save_pretrained(tmp_path / "model")
    results = {}
    for backend in VIDEO_BACKENDS:
        out = tmp_path / backend
        load_command("evaluate").main(
            [
                "--model",
                str(tmp_path / "model"),
                "--triplets",
                str(gym),
                "--split",
                "test",
                "--video-root",
                str(gym / "videos"),
                "--output-dir",
                str(out),
                "--video-backend",
                backend,
            ]
        )
        results[backend] = (
            json.loads((out / "metrics.json").read_text())["results"],
            (out / "predictions.jsonl").read_text(),
        )
    assert results["decord"][0]["tfcovr"]["map@50"] > 0
    assert results["torchcodec"] == results["decord"] and results["pyav"] == results["decord"]
