"""Common mistakes with the Python API end in an error that names what was passed and what is expected, not in an
`AttributeError` from deep inside: the videos given as the gallery, one text for several videos, a video and text
count that differ, and the other usual wrong inputs of the pipeline, the index and the processor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import modeling_tfcovr as mt
from modeling_tfcovr.errors import DataFormatError
from modeling_tfcovr.pipeline_tfcovr import TASK, ComposedVideoRetrievalPipeline
from modeling_tfcovr.video_io import write_mp4

from .conftest import TINY_TEXT_WORDS, TINY_VISION, tiny_text_config

TEXT = TINY_TEXT_WORDS[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny pipeline, three video files and their gallery."""
    folder = tmp_path_factory.mktemp("videos")
    rng = np.random.default_rng(0)
    paths = []
    for index in range(3):
        paths.append(str(folder / f"clip{index}.mp4"))
        write_mp4(paths[-1], rng.integers(0, 255, size=(8, 32, 32, 3), dtype=np.uint8))
    tokenizer = mt.build_word_level_tokenizer(TINY_TEXT_WORDS)
    config = mt.TFCoVRConfig(
        vision_config=TINY_VISION,
        text_config=tiny_text_config(len(tokenizer)),
        embed_dim=32,
        combiner_projection_dim=48,
        combiner_hidden_dim=64,
    )
    torch.manual_seed(0)
    video_processor = mt.TFCoVRVideoProcessor(
        num_frames=4, size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    processor = mt.TFCoVRProcessor(video_processor, tokenizer)
    pipe = ComposedVideoRetrievalPipeline(model=mt.TFCoVRModel(config).eval(), processor=processor, task=TASK)
    return {"pipe": pipe, "paths": paths, "gallery": pipe.index(paths, progress=False), "processor": processor}


@pytest.mark.parametrize("wrong", ["paths", "folder"])
def test_videos_passed_as_the_gallery_say_to_index_them_first(world, wrong):
    gallery = world["paths"] if wrong == "paths" else str(world["paths"][0]).rsplit("/", 1)[0]
    with pytest.raises(TypeError) as error:
        world["pipe"](world["paths"][0], TEXT, gallery=gallery)
    message = str(error.value)
    assert message.startswith(f"gallery must be a RetrievalIndex, got a {type(gallery).__name__}")
    assert "pipe.index(videos)" in message and "RetrievalIndex.load(folder)" in message


def test_another_object_as_the_gallery_is_named(world):
    with pytest.raises(TypeError, match=r"gallery must be a RetrievalIndex .* got a dict"):
        world["pipe"](world["paths"][0], TEXT, gallery={"clip0": [0.0] * 32})
    with pytest.raises(ValueError, match=r"pass gallery=pipe.index\(videos\)"):
        world["pipe"](world["paths"][0], TEXT)


def test_several_videos_with_one_text_ask_for_one_text_per_video(world):
    with pytest.raises(TypeError, match="video is a list of 3 videos but text is one string"):
        world["pipe"](world["paths"], TEXT, gallery=world["gallery"])
    answers = world["pipe"](world["paths"], [TEXT] * 3, gallery=world["gallery"], top_k=2)  # the right form
    assert len(answers) == 3 and all(len(answer) == 2 for answer in answers)


def test_processor_refuses_videos_and_texts_of_different_counts(world):
    with pytest.raises(ValueError, match=r"got 1 video\(s\) but 2 text\(s\)"):
        world["processor"](videos=world["paths"][0], text=[TEXT, TEXT])
    batch = world["processor"](videos=world["paths"][:2], text=[TEXT, TEXT])
    assert batch["pixel_values_videos"].shape[0] == batch["input_ids"].shape[0] == 2


def test_index_and_pipeline_name_a_wrong_query_or_top_k(world):
    with pytest.raises(ValueError, match="top_k must be a positive integer, got '3'"):
        world["pipe"](world["paths"][0], TEXT, gallery=world["gallery"], top_k="3")
    with pytest.raises(
        DataFormatError, match="query embeddings have dimension 5 but the gallery's embeddings have dimension 32"
    ):
        world["gallery"].search([[0.1] * 5])
    with pytest.raises(DataFormatError, match="query_embeds must be numeric"):
        world["gallery"].search("clip0")


def test_one_path_given_to_index_asks_for_a_list(world):
    path = world["paths"][0]
    with pytest.raises(TypeError, match=r"videos is one path \('.*clip0\.mp4'\): pass a list of video paths"):
        world["pipe"].index(path, progress=False)
    gallery = world["pipe"].index([path], progress=False)  # the right form
    assert list(gallery.video_ids) == ["clip0"]
