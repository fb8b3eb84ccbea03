"""The official TF-CoVR stage-2 checkpoint to a [`TFCoVRModel`] folder.

The official training script saves a Lightning Fabric state, `{"epoch", "model", "optimizer",
"scheduler"}`, whose `model` entry is the state dict of its `AIMCir` module:

official names              | TF-CoVR names
----------------------------|----------------------------------------------------------------
`clip_model.<text tower>`   | `text_model.*` (OpenAI CLIP RN50's text tower, see [`openai_clip`])
`text_proj.*`               | `text_projection.*` (Linear 1024 -> 768)
`combiner.*`                | `combiner.*` (CLIP4Cir names, copied as they are)
`clip_model.visual.*`       | not used (RN50 image tower; TF-CoVR encodes videos with AIM)
`vision_proj.*`             | not used (a frozen layer the official model never applies)

The official model feeds the raw (unnormalised) AIM embedding of the query video to the combiner,
so converted models set `normalize_query_video=False`.

Stage 2 never runs the video encoder: it works on precomputed AIM embeddings (such as the released
ones). The video encoder of the converted model comes from an AIM / stage-1 checkpoint when one is
given; otherwise it is a default-configuration AIM encoder with random weights, usable only through
`query_video_embeds` / `target_video_embeds`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..configuration_tfcovr import TFCoVRConfig, TFCoVRVisionConfig
from ..errors import DataFormatError
from ..modeling_tfcovr import TFCoVRModel
from .aim import load_aim_encoder, video_processor_for
from .loading import find_state_dict, load_checkpoint
from .openai_clip import convert_openai_text_state_dict, openai_text_keys

logger = logging.getLogger(__name__)

CLIP_PREFIX = "clip_model."
COMBINER_PARAMETERS = tuple(
    f"{module}.{parameter}"
    for module in (
        "text_projection_layer",
        "image_projection_layer",
        "combiner_layer",
        "output_layer",
        "dynamic_scalar.0",
        "dynamic_scalar.3",
    )
    for parameter in ("weight", "bias")
)
# Parts of the official model that the converted model does not need.
UNUSED_PREFIXES = (f"{CLIP_PREFIX}visual.", "vision_proj.")
UNUSED_KEYS = (
    f"{CLIP_PREFIX}logit_scale",
    *(f"{CLIP_PREFIX}{key}" for key in ("input_resolution", "context_length", "vocab_size")),
)

NO_VISION_ENCODER_NOTE = (
    "No AIM checkpoint given: the converted model's video encoder is a default-configuration AIM encoder with "
    "random weights. Stage 2 only needs precomputed AIM video embeddings (e.g. the released ones): pass them as "
    "query_video_embeds / target_video_embeds. To encode raw videos, convert again with an AIM / stage-1 checkpoint "
    "(--vision-checkpoint)."
)


def convert_tfcovr_state_dict(
    state_dict: Mapping[str, torch.Tensor], text_num_attention_heads: int | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Converts the official stage-2 model state dict, except the video encoder.

    Returns:
        `(state_dict, config_kwargs)`: [`TFCoVRModel`] keys `text_model.*`, `text_projection.*` and
        `combiner.*`, and the [`TFCoVRConfig`] fields they determine (`text_config`, `embed_dim`,
        `combiner_projection_dim`, `combiner_hidden_dim`, `normalize_query_video=False`).

    Raises:
        DataFormatError: a part of the official model is missing, or its converted parts hold keys
            that are not recognised (other unknown entries are ignored with a warning).
    """
    missing = [
        key
        for key in ("text_proj.weight", "text_proj.bias", *(f"combiner.{p}" for p in COMBINER_PARAMETERS))
        if key not in state_dict
    ]
    if missing:
        raise DataFormatError(f"not an official TF-CoVR stage-2 checkpoint: missing {missing[:6]}")
    text_state, text_config = convert_openai_text_state_dict(state_dict, CLIP_PREFIX, text_num_attention_heads)

    converted = {f"text_model.{key}": value for key, value in text_state.items()}
    converted["text_projection.weight"] = state_dict["text_proj.weight"]
    converted["text_projection.bias"] = state_dict["text_proj.bias"]
    converted.update({f"combiner.{name}": state_dict[f"combiner.{name}"] for name in COMBINER_PARAMETERS})

    used = openai_text_keys(state_dict, CLIP_PREFIX) | {"text_proj.weight", "text_proj.bias"}
    used |= {f"combiner.{name}" for name in COMBINER_PARAMETERS}
    unused = [key for key in state_dict if key not in used and (key.startswith(UNUSED_PREFIXES) or key in UNUSED_KEYS)]
    unknown = sorted(key for key in state_dict if key not in used and key not in unused)
    # Unknown weights inside the converted parts mean a different architecture; elsewhere they are
    # extra modules of the training code that inference does not need.
    conflicting = [key for key in unknown if key.startswith((CLIP_PREFIX, "combiner.", "text_proj."))]
    if conflicting:
        raise DataFormatError(f"unrecognised keys in the converted parts of the stage-2 checkpoint: {conflicting[:10]}")
    if unknown:
        logger.warning("ignoring %d unrecognised checkpoint entries: %s", len(unknown), unknown[:10])
    if unused:
        groups = sorted({prefix for prefix in UNUSED_PREFIXES if any(key.startswith(prefix) for key in unused)})
        logger.info("not converted (unused by TF-CoVR): %d entries (%s)", len(unused), ", ".join(groups) or "metadata")

    embed_dim, text_embed_dim = state_dict["text_proj.weight"].shape
    if text_embed_dim != text_config.projection_dim:
        raise DataFormatError(
            f"text_proj expects {text_embed_dim} inputs but the CLIP text projection gives {text_config.projection_dim}"
        )
    config_kwargs = {
        "text_config": text_config.to_dict(),
        "embed_dim": embed_dim,
        "combiner_projection_dim": state_dict["combiner.text_projection_layer.weight"].shape[0],
        "combiner_hidden_dim": state_dict["combiner.combiner_layer.weight"].shape[0],
        "normalize_query_video": False,
        "hn_nce_variant": "official",  # the official loss, quirk included, when training continues from it
    }
    return converted, config_kwargs


