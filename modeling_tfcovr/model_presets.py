"""Named model architectures (open_clip style): `model_configs/<name>.json` in this package, plus overrides.

A preset is a [`TFCoVRConfig`] as a dict (`vision_config` nested). Training commands take one with `--model-preset`
and change fields with `--config-overrides "key=value,..."`: a key is a field of [`TFCoVRConfig`]
(`classifier_dropout=0.1`), of its video encoder (`num_frames=8`, or explicitly `vision_config.num_frames=8`) or of
its text encoder (`text_config.hidden_size=256`); a value is read as JSON where it parses (`0.1`, `true`, `[8,16]`,
`{"channels": [8, 16]}`) and as a string otherwise.

Example:

```python
>>> from modeling_tfcovr.model_presets import list_presets, preset_config
>>> list_presets()
['aim-vit-b16', 'aim-vit-l14', 'synthetic-scratch']
>>> config = preset_config("synthetic-scratch", "num_frames=4,classifier_dropout=0.1")
>>> config.vision_config.num_frames, config.classifier_dropout, config.vision_config.conv_stem["channels"]
(4, 0.1, [16, 32, 64])

```
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from .configuration_tfcovr import TFCoVRConfig, TFCoVRVisionConfig
from .errors import TFCoVRError

__all__ = [
    "ConfigOverrideError",
    "apply_config_overrides",
    "config_with_overrides",
    "list_presets",
    "parse_config_overrides",
    "preset_config",
    "preset_dict",
]


class ConfigOverrideError(TFCoVRError, ValueError):
    """An unknown preset, or a `--config-overrides` entry that does not name a field or does not parse."""


def _folder():
    return resources.files(__package__) / "model_configs"


def list_presets() -> list[str]:
    """Names of the presets shipped with the package, sorted."""
    return sorted(entry.name.removesuffix(".json") for entry in _folder().iterdir() if entry.name.endswith(".json"))


def preset_dict(name: str) -> dict[str, Any]:
    """The config dict of preset `name` (a fresh copy)."""
    entry = _folder() / f"{name}.json"
    if not entry.is_file():
        raise ConfigOverrideError(f"unknown model preset {name!r}; presets: {', '.join(list_presets())}")
    return json.loads(entry.read_text(encoding="utf-8"))["config"]


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _split_items(text: str) -> list[str]:
    """Splits at commas outside brackets and braces, so that `channels=[8,16]` stays one item."""
    items, depth, current = [], 0, []
    for char in text:
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        if char == "," and depth == 0:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def parse_config_overrides(overrides: str | None) -> dict[str, Any]:
    """`"num_frames=8,vision_config.conv_stem={...}"` -> `{"num_frames": 8, "vision_config.conv_stem": {...}}`."""
    parsed: dict[str, Any] = {}
    for item in _split_items(overrides or ""):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigOverrideError(f"config override {item!r} is not key=value (e.g. num_frames=8)")
        parsed[key.strip()] = _parse_value(value.strip())
    return parsed


@functools.cache
def _field_names(config_class: type) -> frozenset[str]:
    """The fields of a config class (built once: a default `TFCoVRConfig` builds both sub-configs)."""
    return frozenset(config_class().to_dict())


def apply_config_overrides(config: dict[str, Any], overrides: dict[str, Any] | str | None) -> dict[str, Any]:
    """`config` (a [`TFCoVRConfig`] dict) with `overrides` applied. A bare key sets the field wherever it exists: in
    [`TFCoVRConfig`], in its video encoder's config, or both (`initializer_range`)."""
    if isinstance(overrides, str) or overrides is None:
        overrides = parse_config_overrides(overrides)
    config = json.loads(json.dumps(config))
    top_fields, vision_fields = _field_names(TFCoVRConfig), _field_names(TFCoVRVisionConfig)
    for key, value in overrides.items():
        section, _, name = key.rpartition(".")
        known = False
        if section == "" and name in top_fields - {"vision_config", "text_config"}:
            config[name], known = value, True
        if section in ("", "vision_config") and name in vision_fields:
            config.setdefault("vision_config", {})[name], known = value, True
        if section == "text_config" and name:
            config.setdefault("text_config", {})[name], known = value, True
        if not known:
            valid = sorted((top_fields | vision_fields) - {"vision_config", "text_config"})
            raise ConfigOverrideError(
                f"config override {key!r} is not a field of TFCoVRConfig or of its vision_config (or "
                "text_config.<field>); "
                f"fields: {', '.join(valid)}"
            )
    return config


def config_with_overrides(
    config: dict[str, Any], overrides: dict[str, Any] | str | None = None, source: str = "the config", **kwargs: Any
) -> TFCoVRConfig:
    """The [`TFCoVRConfig`] of the dict `config` with `overrides` applied (and `kwargs`, e.g. `id2label`, passed on);
    `embed_dim` follows the video encoder's `hidden_size` unless overridden. An invalid value raises
    [`ConfigOverrideError`] naming `source` and the overrides."""
    if isinstance(overrides, str) or overrides is None:
        overrides = parse_config_overrides(overrides)
    config = apply_config_overrides(config, overrides)
    if "embed_dim" not in overrides and "hidden_size" in config.get("vision_config", {}):
        config["embed_dim"] = config["vision_config"]["hidden_size"]  # the retrieval space is the video embedding's
    try:
        return TFCoVRConfig(**config, **kwargs)
    except (TypeError, ValueError) as error:
        if isinstance(error, TFCoVRError):
            raise
        raise ConfigOverrideError(f"{source} with overrides {overrides!r}: {error}") from error


def preset_config(name: str, overrides: dict[str, Any] | str | None = None, **kwargs: Any) -> TFCoVRConfig:
    """The [`TFCoVRConfig`] of preset `name` with `overrides` applied (and `kwargs`, e.g. `id2label`, passed on)."""
    return config_with_overrides(preset_dict(name), overrides, source=f"model preset {name!r}", **kwargs)
