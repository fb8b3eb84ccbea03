"""AIM checkpoints (mmaction's `backbone.*` + `cls_head.fc_cls.*`, or the TF-CoVR code's `ViT_CLIP`
with `fc_cls.*`) to [`TFCoVRForVideoClassification`] / [`TFCoVRVisionModel`].

The backbone is an OpenAI CLIP ViT (converted as in [`openai_clip`]) plus AIM's own parameters:

AIM names                                           | TF-CoVR names
----------------------------------------------------|--------------------------------------------------
`temporal_embedding` (1, T, D)                      | `temporal_embedding`
`transformer.resblocks.N.T_Adapter.D_fc1/D_fc2.*`   | `encoder.layers.N.temporal_adapter.fc1/fc2.*`
`transformer.resblocks.N.T_Adapter_in.D_fc1/D_fc2.*`| `encoder.layers.N.temporal_input_adapter.fc1/fc2.*`
`transformer.resblocks.N.S_Adapter.D_fc1/D_fc2.*`   | `encoder.layers.N.spatial_adapter.fc1/fc2.*`
`transformer.resblocks.N.MLP_Adapter.D_fc1/D_fc2.*` | `encoder.layers.N.mlp_adapter.fc1/fc2.*`
`cls_head.fc_cls.*` / `fc_cls.*`                    | `classifier.*`

The weights tell width, layers, patch and image size, MLP width, frames, the adapter bottleneck,
which adapters exist and AIM's `num_tadapter` (2 exactly when `T_Adapter_in` exists). They do not
tell the number of attention heads nor the joint-adapter scale (`adapter_scale`): those come from a
named preset of an official configuration (`presets/aim/<name>.json`, see [`aim_preset_names`]) or
from explicit arguments, and the conversion is refused when neither gives them. A preset that
contradicts the weights is refused too.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from ..configuration_tfcovr import TFCoVRConfig, TFCoVRVisionConfig
from ..errors import DataFormatError
from ..modeling_tfcovr import TFCoVRForVideoClassification, TFCoVRVisionModel, load_vision_encoder
from .loading import load_state_dict
from .openai_clip import convert_resblock, count_resblocks, default_num_heads, resblock_keys

logger = logging.getLogger(__name__)

AIM_ADAPTERS = {
    "T_Adapter": "temporal_adapter",
    "T_Adapter_in": "temporal_input_adapter",
    "S_Adapter": "spatial_adapter",
    "MLP_Adapter": "mlp_adapter",
}
_ADAPTER_USE_FIELDS = {
    "T_Adapter": "use_temporal_adapter",
    "S_Adapter": "use_spatial_adapter",
    "MLP_Adapter": "use_mlp_adapter",
}
# Backbone entries that TF-CoVR's encoder does not use: CLIP's image projection (AIM drops it).
IGNORED_BACKBONE_KEYS = ("proj",)

# Settings the weights determine; a preset or an argument that disagrees with them is refused.
WEIGHT_FIELDS = ("hidden_size", "num_hidden_layers", "patch_size", "image_size", "num_frames", "num_temporal_adapters")
# Settings the weights cannot tell, with the command-line flag and the Python argument that give them.
UNREADABLE_SETTINGS = {
    "num_attention_heads": ("attention heads", "--num-attention-heads", "num_attention_heads"),
    "mlp_adapter_scale": ("joint-adapter scale, AIM's adapter_scale", "--adapter-scale", "mlp_adapter_scale"),
}


# ----------------------------------------------------------------------------------------------
# Presets of the official configurations
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AIMPreset:
    """An official AIM configuration, stored as `presets/aim/<name>.json` in this package.

    Attributes:
        name: the preset's name (`tfcovr-stage1`, `aim-vit-b16-k400`, ...).
        description: one line saying what it is.
        source: the official file the values were read from.
        vision_config: [`TFCoVRVisionConfig`] fields (architecture, frames, heads, adapter scale,
            `num_temporal_adapters`, drop path).
        num_labels: classes of the official classification head.
        label_set: name of a label set in [`modeling_tfcovr.data.label_sets`] giving the head's
            class names in index order, or `None` when the package does not hold them.
    """

    name: str
    description: str
    source: str
    vision_config: Mapping[str, Any]
    num_labels: int | None = None
    label_set: str | None = None

    def id2label(self) -> dict[int, str] | None:
        """The head's `{index: name}` from `label_set`, or `None`."""
        if self.label_set is None:
            return None
        from ..data.label_sets import id2label_of

        return id2label_of(self.label_set)


