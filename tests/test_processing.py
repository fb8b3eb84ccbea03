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
    expected_reason = {
        "missing": "does not exist",
        "empty": "0 bytes",
        "text": "not a readable video",
        "truncated": "not a readable video",
    }
    assert expected_reason[kind] in str(info.value)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Show it with 2.5 turns instead of 1.5!", "show it with two and a half turns instead of one and a half"),
        ("Do 3 rotations, not 1.", "do three rotations, not one."),
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


def _independent_pixels(video: np.ndarray, size: int) -> torch.Tensor:
    """(T, 3, size, size) pixels by torchvision's own resize and crop, then CLIP normalisation written out."""
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as tvf

    frames = torch.from_numpy(video).permute(0, 3, 1, 2)
    frames = tvf.resize(frames, size, interpolation=InterpolationMode.BICUBIC, antialias=True)
    frames = tvf.center_crop(frames, [size, size]).to(torch.float64) / 255
    mean = torch.tensor(OPENAI_CLIP_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_CLIP_STD, dtype=torch.float64).view(1, 3, 1, 1)
    return ((frames - mean) / std).to(torch.float32)


def test_batch_pixels_equal_single_videos_and_an_independent_computation():
    processor = mt.TFCoVRVideoProcessor(num_frames=3, size={"shortest_edge": 24}, crop_size={"height": 24, "width": 24})
    rng = np.random.default_rng(0)
    same_shape = [rng.integers(0, 256, (3, 30, 40, 3), dtype=np.uint8) for _ in range(3)]
    other_shape = rng.integers(0, 256, (3, 36, 28, 3), dtype=np.uint8)

    batch = processor(same_shape, do_sample_frames=False)["pixel_values_videos"]  # one shape: one stacked pass
    mixed = processor([same_shape[0], other_shape], do_sample_frames=False)["pixel_values_videos"]  # two groups
    assert batch.shape == (3, 3, 3, 24, 24) and batch.dtype == torch.float32 and batch.is_contiguous()
    for position, video in enumerate(same_shape):
        single = processor(video, do_sample_frames=False)["pixel_values_videos"][0]
        torch.testing.assert_close(batch[position], single, rtol=0, atol=0)
        torch.testing.assert_close(batch[position], _independent_pixels(video, 24), rtol=0, atol=2e-6)
    torch.testing.assert_close(mixed[0], batch[0], rtol=0, atol=0)
    torch.testing.assert_close(mixed[1], _independent_pixels(other_shape, 24), rtol=0, atol=2e-6)


def _collate_and_report_sharing(items):
    from modeling_tfcovr.training.data import VideoCollator

    batch = VideoCollator(
        mt.TFCoVRVideoProcessor(num_frames=4, size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    )(items)
    # Inspected inside the worker, before the batch is pickled to the main process.
    return batch, batch["pixel_values_videos"].is_shared()


def test_collator_in_a_worker_writes_pixels_to_shared_memory_once():
    frames = [{"frames": brightness_frames(4, step=9 + i)} for i in range(4)]
    loader = torch.utils.data.DataLoader(frames, batch_size=2, num_workers=1, collate_fn=_collate_and_report_sharing)
    in_main_process, shared_in_main = _collate_and_report_sharing(frames[:2])
    assert not shared_in_main  # outside a worker: ordinary memory
    (first, shared), (second, _) = list(loader)
    assert shared  # allocated in shared memory by the processor, so not copied again to cross the process boundary
    torch.testing.assert_close(first["pixel_values_videos"], in_main_process["pixel_values_videos"], rtol=0, atol=0)
    assert second["pixel_values_videos"].shape == (2, 4, 3, 32, 32)
