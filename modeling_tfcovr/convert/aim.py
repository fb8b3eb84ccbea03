"""AIM checkpoints (mmaction's `backbone.*` + `cls_head.fc_cls.*`, or the TF-CoVR code's `ViT_CLIP`
with `fc_cls.*`) to [`TFCoVRForVideoClassification`] / [`TFCoVRVisionModel`].

The backbone is an OpenAI CLIP ViT (converted as in [`openai_clip`]) plus AIM's own parameters:

AIM names                                           | TF-CoVR names
----------------------------------------------------|--------------------------------------------
`temporal_embedding` (1, T, D)                      | `temporal_embedding`
`transformer.resblocks.N.T_Adapter.D_fc1/D_fc2.*`   | `encoder.layers.N.temporal_adapter.fc1/fc2.*`
`transformer.resblocks.N.S_Adapter.D_fc1/D_fc2.*`   | `encoder.layers.N.spatial_adapter.fc1/fc2.*`
`transformer.resblocks.N.MLP_Adapter.D_fc1/D_fc2.*` | `encoder.layers.N.mlp_adapter.fc1/fc2.*`
`cls_head.fc_cls.*` / `fc_cls.*`                    | `classifier.*`

The configuration is read off the shapes: width, layers, patch and image size, MLP width, frames,
adapter bottleneck and which adapters exist. Attention heads follow OpenAI's `width // 64` and the
joint-adapter scale AIM's default 0.5 unless given.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path

import torch

from ..configuration_tfcovr import TFCoVRConfig, TFCoVRVisionConfig
from ..errors import DataFormatError
from ..modeling_tfcovr import TFCoVRForVideoClassification, TFCoVRVisionModel, load_vision_encoder
from .loading import load_state_dict
from .openai_clip import convert_resblock, count_resblocks, default_num_heads, resblock_keys

logger = logging.getLogger(__name__)

AIM_ADAPTERS = {"T_Adapter": "temporal_adapter", "S_Adapter": "spatial_adapter", "MLP_Adapter": "mlp_adapter"}
_ADAPTER_USE_FIELDS = {"T_Adapter": "use_temporal_adapter", "S_Adapter": "use_spatial_adapter", "MLP_Adapter": "use_mlp_adapter"}
# Backbone entries that TF-CoVR's encoder does not use: CLIP's image projection (AIM drops it).
IGNORED_BACKBONE_KEYS = ("proj",)


def find_aim_prefix(state_dict: Mapping[str, torch.Tensor]) -> str:
    """The prefix of the AIM backbone's keys: `backbone.` (mmaction), `model.` (TF-CoVR's AIM
    wrapper), `""` (a bare `ViT_CLIP`), ...

    Raises:
        DataFormatError: no (or more than one) AIM backbone in the state dict.
    """
    prefixes = [
        key[: -len("temporal_embedding")]
        for key in state_dict
        if key.endswith("temporal_embedding") and f"{key[: -len('temporal_embedding')]}conv1.weight" in state_dict
    ]
    if len(prefixes) != 1:
        raise DataFormatError(
            "expected one AIM backbone (keys '<prefix>temporal_embedding' and '<prefix>conv1.weight'), "
            f"found {len(prefixes)}: {prefixes}"
        )
    return prefixes[0]


def find_aim_head(state_dict: Mapping[str, torch.Tensor], prefix: str) -> str | None:
    """The prefix of the classification head (`cls_head.fc_cls.`, `<prefix>fc_cls.`), or `None`."""
    candidates = [f"{prefix}fc_cls.", "cls_head.fc_cls."]
    candidates += sorted({key[: -len("weight")] for key in state_dict if key.endswith("fc_cls.weight")})
    for candidate in candidates:
        if f"{candidate}weight" in state_dict:
            return candidate
    return None


def _adapter_bottleneck(state_dict: Mapping[str, torch.Tensor], block: str, adapter: str) -> int | None:
    weight = state_dict.get(f"{block}{adapter}.D_fc1.weight")
    return None if weight is None else weight.shape[0]


def _ratio_for(bottleneck: int, width: int) -> float:
    """An `adapter_ratio` with `int(width * ratio) == bottleneck` (what TFCoVRAdapter computes)."""
    for ratio in (bottleneck / width, (bottleneck + 0.5) / width):
        if int(width * ratio) == bottleneck:
            return ratio
    raise DataFormatError(f"cannot express an adapter bottleneck of {bottleneck} for width {width}")


def aim_config_from_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    prefix: str | None = None,
    num_attention_heads: int | None = None,
    mlp_adapter_scale: float = 0.5,
) -> TFCoVRVisionConfig:
    """A [`TFCoVRVisionConfig`] matching the AIM backbone under `prefix` (found when `None`)."""
    prefix = find_aim_prefix(state_dict) if prefix is None else prefix
    patch_weight = state_dict[f"{prefix}conv1.weight"]
    width, patch_size = patch_weight.shape[0], patch_weight.shape[-1]
    num_positions = state_dict[f"{prefix}positional_embedding"].shape[0]
    grid = math.isqrt(num_positions - 1)
    if grid * grid != num_positions - 1:
        raise DataFormatError(f"{prefix}positional_embedding has {num_positions} rows, not a square grid plus one")
    temporal = state_dict[f"{prefix}temporal_embedding"]
    if temporal.ndim != 3 or temporal.shape[0] != 1 or temporal.shape[2] != width:
        raise DataFormatError(f"{prefix}temporal_embedding must have shape (1, frames, {width}), got {tuple(temporal.shape)}")
    blocks = f"{prefix}transformer.resblocks."
    num_layers = count_resblocks(state_dict, blocks)
    if any(".T_Adapter_in." in key for key in state_dict):
        raise DataFormatError("the checkpoint has T_Adapter_in (AIM with num_tadapter=2), which TF-CoVR's encoder does not implement")

    bottlenecks, use = set(), {}
    for adapter, field in _ADAPTER_USE_FIELDS.items():
        present = [_adapter_bottleneck(state_dict, f"{blocks}{i}.", adapter) for i in range(num_layers)]
        if any(size is None for size in present) and any(size is not None for size in present):
            raise DataFormatError(f"{adapter} exists in some layers only")
        use[field] = present[0] is not None
        bottlenecks |= {size for size in present if size is not None}
    if len(bottlenecks) > 1:
        raise DataFormatError(f"adapters of different widths ({sorted(bottlenecks)}) are not supported")

    return TFCoVRVisionConfig(
        hidden_size=width,
        intermediate_size=state_dict[f"{blocks}0.mlp.c_fc.weight"].shape[0],
        num_hidden_layers=num_layers,
        num_attention_heads=default_num_heads(width, num_attention_heads),
        image_size=grid * patch_size,
        patch_size=patch_size,
        projection_dim=width,
        hidden_act="quick_gelu",
        layer_norm_eps=1e-5,
        num_frames=temporal.shape[1],
        adapter_ratio=_ratio_for(bottlenecks.pop(), width) if bottlenecks else 0.25,
        mlp_adapter_scale=mlp_adapter_scale,
        **use,
    )


def convert_aim_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    num_attention_heads: int | None = None,
    mlp_adapter_scale: float = 0.5,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None, TFCoVRVisionConfig]:
    """Converts an AIM state dict.

    Returns:
        `(vision_state_dict, head_state_dict, vision_config)`: [`TFCoVRVisionModel`] keys, the
        classifier's `{"weight", "bias"}` (or `None` when the checkpoint has no head) and the config.

    Raises:
        DataFormatError: keys of the backbone that have no TF-CoVR counterpart, or missing keys.
    """
    prefix = find_aim_prefix(state_dict)
    config = aim_config_from_state_dict(state_dict, prefix, num_attention_heads, mlp_adapter_scale)
    blocks = f"{prefix}transformer.resblocks."
    converted = {
        "embeddings.patch_embedding.weight": state_dict[f"{prefix}conv1.weight"],
        "embeddings.class_embedding": state_dict[f"{prefix}class_embedding"],
        "embeddings.position_embedding.weight": state_dict[f"{prefix}positional_embedding"],
        "temporal_embedding": state_dict[f"{prefix}temporal_embedding"],
    }
    used = {f"{prefix}{name}" for name in ("conv1.weight", "class_embedding", "positional_embedding", "temporal_embedding")}
    for old, new in (("ln_pre", "pre_layrnorm"), ("ln_post", "post_layernorm")):
        for parameter in ("weight", "bias"):
            converted[f"{new}.{parameter}"] = state_dict[f"{prefix}{old}.{parameter}"]
            used.add(f"{prefix}{old}.{parameter}")
    for index in range(config.num_hidden_layers):
        source, target = f"{blocks}{index}.", f"encoder.layers.{index}."
        converted.update(convert_resblock(state_dict, source, target))
        used |= resblock_keys(source)
        for adapter, name in AIM_ADAPTERS.items():
            if f"{source}{adapter}.D_fc1.weight" not in state_dict:
                continue
            for old, new in (("D_fc1", "fc1"), ("D_fc2", "fc2")):
                for parameter in ("weight", "bias"):
                    key = f"{source}{adapter}.{old}.{parameter}"
                    if key not in state_dict:
                        raise DataFormatError(f"missing {key!r}")
                    converted[f"{target}{name}.{new}.{parameter}"] = state_dict[key]
                    used.add(key)

    head_prefix = find_aim_head(state_dict, prefix)
    head = None
    if head_prefix is not None:
        head = {parameter: state_dict[f"{head_prefix}{parameter}"] for parameter in ("weight", "bias")}
        used |= {f"{head_prefix}weight", f"{head_prefix}bias"}

    ignored = {f"{prefix}{name}" for name in IGNORED_BACKBONE_KEYS} & set(state_dict)
    unknown = sorted(key for key in state_dict if key.startswith(prefix) and key not in used | ignored)
    if unknown:
        raise DataFormatError(f"AIM backbone keys with no TF-CoVR counterpart: {unknown[:10]}")
    outside = sorted(key for key in state_dict if not key.startswith(prefix) and key not in used)
    if ignored or outside:
        logger.info("ignoring checkpoint entries not used by the AIM encoder: %s", sorted(ignored) + outside[:20])
    return converted, head, config


def convert_aim_checkpoint(
    checkpoint_path: str | os.PathLike,
    output_dir: str | os.PathLike | None = None,
    *,
    vision_only: bool = False,
    id2label: Mapping[int, str] | None = None,
    trust_pickle: bool = False,
    num_attention_heads: int | None = None,
    mlp_adapter_scale: float = 0.5,
    state_dict_key: str | None = None,
    save_video_processor: bool = True,
) -> TFCoVRForVideoClassification | TFCoVRVisionModel:
    """Converts an AIM checkpoint file to a TF-CoVR model.

    Args:
        checkpoint_path: an mmaction AIM checkpoint, a stage-1 checkpoint of the TF-CoVR code, or a
            plain / safetensors state dict.
        output_dir: where to `save_pretrained` the model (and a [`TFCoVRVideoProcessor`] for its
            frame count and image size); nothing is written when `None`.
        vision_only: return a [`TFCoVRVisionModel`] (the video encoder alone). Forced when the
            checkpoint has no classification head.
        id2label: class names of the head (`{index: name}`); default `class_<index>`.
        trust_pickle: allow unpickling the file (see [`load_checkpoint`]).
        num_attention_heads: overrides OpenAI's `width // 64`.
        mlp_adapter_scale: AIM's joint-adapter scale `s` (0.5 in AIM and TF-CoVR).
        state_dict_key: the checkpoint entry holding the weights, when it is not found automatically.
        save_video_processor: also save a [`TFCoVRVideoProcessor`] into `output_dir`.

    Returns:
        The converted model, in eval mode.
    """
    state_dict = load_state_dict(checkpoint_path, trust_pickle=trust_pickle, key=state_dict_key)
    vision_state, head, vision_config = convert_aim_state_dict(state_dict, num_attention_heads, mlp_adapter_scale)
    if head is None and not vision_only:
        logger.warning("the checkpoint has no classification head (fc_cls): converting the video encoder only")
        vision_only = True

    if vision_only:
        model = TFCoVRVisionModel(vision_config)
        model.load_state_dict(vision_state, strict=True)
    else:
        num_labels = head["weight"].shape[0]
        if id2label is None:
            id2label = {index: f"class_{index}" for index in range(num_labels)}
        if len(id2label) != num_labels:
            raise DataFormatError(f"the head has {num_labels} classes but {len(id2label)} labels were given")
        config = TFCoVRConfig(vision_config=vision_config.to_dict(), embed_dim=vision_config.hidden_size, id2label=dict(id2label))
        model = TFCoVRForVideoClassification(config)
        converted = {f"vision_model.{key}": value for key, value in vision_state.items()}
        converted.update({f"classifier.{name}": value for name, value in head.items()})
        model.load_state_dict(converted, strict=True)
    model.eval()
    if output_dir is not None:
        from ..model_card import write_model_card

        output_dir = Path(output_dir)
        model.save_pretrained(output_dir)
        if save_video_processor:
            video_processor_for(vision_config).save_pretrained(output_dir)
        write_model_card(output_dir, "classification",
                         training_data=f"Converted from the AIM checkpoint `{Path(checkpoint_path).name}`"
                                       + (f" ({len(model.config.id2label)} action classes)"
                                          if isinstance(model, TFCoVRForVideoClassification) else " (video encoder only)")
                                       + ".")
    return model


def video_processor_for(vision_config: TFCoVRVisionConfig):
    """A [`TFCoVRVideoProcessor`] with the encoder's frame count and image size (CLIP normalisation)."""
    from ..video_processing_tfcovr import TFCoVRVideoProcessor

    size = vision_config.image_size
    return TFCoVRVideoProcessor(
        num_frames=vision_config.num_frames, size={"shortest_edge": size}, crop_size={"height": size, "width": size}
    )


def load_aim_encoder(
    path: str | os.PathLike,
    trust_pickle: bool = False,
    num_attention_heads: int | None = None,
    revision: str | None = None,
) -> TFCoVRVisionModel:
    """The AIM video encoder stored at `path`: a `save_pretrained` folder or hub id (a stage-1
    `TFCoVRForVideoClassification`, a stage-2 `TFCoVRModel`, a bare `TFCoVRVisionModel` or a
    transformers CLIP model, read by [`load_vision_encoder`], a hub id at `revision`) or an AIM
    checkpoint file (converted on the fly)."""
    from ..hub import check_repo_id, is_local

    if not is_local(path):
        return load_vision_encoder(check_repo_id(os.fspath(path), "vision checkpoint"), revision=revision)
    path = Path(path)
    if path.is_dir():
        return load_vision_encoder(path)
    return convert_aim_checkpoint(
        path, vision_only=True, trust_pickle=trust_pickle, num_attention_heads=num_attention_heads, save_video_processor=False
    )


__all__ = [
    "aim_config_from_state_dict",
    "convert_aim_checkpoint",
    "convert_aim_state_dict",
    "find_aim_prefix",
    "find_aim_head",
    "load_aim_encoder",
    "video_processor_for",
]
