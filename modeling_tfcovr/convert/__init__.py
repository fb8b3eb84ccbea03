"""Bringing the paper's own artifacts over: converters for the official TF-CoVR stage-2 checkpoint,
AIM checkpoints and OpenAI CLIP weights, and OpenAI's CLIP tokenizer built offline. (The zero-shot CLIP
baselines are models: `modeling_tfcovr.modeling_zero_shot`.)

Checkpoints are read with `torch.load(weights_only=True)`; files that need arbitrary unpickling are
refused with [`UntrustedFileError`] unless `trust_pickle=True` (`--trust-pickle`).
"""

from .aim import aim_config_from_state_dict, convert_aim_checkpoint, convert_aim_state_dict, load_aim_encoder
from .clip_tokenizer import build_clip_tokenizer, find_openai_bpe_file
from .loading import PlaceholderObject, find_state_dict, load_checkpoint, load_state_dict
from .openai_clip import (
    convert_openai_clip_checkpoint,
    convert_openai_clip_state_dict,
    convert_openai_text_state_dict,
    convert_openai_vision_state_dict,
    openai_text_config_from_state_dict,
    openai_vision_config_from_state_dict,
)
from .tfcovr import convert_tfcovr_checkpoint, convert_tfcovr_state_dict

__all__ = [
    "PlaceholderObject",
    "aim_config_from_state_dict",
    "build_clip_tokenizer",
    "convert_aim_checkpoint",
    "convert_aim_state_dict",
    "convert_openai_clip_checkpoint",
    "convert_openai_clip_state_dict",
    "convert_openai_text_state_dict",
    "convert_openai_vision_state_dict",
    "convert_tfcovr_checkpoint",
    "convert_tfcovr_state_dict",
    "find_openai_bpe_file",
    "find_state_dict",
    "load_checkpoint",
    "load_state_dict",
    "load_aim_encoder",
    "openai_text_config_from_state_dict",
    "openai_vision_config_from_state_dict",
]