def _preset_files() -> dict[str, Any]:
    folder = resources.files(__package__) / "presets" / "aim"
    return {entry.name[: -len(".json")]: entry for entry in folder.iterdir() if entry.name.endswith(".json")}


def aim_preset_names() -> list[str]:
    """Names of the AIM presets shipped with the package, sorted."""
    return sorted(_preset_files())


def load_aim_preset(name: str) -> AIMPreset:
    """The AIM preset called `name`.

    Raises:
        DataFormatError: no such preset (the message lists the known ones), or a malformed file.
    """
    files = _preset_files()
    if name not in files:
        raise DataFormatError(f"unknown AIM preset {name!r}; known presets: {', '.join(sorted(files))}")
    data = json.loads(files[name].read_text(encoding="utf-8"))
    try:
        preset = AIMPreset(name=name, **data)
    except TypeError as error:
        raise DataFormatError(f"AIM preset file {name}.json is malformed: {error}") from None
    unknown = set(preset.vision_config) - set(TFCoVRVisionConfig().to_dict())
    if unknown:
        raise DataFormatError(f"AIM preset {name!r} sets unknown configuration fields {sorted(unknown)}")
    return preset


def _resolve_preset(preset: str | AIMPreset | None) -> AIMPreset | None:
    return load_aim_preset(preset) if isinstance(preset, str) else preset


def presets_matching(observed: Mapping[str, Any]) -> list[str]:
    """Names of the presets whose values agree with every setting in `observed` (read off weights)."""
    names = []
    for name in aim_preset_names():
        values = load_aim_preset(name).vision_config
        if all(values.get(field, value) == value for field, value in observed.items()):
            names.append(name)
    return names


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


def read_aim_architecture(state_dict: Mapping[str, torch.Tensor], prefix: str | None = None) -> dict[str, Any]:
    """The [`TFCoVRVisionConfig`] fields that the AIM backbone under `prefix` (found when `None`)
    determines: width, layers, MLP width, patch and image size, frames, which adapters exist, their
    bottleneck (`adapter_ratio`) and `num_temporal_adapters`.

    Raises:
        DataFormatError: shapes that do not form an AIM backbone.
    """
    prefix = find_aim_prefix(state_dict) if prefix is None else prefix
    patch_weight = state_dict[f"{prefix}conv1.weight"]
    width, patch_size = patch_weight.shape[0], patch_weight.shape[-1]
    num_positions = state_dict[f"{prefix}positional_embedding"].shape[0]
    grid = math.isqrt(num_positions - 1)
    if grid * grid != num_positions - 1:
        raise DataFormatError(f"{prefix}positional_embedding has {num_positions} rows, not a square grid plus one")
    temporal = state_dict[f"{prefix}temporal_embedding"]
    if temporal.ndim != 3 or temporal.shape[0] != 1 or temporal.shape[2] != width:
        raise DataFormatError(
            f"{prefix}temporal_embedding must have shape (1, frames, {width}), got {tuple(temporal.shape)}"
        )
    blocks = f"{prefix}transformer.resblocks."
    num_layers = count_resblocks(state_dict, blocks)

    bottlenecks, present = set(), {}
    for adapter in AIM_ADAPTERS:
        sizes = [_adapter_bottleneck(state_dict, f"{blocks}{i}.", adapter) for i in range(num_layers)]
        if any(size is None for size in sizes) and any(size is not None for size in sizes):
            raise DataFormatError(f"{adapter} exists in some layers only")
        present[adapter] = sizes[0] is not None
        bottlenecks |= {size for size in sizes if size is not None}
    if len(bottlenecks) > 1:
        raise DataFormatError(f"adapters of different widths ({sorted(bottlenecks)}) are not supported")
    if present["T_Adapter_in"] and not present["T_Adapter"]:
        raise DataFormatError("the checkpoint has T_Adapter_in but no T_Adapter")

    return {
        "hidden_size": width,
        "intermediate_size": state_dict[f"{blocks}0.mlp.c_fc.weight"].shape[0],
        "num_hidden_layers": num_layers,
        "image_size": grid * patch_size,
        "patch_size": patch_size,
        "num_frames": temporal.shape[1],
        "adapter_ratio": _ratio_for(bottlenecks.pop(), width) if bottlenecks else 0.25,
        "num_temporal_adapters": 2 if present["T_Adapter_in"] else 1,
        **{field: present[adapter] for adapter, field in _ADAPTER_USE_FIELDS.items()},
    }


