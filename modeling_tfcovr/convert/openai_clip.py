"""OpenAI CLIP weights (the `clip` package's naming) to transformers' CLIP models.

OpenAI names                                   | transformers names
-----------------------------------------------|------------------------------------------------------
`token_embedding.weight`                       | `text_model.embeddings.token_embedding.weight`
`positional_embedding`                         | `text_model.embeddings.position_embedding.weight`
`transformer.resblocks.N.attn.in_proj_*`       | `text_model.encoder.layers.N.self_attn.{q,k,v}_proj.*`
`transformer.resblocks.N.attn.out_proj.*`      | `text_model.encoder.layers.N.self_attn.out_proj.*`
`transformer.resblocks.N.ln_1/ln_2.*`          | `text_model.encoder.layers.N.layer_norm1/layer_norm2.*`
`transformer.resblocks.N.mlp.c_fc/c_proj.*`    | `text_model.encoder.layers.N.mlp.fc1/fc2.*`
`ln_final.*`                                   | `text_model.final_layer_norm.*`
`text_projection` (width x embed)              | `text_projection.weight` (embed x width: transposed)
`visual.conv1.weight`                          | `embeddings.patch_embedding.weight`
`visual.class_embedding`                       | `embeddings.class_embedding`
`visual.positional_embedding`                  | `embeddings.position_embedding.weight`
`visual.ln_pre/ln_post.*`                      | `pre_layrnorm/post_layernorm.*`
`visual.transformer.resblocks.N.*`             | `encoder.layers.N.*` (as for the text tower)
`visual.proj` (width x embed)                  | `visual_projection.weight` (transposed)

Only shapes are stored in a state dict, so attention heads default to OpenAI's rule
`width // 64`; pass `num_attention_heads` for models built otherwise.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPTextModelWithProjection, CLIPVisionConfig

from ..errors import DataFormatError
from .loading import load_state_dict

logger = logging.getLogger(__name__)

OPENAI_HEAD_WIDTH = 64
# Entries of OpenAI's TorchScript state dicts that are not weights.
OPENAI_METADATA_KEYS = ("input_resolution", "context_length", "vocab_size")


def _require(state_dict: Mapping[str, torch.Tensor], key: str) -> torch.Tensor:
    if key not in state_dict:
        raise DataFormatError(
            f"the state dict has no {key!r}; is it an OpenAI CLIP checkpoint (and is the prefix right)?"
        )
    return state_dict[key]


def count_resblocks(state_dict: Mapping[str, torch.Tensor], prefix: str) -> int:
    """Number of `{prefix}N.` blocks (N = 0, 1, ...) in the state dict."""
    heads = (key[len(prefix) :].split(".", 1)[0] for key in state_dict if key.startswith(prefix))
    indices = {int(head) for head in heads if head.isdigit()}
    if indices != set(range(len(indices))):
        raise DataFormatError(f"blocks under {prefix!r} are not numbered 0..N-1: {sorted(indices)}")
    return len(indices)


def default_num_heads(width: int, num_attention_heads: int | None = None) -> int:
    """`num_attention_heads` if given, else OpenAI's `width // 64`."""
    heads = num_attention_heads if num_attention_heads is not None else width // OPENAI_HEAD_WIDTH
    if heads < 1 or width % heads:
        raise DataFormatError(
            f"cannot use {heads} attention heads for width {width}; pass num_attention_heads explicitly"
        )
    return heads


def convert_resblock(state_dict: Mapping[str, torch.Tensor], source: str, target: str) -> dict[str, torch.Tensor]:
    """One OpenAI `ResidualAttentionBlock` (keys under `source`) as a transformers CLIP encoder
    layer (keys under `target`). `attn.in_proj_*` is split into q, k and v."""
    converted = {}
    in_weight = _require(state_dict, f"{source}attn.in_proj_weight")
    in_bias = _require(state_dict, f"{source}attn.in_proj_bias")
    for name, weight, bias in zip(("q", "k", "v"), in_weight.chunk(3, dim=0), in_bias.chunk(3, dim=0)):
        converted[f"{target}self_attn.{name}_proj.weight"] = weight.clone()
        converted[f"{target}self_attn.{name}_proj.bias"] = bias.clone()
    renames = {
        "attn.out_proj": "self_attn.out_proj",
        "ln_1": "layer_norm1",
        "ln_2": "layer_norm2",
        "mlp.c_fc": "mlp.fc1",
        "mlp.c_proj": "mlp.fc2",
    }
    for old, new in renames.items():
        for parameter in ("weight", "bias"):
            converted[f"{target}{new}.{parameter}"] = _require(state_dict, f"{source}{old}.{parameter}")
    return converted