def convert_tfcovr_checkpoint(
    checkpoint_path: str | os.PathLike,
    output_dir: str | os.PathLike | None = None,
    *,
    vision_checkpoint: str | os.PathLike | None = None,
    vision_revision: str | None = None,
    vision_config: Mapping[str, Any] | TFCoVRVisionConfig | None = None,
    trust_pickle: bool = False,
    text_num_attention_heads: int | None = None,
    vision_num_attention_heads: int | None = None,
    state_dict_key: str | None = None,
    save_processor: bool = True,
    vision_preset: str | None = None,
    vision_mlp_adapter_scale: float | None = None,
) -> TFCoVRModel:
    """Converts the official TF-CoVR stage-2 checkpoint to a [`TFCoVRModel`].

    Args:
        checkpoint_path: the Fabric checkpoint (`.ckpt`), or a plain / safetensors state dict of the
            official model.
        output_dir: where to `save_pretrained` the model (and, when possible, a [`TFCoVRProcessor`]
            with the OpenAI CLIP tokenizer); nothing is written when `None`.
        vision_checkpoint: the AIM video encoder: an AIM / stage-1 checkpoint file or a converted
            `save_pretrained` folder or hub id (read at `vision_revision`). Without it the encoder has
            random weights (see the module doc).
        vision_config: configuration of that default encoder (default: AIM ViT-B/16, 12 frames, with
            `hidden_size = embed_dim`). Ignored when `vision_checkpoint` is given.
        trust_pickle: allow unpickling the checkpoint (the official one stores its scheduler object).
        text_num_attention_heads / vision_num_attention_heads: override OpenAI's `width // 64`.
        state_dict_key: the checkpoint entry holding the model (found automatically: `model`, ...).
        save_processor: save a [`TFCoVRProcessor`] (CLIP tokenizer from the `clip` package + video
            processor) with the model when the tokenizer can be built and matches the text tower.
        vision_preset / vision_mlp_adapter_scale: for an AIM checkpoint *file* as `vision_checkpoint`,
            the official configuration (`tfcovr-stage1` for TF-CoVR's) or the joint-adapter scale; see
            [`convert_aim_checkpoint`].

    Returns:
        The converted model, in eval mode.
    """
    checkpoint = load_checkpoint(checkpoint_path, trust_pickle=trust_pickle)
    if state_dict_key is None and isinstance(checkpoint, Mapping) and "model" in checkpoint:
        state_dict_key = "model"
    state_dict = find_state_dict(checkpoint, key=state_dict_key)
    converted, config_kwargs = convert_tfcovr_state_dict(state_dict, text_num_attention_heads)

    vision_model = None
    if vision_checkpoint is not None:
        vision_model = load_aim_encoder(
            vision_checkpoint,
            trust_pickle=trust_pickle,
            num_attention_heads=vision_num_attention_heads,
            revision=vision_revision,
            preset=vision_preset,
            mlp_adapter_scale=vision_mlp_adapter_scale,
        )
        vision_config = vision_model.config
    else:
        logger.warning(NO_VISION_ENCODER_NOTE)
        if vision_config is None:
            vision_config = TFCoVRVisionConfig(hidden_size=config_kwargs["embed_dim"])
    if isinstance(vision_config, TFCoVRVisionConfig):
        vision_config = vision_config.to_dict()
    if vision_config["hidden_size"] != config_kwargs["embed_dim"]:
        raise DataFormatError(
            f"the video encoder's width ({vision_config['hidden_size']}) differs from the checkpoint's embedding "
            f"dimension ({config_kwargs['embed_dim']})"
        )

    model = TFCoVRModel(TFCoVRConfig(vision_config=vision_config, **config_kwargs))
    if vision_model is not None:
        converted.update({f"vision_model.{key}": value for key, value in vision_model.state_dict().items()})
        model.load_state_dict(converted, strict=True)
    else:
        result = model.load_state_dict(converted, strict=False)
        not_vision = [key for key in result.missing_keys if not key.startswith("vision_model.")]
        if result.unexpected_keys or not_vision:
            raise DataFormatError(
                f"conversion mismatch: unexpected {result.unexpected_keys[:5]}, missing {not_vision[:5]}"
            )
    model.eval()

    if output_dir is not None:
        _save_converted(model, Path(output_dir), Path(checkpoint_path).name, vision_checkpoint, save_processor)
    return model