def _describe(architecture: Mapping[str, Any]) -> str:
    return ", ".join(f"{field} {architecture[field]}" for field in WEIGHT_FIELDS)


def resolve_aim_settings(
    architecture: Mapping[str, Any],
    preset: str | AIMPreset | None = None,
    num_attention_heads: int | None = None,
    mlp_adapter_scale: float | None = None,
    num_temporal_adapters: int | None = None,
    num_frames: int | None = None,
) -> dict[str, Any]:
    """The settings that complete `architecture` (from [`read_aim_architecture`]): attention heads
    and joint-adapter scale from `preset` or the arguments, plus the preset's drop path.

    `num_temporal_adapters` and `num_frames` are determined by the weights; given here (or by the
    preset) they are checked against them.

    Raises:
        DataFormatError: the preset or an argument contradicts the weights, an argument contradicts
            the preset, or a setting the weights cannot tell is given by neither (the message names
            it and the presets that fit the weights).
    """
    preset = _resolve_preset(preset)
    observed = {field: architecture[field] for field in WEIGHT_FIELDS}
    if preset is not None:
        mismatches = [
            f"{field}: preset {preset.vision_config[field]}, weights {value}"
            for field, value in observed.items()
            if field in preset.vision_config and preset.vision_config[field] != value
        ]
        if mismatches:
            raise DataFormatError(
                f"the AIM preset {preset.name!r} does not match the checkpoint ({'; '.join(mismatches)})"
            )
    for field, flag, value in (
        ("num_temporal_adapters", "--num-temporal-adapters", num_temporal_adapters),
        ("num_frames", "--num-frames", num_frames),
    ):
        if value is not None and value != observed[field]:
            raise DataFormatError(
                f"{field}={value} ({flag}) contradicts the checkpoint, whose weights have {field} {observed[field]}"
            )

    given = {"num_attention_heads": num_attention_heads, "mlp_adapter_scale": mlp_adapter_scale}
    settings = {}
    for field, value in given.items():
        from_preset = preset.vision_config.get(field) if preset is not None else None
        if value is not None and from_preset is not None and value != from_preset:
            raise DataFormatError(
                f"{field}={value} ({UNREADABLE_SETTINGS[field][1]}) contradicts the preset {preset.name!r}, "
                f"which has {field} {from_preset}; give one of them"
            )
        settings[field] = value if value is not None else from_preset
    needed = ["num_attention_heads"] + (["mlp_adapter_scale"] if architecture["use_mlp_adapter"] else [])
    missing = [field for field in needed if settings[field] is None]
    if missing:
        names = "; ".join(
            f"{UNREADABLE_SETTINGS[field][0]} ({UNREADABLE_SETTINGS[field][1]} / {UNREADABLE_SETTINGS[field][2]}=)"
            for field in missing
        )
        fitting = presets_matching(observed)
        hint = (
            f"presets that fit these weights: {', '.join(fitting)}"
            if fitting
            else f"no preset fits these weights ({_describe(observed)}); known presets: {', '.join(aim_preset_names())}"
        )
        raise DataFormatError(
            f"the weights do not tell these settings: {names}. Give them with --preset NAME (preset=) or explicitly; "
            f"{hint}."
        )
    if settings["mlp_adapter_scale"] is None:
        del settings["mlp_adapter_scale"]  # no joint adapter: the scale is never used
    settings["num_attention_heads"] = default_num_heads(architecture["hidden_size"], settings["num_attention_heads"])
    if preset is not None and "drop_path_rate" in preset.vision_config:
        settings["drop_path_rate"] = preset.vision_config["drop_path_rate"]
    return settings