def resblock_keys(source: str) -> set[str]:
    """The OpenAI keys that [`convert_resblock`] reads for the block under `source`."""
    names = ["attn.in_proj_weight", "attn.in_proj_bias"]
    names += [
        f"{module}.{p}"
        for module in ("attn.out_proj", "ln_1", "ln_2", "mlp.c_fc", "mlp.c_proj")
        for p in ("weight", "bias")
    ]
    return {source + name for name in names}


# ----------------------------------------------------------------------------------------------
# Text tower
# ----------------------------------------------------------------------------------------------


def openai_text_config_from_state_dict(
    state_dict: Mapping[str, torch.Tensor], prefix: str = "", num_attention_heads: int | None = None
) -> CLIPTextConfig:
    """A `CLIPTextConfig` matching the OpenAI text tower under `prefix`.

    OpenAI's start and end tokens are the last two ids of the vocabulary, and its pooling takes the
    feature at the highest id; so `bos_token_id = vocab_size - 2` and `eos_token_id = vocab_size - 1`
    (49406 and 49407 for the real vocabulary), which makes transformers pool at the same position.
    """
    vocab_size, width = _require(state_dict, f"{prefix}token_embedding.weight").shape
    return CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=width,
        intermediate_size=_require(state_dict, f"{prefix}transformer.resblocks.0.mlp.c_fc.weight").shape[0],
        projection_dim=_require(state_dict, f"{prefix}text_projection").shape[1],
        num_hidden_layers=count_resblocks(state_dict, f"{prefix}transformer.resblocks."),
        num_attention_heads=default_num_heads(width, num_attention_heads),
        max_position_embeddings=_require(state_dict, f"{prefix}positional_embedding").shape[0],
        hidden_act="quick_gelu",
        layer_norm_eps=1e-5,
        pad_token_id=0,
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,
    )


def convert_openai_text_state_dict(
    state_dict: Mapping[str, torch.Tensor], prefix: str = "", num_attention_heads: int | None = None
) -> tuple[dict[str, torch.Tensor], CLIPTextConfig]:
    """Converts the OpenAI CLIP text tower under `prefix` for `CLIPTextModelWithProjection`.

    Args:
        state_dict: an OpenAI CLIP state dict (or a larger one holding it under `prefix`, e.g.
            `"clip_model."`). The visual part and any other keys are ignored.
        prefix: the prefix of the text tower's keys.
        num_attention_heads: overrides OpenAI's `width // 64`.

    Returns:
        `(state_dict, config)`: keys `text_model.*` and `text_projection.weight`, and the config.
    """
    config = openai_text_config_from_state_dict(state_dict, prefix, num_attention_heads)
    converted = {
        "text_model.embeddings.token_embedding.weight": _require(state_dict, f"{prefix}token_embedding.weight"),
        "text_model.embeddings.position_embedding.weight": _require(state_dict, f"{prefix}positional_embedding"),
        "text_model.final_layer_norm.weight": _require(state_dict, f"{prefix}ln_final.weight"),
        "text_model.final_layer_norm.bias": _require(state_dict, f"{prefix}ln_final.bias"),
        "text_projection.weight": _require(state_dict, f"{prefix}text_projection").T.contiguous(),
    }
    for index in range(config.num_hidden_layers):
        converted.update(
            convert_resblock(
                state_dict, f"{prefix}transformer.resblocks.{index}.", f"text_model.encoder.layers.{index}."
            )
        )
    return converted, config


