"""Shared fixtures: tiny random-initialised TF-CoVR models, processors and rendered videos."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import modeling_tfcovr as mt
from modeling_tfcovr.video_io import write_mp4

TINY_VISION = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    image_size=32,
    patch_size=8,
    num_frames=4,
)
TINY_TEXT_WORDS = ["one more rotation", "reverse the direction", "with two rotations", "the same but on the beam"]


def tiny_text_config(vocab_size: int) -> dict:
    return dict(
        model_type="clip_text_model",
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        projection_dim=24,
        vocab_size=vocab_size,
        max_position_embeddings=32,
        bos_token_id=2,
        eos_token_id=3,
        pad_token_id=0,
    )


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return mt.build_word_level_tokenizer(TINY_TEXT_WORDS)


@pytest.fixture
def tiny_config(tiny_tokenizer) -> mt.TFCoVRConfig:
    return mt.TFCoVRConfig(
        vision_config=TINY_VISION,
        text_config=tiny_text_config(len(tiny_tokenizer)),
        embed_dim=32,
        combiner_projection_dim=48,
        combiner_hidden_dim=64,
        id2label={i: f"class_{i}" for i in range(5)},
    )


@pytest.fixture
def tiny_processor(tiny_tokenizer) -> mt.TFCoVRProcessor:
    video_processor = mt.TFCoVRVideoProcessor(
        num_frames=4, size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    return mt.TFCoVRProcessor(video_processor, tiny_tokenizer)


def brightness_frames(num_frames: int, height: int = 32, width: int = 48, step: int = 8) -> np.ndarray:
    """uint8 frames whose uniform grey level is `step * index`: decoded frames reveal their index."""
    return np.stack([np.full((height, width, 3), step * i, np.uint8) for i in range(num_frames)])


@pytest.fixture
def brightness_video(tmp_path):
    path = tmp_path / "brightness.mp4"
    write_mp4(path, brightness_frames(30))
    return path


def randomize_aim_parameters(model: torch.nn.Module, std: float = 0.2, seed: int = 0) -> None:
    """Gives every adapter and temporal embedding non-zero values, as after training."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "_adapter." in name or name.endswith("temporal_embedding"):
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * std)


def load_script(name: str):
    """The command module behind `scripts/<name>.py`, found through the registry of the commands, to call its
    `main(argv)` in-process (tests call the commands' functions, not the files)."""
    from modeling_tfcovr.commands import COMMANDS, load_command

    for command_name, command in COMMANDS.items():
        if name in (command.module, command.script_name.removesuffix(".py")):
            return load_command(command_name)
    raise KeyError(f"no command behind scripts/{name}.py")
