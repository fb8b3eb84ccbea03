"""The official AIM extraction preset (`AIM_Embeddings/aim_emb.py` of UCF-CRCV/TF-CoVR) against a literal
reimplementation with decord + PIL + torchvision: frame indices, pixels, and the embeddings of `embed_videos`."""

from __future__ import annotations

import decord
import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms
from torchvision.transforms.functional import InterpolationMode

import modeling_tfcovr as mt
from modeling_tfcovr.training.extract import embed_videos
from modeling_tfcovr.video_io import write_mp4
from modeling_tfcovr.video_processing_tfcovr import official_aim_frame_indices, official_aim_video_processor

from .conftest import TINY_VISION, brightness_frames, randomize_aim_parameters


def official_sample_frames(num_frames, vlen):
    acc_samples = min(num_frames, vlen)
    intervals = np.linspace(0, vlen, num=acc_samples + 1).astype(int)
    return [(intervals[i] + intervals[i + 1] - 1) // 2 for i in range(acc_samples)]


def official_indices(video_length, frames_video=12):
    frame_idxs = official_sample_frames(frames_video, video_length)
    if len(frame_idxs) < frames_video:
        frame_idxs = (frame_idxs * frames_video)[:frames_video]
    return frame_idxs


def official_pixels(path, image_size, frames_video=12):
    """FrameLoader + transform_test of the official extraction."""
    transform = transforms.Compose(
        [
            transforms.Resize((image_size, image_size), interpolation=InterpolationMode.BICUBIC),
            transforms.ToTensor(),
            transforms.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
        ]
    )
    vr = decord.VideoReader(str(path), num_threads=1)
    frames = vr.get_batch(official_indices(len(vr), frames_video)).asnumpy()
    return torch.stack([transform(Image.fromarray(f)) for f in frames])


@pytest.mark.parametrize("length", [1, 2, 5, 11, 12, 13, 23, 24, 25, 100, 101, 1000, 1001])
@pytest.mark.parametrize("num_frames", [12, 8, 1])
def test_frame_indices_equal_the_official_ones(length, num_frames):
    assert official_aim_frame_indices(length, num_frames).tolist() == official_indices(length, num_frames)
    assert mt.TFCoVRVideoProcessor(num_frames=num_frames, sampling_mode="official").sample_frames(
        metadata=type("Metadata", (), {"total_num_frames": length})()
    ).tolist() == official_indices(length, num_frames)


def test_short_videos_repeat_their_indices_cyclically():
    assert official_aim_frame_indices(5, 12).tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]
    assert official_aim_frame_indices(1, 12).tolist() == [0] * 12


def textured_video(num_frames: int, height: int, width: int, seed: int) -> np.ndarray:
    """Frames with fine detail (resampling differences show) and a per-frame brightness offset."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 200, size=(height, width, 3), dtype=np.uint8)
    return np.stack([np.clip(base.astype(np.int32) + 4 * i, 0, 255).astype(np.uint8) for i in range(num_frames)])


# widths divisible by 32: decord (the official decoder) fails on others
@pytest.mark.parametrize("num_frames,height,width", [(5, 48, 64), (13, 72, 96), (30, 36, 128), (12, 64, 64)])
def test_official_preset_pixels_equal_decord_pil_torchvision(tmp_path, num_frames, height, width):
    path = tmp_path / f"video_{num_frames}.mp4"
    write_mp4(path, textured_video(num_frames, height, width, seed=num_frames))
    processor = official_aim_video_processor(num_frames=12, image_size=40)
    pixels = processor(str(path), return_tensors="pt")["pixel_values_videos"]
    expected = official_pixels(path, image_size=40)
    assert pixels.shape == (1, 12, 3, 40, 40)
    assert (pixels[0] - expected).abs().max().item() <= 1e-6


def test_the_preset_decodes_the_official_frames(tmp_path):
    path = tmp_path / "brightness.mp4"
    write_mp4(path, brightness_frames(7, height=32, width=32, step=30))
    processor = official_aim_video_processor(num_frames=12, image_size=32)
    pixels = processor(str(path), return_tensors="pt")["pixel_values_videos"][0]
    grey = pixels[:, 0].mean(dim=(1, 2)) * 0.26862954 + 0.48145466  # undo the normalisation of the red channel
    decoded_indices = torch.round(grey * 255 / 30).long().tolist()
    assert decoded_indices == official_indices(7)  # 0..6 then 0..4, out of order


def test_the_preset_saves_and_loads(tmp_path):
    processor = official_aim_video_processor(num_frames=12, image_size=224)
    processor.save_pretrained(tmp_path)
    loaded = mt.TFCoVRVideoProcessor.from_pretrained(tmp_path)
    assert (loaded.sampling_mode, loaded.resize_backend, loaded.do_center_crop) == ("official", "pil", False)
    assert loaded.size.height == loaded.size.width == 224
    with pytest.raises(ValueError, match="sampling_mode must be one of"):
        mt.TFCoVRVideoProcessor(sampling_mode="uniform")


def test_extraction_with_the_preset_embeds_the_official_pixels(tmp_path):
    paths = []
    for number, (length, height, width) in enumerate([(5, 48, 64), (16, 32, 32), (40, 48, 96)]):
        paths.append(tmp_path / f"clip_{number}.mp4")
        write_mp4(paths[-1], textured_video(length, height, width, seed=number))
    vision = mt.TFCoVRVisionModel(mt.TFCoVRVisionConfig(**{**TINY_VISION, "num_frames": 12})).eval()
    randomize_aim_parameters(vision)
    processor = official_aim_video_processor(num_frames=12, image_size=32)
    ids, embeds, failures = embed_videos(vision, processor, ["a", "b", "c"], paths, batch_size=2)
    assert ids == ["a", "b", "c"] and not failures
    with torch.no_grad():
        expected = vision(torch.stack([official_pixels(p, image_size=32) for p in paths])).pooler_output
    np.testing.assert_allclose(embeds, expected.numpy(), atol=1e-5, rtol=1e-5)