def openai_text_keys(state_dict: Mapping[str, torch.Tensor], prefix: str = "") -> set[str]:
    """The keys of the OpenAI text tower under `prefix` (those [`convert_openai_text_state_dict`] reads)."""
    keys = {
        f"{prefix}{name}"
        for name in (
            "token_embedding.weight",
            "positional_embedding",
            "ln_final.weight",
            "ln_final.bias",
            "text_projection",
        )
    }
    for index in range(count_resblocks(state_dict, f"{prefix}transformer.resblocks.")):
        keys |= resblock_keys(f"{prefix}transformer.resblocks.{index}.")
    return keys


# ----------------------------------------------------------------------------------------------
# Vision tower (ViT models only)
# ----------------------------------------------------------------------------------------------


def is_openai_vit(state_dict: Mapping[str, torch.Tensor], prefix: str = "visual.") -> bool:
    """Whether the OpenAI visual tower under `prefix` is a ViT (rather than a modified ResNet)."""
    return f"{prefix}conv1.weight" in state_dict and f"{prefix}class_embedding" in state_dict


def openai_vision_config_from_state_dict(
    state_dict: Mapping[str, torch.Tensor], prefix: str = "visual.", num_attention_heads: int | None = None
) -> CLIPVisionConfig:
    """A `CLIPVisionConfig` matching the OpenAI ViT under `prefix`."""
    patch_weight = _require(state_dict, f"{prefix}conv1.weight")
    width, patch_size = patch_weight.shape[0], patch_weight.shape[-1]
    num_positions = _require(state_dict, f"{prefix}positional_embedding").shape[0]
    grid = math.isqrt(num_positions - 1)
    if grid * grid != num_positions - 1:
        raise DataFormatError(f"{prefix}positional_embedding has {num_positions} rows, not a square grid plus one")
    projection = state_dict.get(f"{prefix}proj")
    return CLIPVisionConfig(
        hidden_size=width,
        intermediate_size=_require(state_dict, f"{prefix}transformer.resblocks.0.mlp.c_fc.weight").shape[0],
        projection_dim=projection.shape[1] if projection is not None else width,
        num_hidden_layers=count_resblocks(state_dict, f"{prefix}transformer.resblocks."),
        num_attention_heads=default_num_heads(width, num_attention_heads),
        image_size=grid * patch_size,
        patch_size=patch_size,
        hidden_act="quick_gelu",
        layer_norm_eps=1e-5,
    )


def convert_openai_vision_state_dict(
    state_dict: Mapping[str, torch.Tensor], prefix: str = "visual.", num_attention_heads: int | None = None
) -> tuple[dict[str, torch.Tensor], CLIPVisionConfig]:
    """Converts an OpenAI CLIP ViT (keys under `prefix`) to `CLIPVisionModel` keys (`embeddings.*`,
    `pre_layrnorm.*`, `encoder.layers.N.*`, `post_layernorm.*`).

    The output projection `proj` is not part of `CLIPVisionModel`; when present it is returned as
    `visual_projection.weight` (transposed), the name `CLIPModel` / `CLIPVisionModelWithProjection` use.
    """
    if not is_openai_vit(state_dict, prefix):
        raise DataFormatError(f"no OpenAI ViT under {prefix!r} (ResNet visual towers are not supported)")
    config = openai_vision_config_from_state_dict(state_dict, prefix, num_attention_heads)
    converted = {
        "embeddings.patch_embedding.weight": state_dict[f"{prefix}conv1.weight"],
        "embeddings.class_embedding": state_dict[f"{prefix}class_embedding"],
        "embeddings.position_embedding.weight": state_dict[f"{prefix}positional_embedding"],
    }
    for old, new in (("ln_pre", "pre_layrnorm"), ("ln_post", "post_layernorm")):
        for parameter in ("weight", "bias"):
            converted[f"{new}.{parameter}"] = _require(state_dict, f"{prefix}{old}.{parameter}")
    for index in range(config.num_hidden_layers):
        converted.update(
            convert_resblock(state_dict, f"{prefix}transformer.resblocks.{index}.", f"encoder.layers.{index}.")
        )
    if f"{prefix}proj" in state_dict:
        converted["visual_projection.weight"] = state_dict[f"{prefix}proj"].T.contiguous()
    return converted, config


