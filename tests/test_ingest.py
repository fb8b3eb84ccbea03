"""The one ingest path: the video processor samples every video with its own `sample_frames`, and `embed_videos`
gives `pipe.index` and the extraction the same embeddings and the same failure records, in batches as one at a time."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import modeling_tfcovr as mt
from modeling_tfcovr.data.embeddings import read_embeddings
from modeling_tfcovr.pipeline_tfcovr import TASK, ComposedVideoRetrievalPipeline
from modeling_tfcovr.training.extract import extract_embeddings, read_failures
from modeling_tfcovr.video_embedding import embed_videos
from modeling_tfcovr.video_io import read_frames, write_mp4

from .conftest import TINY_TEXT_WORDS, TINY_VISION, brightness_frames, randomize_aim_parameters, tiny_text_config
from .test_official_extraction import official_indices

SMALL = dict(num_frames=4, size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})


class EverySecondFromTheEnd(mt.TFCoVRVideoProcessor):
    """A processor whose only change is its sampling: every second frame, backwards from the last."""

    def sample_frames(self, metadata, num_frames=None, fps=None, **kwargs):
        return np.arange(metadata.total_num_frames - 1, -1, -2)[: num_frames or self.num_frames]


def _middle_of_segments(total: int, count: int) -> list[int]:
    """The frame under the middle of each of `count` equal segments, written out independently."""
    return [int((i + 0.5) * total / count) for i in range(count)]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list:
    """Three videos of different lengths, each frame of its own grey level, so that frames reveal their index."""
    folder = tmp_path_factory.mktemp("ingest_clips")
    paths = []
    for number, length in enumerate([30, 17, 9]):
        frames = brightness_frames(length, step=7)
        frames[:, : 6 * (number + 1)] = 250 - 50 * number  # a band per video: different embeddings
        write_mp4(folder / f"clip_{number}.mp4", frames)
        paths.append(folder / f"clip_{number}.mp4")
    return paths


@pytest.fixture(scope="module")
def corrupt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ingest_corrupt") / "corrupt.mp4"
    path.write_text("not a video\n")
    return path


@pytest.fixture(scope="module")
def model_and_processor():
    tokenizer = mt.build_word_level_tokenizer(TINY_TEXT_WORDS)
    config = mt.TFCoVRConfig(
        vision_config=TINY_VISION,
        text_config=tiny_text_config(len(tokenizer)),
        embed_dim=32,
        combiner_projection_dim=48,
        combiner_hidden_dim=64,
    )
    torch.manual_seed(0)
    model = mt.TFCoVRModel(config).eval()
    randomize_aim_parameters(model)
    return model, mt.TFCoVRProcessor(mt.TFCoVRVideoProcessor(**SMALL), tokenizer)


def test_the_processor_samples_files_and_arrays_with_its_own_sample_frames(clips):
    path, total = clips[0], 30
    plain = mt.TFCoVRVideoProcessor(**SMALL)
    custom = EverySecondFromTheEnd(**SMALL)
    expected = {plain: _middle_of_segments(total, 4), custom: [29, 27, 25, 23]}
    frames = read_frames(path)  # every frame, decoded once
    for processor, indices in expected.items():
        # a file: only the sampled frames are decoded; the pixels are those of the frames at the expected indices
        output = processor(str(path), return_metadata=True)
        assert output["video_metadata"][0].frames_indices == indices
        at_indices = plain(read_frames(path, indices), do_sample_frames=False)["pixel_values_videos"]
        assert torch.equal(output["pixel_values_videos"], at_indices)
        # frames given as an array are sampled by the same method
        assert torch.equal(
            processor(frames)["pixel_values_videos"],
            plain(frames[indices], do_sample_frames=False)["pixel_values_videos"],
        )
    # a setting of the processor changes the sampling too: the official extraction's indices
    official = mt.TFCoVRVideoProcessor(**{**SMALL, "num_frames": 12}, sampling_mode="official")
    output = official(str(clips[2]), return_metadata=True)
    assert output["video_metadata"][0].frames_indices == official_indices(9)  # 0..8 then 0..2
    assert torch.equal(
        output["pixel_values_videos"],
        plain(read_frames(clips[2], official_indices(9)), do_sample_frames=False)["pixel_values_videos"],
    )
    with pytest.raises(ValueError, match="not fps"):
        plain(str(path), fps=2)


def test_embed_videos_pipe_index_and_extraction_sample_with_the_processor(clips, model_and_processor):
    model, processor = model_and_processor
    custom = EverySecondFromTheEnd(**SMALL)
    ids = [path.stem for path in clips]
    _, embeds, _ = embed_videos(model.vision_model, custom, ids, clips)
    # the frames the custom sampling picks, given as arrays of 4 frames (the default sampling keeps all 4 of them)
    picked = [read_frames(path, np.arange(total - 1, -1, -2)[:4]) for path, total in zip(clips, [30, 17, 9])]
    _, expected, _ = embed_videos(model.vision_model, processor.video_processor, ids, picked)
    assert np.array_equal(embeds, expected)
    pipe = ComposedVideoRetrievalPipeline(
        model=model, processor=mt.TFCoVRProcessor(custom, processor.tokenizer), task=TASK
    )
    assert np.array_equal(pipe.index(clips, progress=False).embeddings, mt.RetrievalIndex(ids, expected).embeddings)


@pytest.mark.parametrize("num_workers", [0, 1])
def test_pipe_index_and_extraction_give_the_same_embeddings_and_failure_records(
    clips, corrupt, model_and_processor, tmp_path, num_workers
):
    model, processor = model_and_processor
    videos = [clips[0], corrupt, clips[1], clips[2]]
    ids = [path.stem for path in videos]
    pipe = ComposedVideoRetrievalPipeline(model=model, processor=processor, task=TASK)
    gallery = pipe.index([str(path) for path in videos], batch_size=2, progress=False, num_workers=num_workers)

    extract_embeddings(
        model.vision_model,
        processor.video_processor,
        list(zip(ids, videos)),
        tmp_path / "out",
        batch_size=2,
        num_workers=1 - num_workers,
        progress=False,
    )
    extracted_ids, extracted = read_embeddings(tmp_path / "out")
    assert list(gallery.video_ids) == extracted_ids == ["clip_0", "clip_1", "clip_2"]
    assert np.array_equal(gallery.embeddings, mt.RetrievalIndex(extracted_ids, extracted).embeddings)

    records = read_failures(tmp_path / "out")
    assert pipe.index_failures == records
    (record,) = records
    assert {key: value for key, value in record.items() if key != "error"} == {
        "index": 1,
        "video_id": "corrupt",
        "video": str(corrupt),
        "path": str(corrupt),
    }
    assert record["error"].startswith(f"VideoDecodeError: cannot decode video {str(corrupt)!r}: not a readable video")


def test_batched_embeddings_equal_one_video_at_a_time(clips, corrupt, model_and_processor):
    model, processor = model_and_processor
    videos = [clips[0], clips[1], corrupt, clips[2], brightness_frames(11, step=20)]
    ids = [f"video_{i}" for i in range(len(videos))]
    batched_ids, batched, batched_failures = embed_videos(
        model.vision_model, processor.video_processor, ids, videos, batch_size=4
    )
    assert batched_ids == ["video_0", "video_1", "video_3", "video_4"]
    alone = []
    for video_id, video in zip(ids, videos):
        kept, embeds, failures = embed_videos(
            model.vision_model, processor.video_processor, [video_id], [video], batch_size=1
        )
        if kept:
            alone.append(embeds[0])
        else:
            assert [f["error"] for f in failures] == [f["error"] for f in batched_failures]
    np.testing.assert_allclose(batched, np.stack(alone), rtol=1e-5, atol=1e-6)
    assert [(f["index"], f["video_id"]) for f in batched_failures] == [(2, "video_2")]
    # frames given as an array have no file: the record names them by position
    _, _, failures = embed_videos(model.vision_model, processor.video_processor, ["empty"], [np.zeros((0, 8, 8, 3))])
    assert failures[0]["video"] == "<array 0>" and failures[0]["path"] is None
    assert failures[0]["error"] == "VideoDecodeError: cannot decode video '<array>': video has no frames"
