"""The video processor on real mp4 files, the text normalisation, the tokenizer and the processor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

import modeling_tfcovr as mt
from modeling_tfcovr.errors import VideoDecodeError
from modeling_tfcovr.video_processing_tfcovr import segment_frame_indices

from .conftest import brightness_frames


def _grey_levels(pixel_values: torch.Tensor) -> np.ndarray:
    """Mean 0-255 level of each frame of one video `(T, 3, H, W)`, undoing CLIP normalisation."""
    mean = torch.tensor(OPENAI_CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_CLIP_STD).view(1, 3, 1, 1)
    return ((pixel_values * std + mean) * 255).mean(dim=(1, 2, 3)).numpy()


def test_segment_indices_middle_and_random():
    assert segment_frame_indices(30, 6).tolist() == [2, 7, 12, 17, 22, 27]
    assert segment_frame_indices(3, 6).tolist() == [0, 0, 1, 1, 2, 2]  # short videos repeat frames
    rng = np.random.default_rng(0)
    for _ in range(50):
        indices = segment_frame_indices(40, 8, "random", rng)
        assert all(5 * i <= index < 5 * (i + 1) for i, index in enumerate(indices))
    with pytest.raises(ValueError, match="sampling mode"):
        segment_frame_indices(10, 2, "uniform")


def test_video_processor_decodes_the_expected_frames(brightness_video):
    processor = mt.TFCoVRVideoProcessor(num_frames=6, size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    pixel_values = processor(str(brightness_video))["pixel_values_videos"]
    assert pixel_values.shape == (1, 6, 3, 32, 32)
    expected_levels = 8 * np.array([2, 7, 12, 17, 22, 27])
    np.testing.assert_allclose(_grey_levels(pixel_values[0]), expected_levels, atol=2.0)


def test_video_processor_accepts_arrays_pil_lists_and_batches(brightness_video):
    processor = mt.TFCoVRVideoProcessor(num_frames=4, size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    frames = brightness_frames(8)
    from_array = processor(frames)["pixel_values_videos"]
    from_pil = processor([Image.fromarray(f) for f in frames])["pixel_values_videos"]
    torch.testing.assert_close(from_array, from_pil)
    np.testing.assert_allclose(_grey_levels(from_array[0]), 8 * np.array([1, 3, 5, 7]), atol=1e-3)
    grey = frames[..., 0]  # (T, H, W) grayscale
    rgba = np.concatenate([frames, np.full(frames.shape[:3] + (1,), 255, np.uint8)], axis=-1)
    torch.testing.assert_close(processor(grey)["pixel_values_videos"], from_array)
    torch.testing.assert_close(processor(rgba)["pixel_values_videos"], from_array)
    batch = processor([frames, str(brightness_video)])["pixel_values_videos"]
    assert batch.shape == (2, 4, 3, 32, 32)
    short = processor(brightness_frames(2))["pixel_values_videos"]  # 2 frames -> repeated to 4
    np.testing.assert_allclose(_grey_levels(short[0]), [0, 0, 8, 8], atol=1e-3)


def test_random_sampling_is_reproducible_with_a_seed(brightness_video):
    processor = mt.TFCoVRVideoProcessor(num_frames=5, size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    first = processor(str(brightness_video), sampling_mode="random", sampling_seed=3)["pixel_values_videos"]
    second = processor(str(brightness_video), sampling_mode="random", sampling_seed=3)["pixel_values_videos"]
    torch.testing.assert_close(first, second)
    levels = _grey_levels(first[0]) / 8
    assert all(6 * i - 0.5 <= level <= 6 * (i + 1) - 0.5 for i, level in enumerate(levels))


@pytest.mark.parametrize("kind", ["missing", "empty", "text", "truncated"])
def test_bad_video_files_raise_errors_naming_the_path(tmp_path, brightness_video, kind):
    path = tmp_path / f"{kind}.mp4"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not a video\n")
    elif kind == "truncated":
        data = brightness_video.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    processor = mt.TFCoVRVideoProcessor(num_frames=4, size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    with pytest.raises(VideoDecodeError) as info:
        processor(str(path))
    assert str(path) in str(info.value)
    expected_reason = {"missing": "does not exist", "empty": "0 bytes", "text": "not a readable video", "truncated": "not a readable video"}
    assert expected_reason[kind] in str(info.value)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Show it with 2.5 turns instead of 1.5!", "show it with two and a half turns instead of one and a half"),
        ("Do 3 rotations, not 1.", "do three rotations not one"),
        ("0.5 turn; 7 twists; 8 saltos", "half turn seven twists 8 saltos"),
        ("It's a HALF-turn", "it's a half-turn"),
        (" ".join(["word"] * 40), " ".join(["word"] * 30)),
    ],
)
def test_text_normalisation(text, expected):
    assert mt.normalize_modification_text(text) == expected


def test_processor_combines_video_and_text(tiny_processor, brightness_video):
    batch = tiny_processor(videos=[str(brightness_video)] * 2, text=["With 2 rotations!", "one more rotation"])
    assert batch["pixel_values_videos"].shape == (2, 4, 3, 32, 32)
    tokenizer = tiny_processor.tokenizer
    expected = tokenizer(["with two rotations", "one more rotation"], padding=True, return_tensors="pt")
    torch.testing.assert_close(batch["input_ids"], expected["input_ids"])
    assert batch["input_ids"][0, 0].item() == tokenizer.bos_token_id
    assert tokenizer.unk_token_id not in batch["input_ids"][0].tolist()  # "2" became "two", a known word
    assert (batch["input_ids"] == tokenizer.eos_token_id).sum().item() == 2