# ----------------------------------------------------------------------------------------------
# Whole models
# ----------------------------------------------------------------------------------------------


def convert_openai_clip_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    text_num_attention_heads: int | None = None,
    vision_num_attention_heads: int | None = None,
) -> tuple[dict[str, torch.Tensor], CLIPConfig]:
    """Converts a whole OpenAI CLIP ViT model to `CLIPModel` keys and config.

    Raises:
        DataFormatError: the visual tower is a ResNet (use [`convert_openai_text_state_dict`] for the
            text tower of those models).
    """
    text_state, text_config = convert_openai_text_state_dict(state_dict, "", text_num_attention_heads)
    vision_state, vision_config = convert_openai_vision_state_dict(state_dict, "visual.", vision_num_attention_heads)
    if "visual_projection.weight" not in vision_state:
        raise DataFormatError("the OpenAI ViT has no visual.proj; CLIPModel needs the projection")
    if text_config.projection_dim != vision_config.projection_dim:
        raise DataFormatError(
            f"text and image projections differ ({text_config.projection_dim} vs {vision_config.projection_dim})"
        )
    converted = dict(text_state)
    converted["visual_projection.weight"] = vision_state.pop("visual_projection.weight")
    converted.update({f"vision_model.{key}": value for key, value in vision_state.items()})
    if "logit_scale" in state_dict:
        converted["logit_scale"] = state_dict["logit_scale"].reshape(())
    config = CLIPConfig(
        text_config=text_config.to_dict(),
        vision_config=vision_config.to_dict(),
        projection_dim=text_config.projection_dim,
    )
    return converted, config


def convert_openai_clip_checkpoint(
    checkpoint_path: str | os.PathLike,
    output_dir: str | os.PathLike | None = None,
    trust_pickle: bool = False,
    text_num_attention_heads: int | None = None,
    vision_num_attention_heads: int | None = None,
) -> CLIPModel | CLIPTextModelWithProjection:
    """Converts an OpenAI CLIP checkpoint file to a transformers model.

    ViT models become a `CLIPModel`; models with a ResNet visual tower (RN50, ...) become a
    `CLIPTextModelWithProjection` (their image tower has no transformers equivalent).

    Args:
        checkpoint_path: a state dict saved with `torch.save` or safetensors, or OpenAI's released
            TorchScript `.pt` file (that one only with `trust_pickle=True`).
        output_dir: where to `save_pretrained` the model; nothing is written when `None`.
        trust_pickle: allow unpickling / TorchScript (see [`load_checkpoint`]).

    Returns:
        The converted model.
    """
    state_dict = {
        k: v for k, v in load_state_dict(checkpoint_path, trust_pickle).items() if k not in OPENAI_METADATA_KEYS
    }
    if is_openai_vit(state_dict):
        converted, config = convert_openai_clip_state_dict(
            state_dict, text_num_attention_heads, vision_num_attention_heads
        )
        model = CLIPModel(config)
    else:
        logger.warning("the visual tower is not a ViT: only the text tower is converted (CLIPTextModelWithProjection)")
        converted, config = convert_openai_text_state_dict(state_dict, "", text_num_attention_heads)
        model = CLIPTextModelWithProjection(config)
    model.load_state_dict(converted, strict=True)
    model.eval()
    if output_dir is not None:
        model.save_pretrained(Path(output_dir))
    return model


__all__ = [
    "convert_openai_clip_checkpoint",
    "convert_openai_clip_state_dict",
    "convert_openai_text_state_dict",
    "convert_openai_vision_state_dict",
    "convert_resblock",
    "count_resblocks",
    "default_num_heads",
    "is_openai_vit",
    "openai_text_config_from_state_dict",
    "openai_text_keys",
    "openai_vision_config_from_state_dict",
    "resblock_keys",
]