def aim_config_from_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    prefix: str | None = None,
    num_attention_heads: int | None = None,
    mlp_adapter_scale: float | None = None,
    *,
    preset: str | AIMPreset | None = None,
    num_temporal_adapters: int | None = None,
    num_frames: int | None = None,
) -> TFCoVRVisionConfig:
    """A [`TFCoVRVisionConfig`] matching the AIM backbone under `prefix` (found when `None`); see
    [`resolve_aim_settings`] for what must come from `preset` or the arguments."""
    architecture = read_aim_architecture(state_dict, prefix)
    settings = resolve_aim_settings(
        architecture, preset, num_attention_heads, mlp_adapter_scale, num_temporal_adapters, num_frames
    )
    return TFCoVRVisionConfig(
        **architecture,
        **settings,
        projection_dim=architecture["hidden_size"],
        hidden_act="quick_gelu",
        layer_norm_eps=1e-5,
    )


def convert_aim_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    num_attention_heads: int | None = None,
    mlp_adapter_scale: float | None = None,
    *,
    preset: str | AIMPreset | None = None,
    num_temporal_adapters: int | None = None,
    num_frames: int | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None, TFCoVRVisionConfig]:
    """Converts an AIM state dict. The settings the weights cannot tell come from `preset` or the
    arguments (see [`resolve_aim_settings`]).

    Returns:
        `(vision_state_dict, head_state_dict, vision_config)`: [`TFCoVRVisionModel`] keys, the
        classifier's `{"weight", "bias"}` (or `None` when the checkpoint has no head) and the config.

    Raises:
        DataFormatError: keys of the backbone that have no TF-CoVR counterpart, missing keys, a
            setting given by neither the preset nor the arguments, or a preset contradicting the weights.
    """
    prefix = find_aim_prefix(state_dict)
    config = aim_config_from_state_dict(
        state_dict,
        prefix,
        num_attention_heads,
        mlp_adapter_scale,
        preset=preset,
        num_temporal_adapters=num_temporal_adapters,
        num_frames=num_frames,
    )
    blocks = f"{prefix}transformer.resblocks."
    converted = {
        "embeddings.patch_embedding.weight": state_dict[f"{prefix}conv1.weight"],
        "embeddings.class_embedding": state_dict[f"{prefix}class_embedding"],
        "embeddings.position_embedding.weight": state_dict[f"{prefix}positional_embedding"],
        "temporal_embedding": state_dict[f"{prefix}temporal_embedding"],
    }
    used = {
        f"{prefix}{name}" for name in ("conv1.weight", "class_embedding", "positional_embedding", "temporal_embedding")
    }
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
    preset: str | AIMPreset | None = None,
    vision_only: bool = False,
    id2label: Mapping[int, str] | None = None,
    trust_pickle: bool = False,
    num_attention_heads: int | None = None,
    mlp_adapter_scale: float | None = None,
    num_temporal_adapters: int | None = None,
    num_frames: int | None = None,
    state_dict_key: str | None = None,
    save_video_processor: bool = True,
) -> TFCoVRForVideoClassification | TFCoVRVisionModel:
    """Converts an AIM checkpoint file to a TF-CoVR model.

    Args:
        checkpoint_path: an mmaction AIM checkpoint, a stage-1 checkpoint of the TF-CoVR code (a bare
            `model.*` state dict or a Fabric `{"model": ...}` state), or a plain / safetensors state dict.
        output_dir: where to `save_pretrained` the model (and the official AIM extraction's video
            processor for its frame count and image size); nothing is written when `None`.
        preset: name of an official configuration (see [`aim_preset_names`]) giving what the weights
            cannot tell (heads, adapter scale, drop path) and, for `tfcovr-stage1`, the class names.
        vision_only: return a [`TFCoVRVisionModel`] (the video encoder alone). Forced when the
            checkpoint has no classification head.
        id2label: class names of the head (`{index: name}`); default the preset's label set, else
            `class_<index>`.
        trust_pickle: allow unpickling the file (see [`load_checkpoint`]).
        num_attention_heads: attention heads (needed without a preset).
        mlp_adapter_scale: AIM's joint-adapter scale `s` (`adapter_scale`; needed without a preset).
        num_temporal_adapters / num_frames: AIM's `num_tadapter` and the frame count, read off the
            weights; when given they are checked against them.
        state_dict_key: the checkpoint entry holding the weights, when it is not found automatically.
        save_video_processor: also save a [`TFCoVRVideoProcessor`] into `output_dir`.

    Returns:
        The converted model, in eval mode.

    Raises:
        DataFormatError: see [`convert_aim_state_dict`]; also a head whose size differs from the
            preset's or from `id2label`.
    """
    preset = _resolve_preset(preset)
    state_dict = load_state_dict(checkpoint_path, trust_pickle=trust_pickle, key=state_dict_key)
    vision_state, head, vision_config = convert_aim_state_dict(
        state_dict,
        num_attention_heads,
        mlp_adapter_scale,
        preset=preset,
        num_temporal_adapters=num_temporal_adapters,
        num_frames=num_frames,
    )
    if head is None and not vision_only:
        logger.warning("the checkpoint has no classification head (fc_cls): converting the video encoder only")
        vision_only = True

    if vision_only:
        model = TFCoVRVisionModel(vision_config)
        model.load_state_dict(vision_state, strict=True)
    else:
        num_labels = head["weight"].shape[0]
        if preset is not None and preset.num_labels is not None and preset.num_labels != num_labels:
            raise DataFormatError(
                f"the AIM preset {preset.name!r} does not match the checkpoint (num_labels: preset "
                f"{preset.num_labels}, "
                f"weights {num_labels})"
            )
        if id2label is None and preset is not None:
            id2label = preset.id2label()
        if id2label is None:
            id2label = {index: f"class_{index}" for index in range(num_labels)}
        if len(id2label) != num_labels:
            raise DataFormatError(f"the head has {num_labels} classes but {len(id2label)} labels were given")
        config = TFCoVRConfig(
            vision_config=vision_config.to_dict(), embed_dim=vision_config.hidden_size, id2label=dict(id2label)
        )
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
        write_model_card(
            output_dir,
            "classification",
            training_data=f"Converted from the AIM checkpoint `{Path(checkpoint_path).name}`"
            + (f" (official configuration `{preset.name}`)" if preset is not None else "")
            + (
                f" ({len(model.config.id2label)} action classes)"
                if isinstance(model, TFCoVRForVideoClassification)
                else " (video encoder only)"
            )
            + ".",
        )
    return model