def _save_converted(
    model: TFCoVRModel,
    output_dir: Path,
    checkpoint_name: str,
    vision_checkpoint: str | os.PathLike | None,
    save_processor: bool,
) -> None:
    """Saves the model with a model card; with its processor (CLIP tokenizer + video processor) also
    the pipeline code, so that `pipeline("composed-video-retrieval", model=output_dir,
    trust_remote_code=True)` works. Without the `clip` package, or when its vocabulary does not fit
    the text tower, only the video processor is saved."""
    from ..model_card import write_model_card
    from ..pipeline_tfcovr import save_for_pipeline

    processor = _clip_processor(model) if save_processor else None
    if processor is not None:
        save_for_pipeline(model, processor, output_dir)
    else:
        model.save_pretrained(output_dir)
        if save_processor:
            video_processor_for(model.config.vision_config).save_pretrained(output_dir)
    encoder = (
        f"the video encoder from {Path(vision_checkpoint).name}"
        if vision_checkpoint
        else "a video encoder with random weights (use precomputed AIM embeddings)"
    )
    write_model_card(
        output_dir,
        "retrieval",
        training_data=f"Converted from the official TF-CoVR stage-2 checkpoint `{checkpoint_name}` "
        f"(trained on the TF-CoVR triplets), with {encoder}.",
    )


def _clip_processor(model: TFCoVRModel):
    """A [`TFCoVRProcessor`] with OpenAI's CLIP tokenizer, or `None` (with a warning) when the
    `clip` package is missing or its vocabulary does not fit the text tower."""
    try:
        from .clip_tokenizer import build_clip_tokenizer

        tokenizer = build_clip_tokenizer()
    except ImportError as error:
        logger.warning("no tokenizer saved: %s", error)
        return None
    if len(tokenizer) != model.config.text_config.vocab_size:
        logger.warning(
            "no tokenizer saved: the CLIP vocabulary has %d tokens, the text tower %d",
            len(tokenizer),
            model.config.text_config.vocab_size,
        )
        return None
    from ..processing_tfcovr import TFCoVRProcessor

    return TFCoVRProcessor(video_processor_for(model.config.vision_config), tokenizer)


__all__ = ["convert_tfcovr_checkpoint", "convert_tfcovr_state_dict", "NO_VISION_ENCODER_NOTE"]