def video_processor_for(vision_config: TFCoVRVisionConfig):
    """The official AIM extraction's video processor (TF-CoVR's `aim_emb.py`: frames at the segment
    centres, bicubic resize of the whole frame, CLIP normalisation) for the encoder's frame count and
    image size."""
    from ..video_processing_tfcovr import official_aim_video_processor

    return official_aim_video_processor(num_frames=vision_config.num_frames, image_size=vision_config.image_size)


def load_aim_encoder(
    path: str | os.PathLike,
    trust_pickle: bool = False,
    num_attention_heads: int | None = None,
    revision: str | None = None,
    *,
    preset: str | AIMPreset | None = None,
    mlp_adapter_scale: float | None = None,
) -> TFCoVRVisionModel:
    """The AIM video encoder stored at `path`: a `save_pretrained` folder or hub id (a stage-1
    `TFCoVRForVideoClassification`, a stage-2 `TFCoVRModel`, a bare `TFCoVRVisionModel` or a
    transformers CLIP model, read by [`load_vision_encoder`], a hub id at `revision`) or an AIM
    checkpoint file (converted on the fly with `preset` or the explicit settings, see [`convert_aim_checkpoint`])."""
    from ..hub import check_repo_id, is_local

    if not is_local(path):
        return load_vision_encoder(check_repo_id(os.fspath(path), "vision checkpoint"), revision=revision)
    path = Path(path)
    if path.is_dir():
        return load_vision_encoder(path)
    return convert_aim_checkpoint(
        path,
        preset=preset,
        vision_only=True,
        trust_pickle=trust_pickle,
        num_attention_heads=num_attention_heads,
        mlp_adapter_scale=mlp_adapter_scale,
        save_video_processor=False,
    )


__all__ = [
    "AIMPreset",
    "aim_config_from_state_dict",
    "aim_preset_names",
    "convert_aim_checkpoint",
    "convert_aim_state_dict",
    "find_aim_prefix",
    "find_aim_head",
    "load_aim_encoder",
    "load_aim_preset",
    "presets_matching",
    "read_aim_architecture",
    "resolve_aim_settings",
    "video_processor_for",
]
