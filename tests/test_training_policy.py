"""Training policy lives outside the configs: `set_trainable` (explicit, reversible freezing), `adapter_initialization`
(AIM's zero init or random), the stage-2 gather as a training argument; named presets with `--config_overrides`; and
configs saved before the policy fields moved still load into the same architecture."""

from __future__ import annotations

import json

import pytest
import torch

import modeling_tfcovr as mt
from modeling_tfcovr.model_presets import (
    ConfigOverrideError,
    apply_config_overrides,
    list_presets,
    parse_config_overrides,
    preset_config,
)
from modeling_tfcovr.training.freezing import set_trainable

from .conftest import TINY_VISION, tiny_text_config


def _aim_or_post_layernorm(name: str) -> bool:
    return "_adapter." in name or name.endswith("temporal_embedding") or "post_layernorm" in name


def _trainable(model: torch.nn.Module) -> set[str]:
    return {name for name, parameter in model.named_parameters() if parameter.requires_grad}


@pytest.fixture
def retrieval_model() -> mt.TFCoVRModel:
    config = mt.TFCoVRConfig(
        vision_config=TINY_VISION,
        text_config=tiny_text_config(20),
        embed_dim=32,
        combiner_projection_dim=48,
        combiner_hidden_dim=64,
    )
    return mt.TFCoVRModel(config)


def test_models_freeze_nothing_themselves(retrieval_model):
    assert _trainable(retrieval_model) == {name for name, _ in retrieval_model.named_parameters()}
    assert retrieval_model.gather_across_processes is False


def test_unfreezing_the_vision_encoder_makes_it_trainable_again(retrieval_model):
    """The bug this replaces: `freeze_vision_encoder=False` unfroze nothing, since freezing only ever set False."""
    names = [name for name, _ in retrieval_model.named_parameters()]
    vision = {n for n in names if n.startswith("vision_model.")}
    text = {n for n in names if n.startswith("text_model.")}
    head = set(names) - vision - text

    count = set_trainable(retrieval_model, vision_encoder=False)
    assert _trainable(retrieval_model) == head
    assert count == sum(p.numel() for n, p in retrieval_model.named_parameters() if n in head)

    set_trainable(retrieval_model, vision_encoder=True)  # AIM's recipe: adapters, temporal embedding, post-LN
    aim = {n for n in vision if _aim_or_post_layernorm(n.removeprefix("vision_model."))}
    assert aim and _trainable(retrieval_model) == head | aim

    count = set_trainable(retrieval_model, vision_encoder=True, backbone=True, text_encoder=True)
    assert _trainable(retrieval_model) == set(names)
    assert count == sum(p.numel() for p in retrieval_model.parameters())

    set_trainable(retrieval_model, vision_encoder=False)  # and back
    assert _trainable(retrieval_model) == head


def test_frozen_encoders_stay_in_evaluation_mode_while_training(retrieval_model):
    set_trainable(retrieval_model, vision_encoder=False)
    retrieval_model.train()
    assert retrieval_model.combiner.training
    assert not retrieval_model.vision_model.training and not retrieval_model.text_model.training
    set_trainable(retrieval_model, vision_encoder=True)
    retrieval_model.train()
    assert retrieval_model.vision_model.training and not retrieval_model.text_model.training


def test_stage1_policy_on_a_classifier_and_a_bare_encoder():
    config = mt.TFCoVRConfig(vision_config=TINY_VISION, embed_dim=32, id2label={0: "a", 1: "b"})
    classifier = mt.TFCoVRForVideoClassification(config)
    names = {name for name, _ in classifier.named_parameters()}
    set_trainable(classifier)
    assert _trainable(classifier) == {
        n for n in names if n.startswith("classifier.") or _aim_or_post_layernorm(n.removeprefix("vision_model."))
    }
    set_trainable(classifier, backbone=True)
    assert _trainable(classifier) == names
    encoder = classifier.vision_model
    set_trainable(encoder, vision_encoder=False)
    assert not _trainable(encoder)
    with pytest.raises(TypeError, match="takes a TF-CoVR model, got Linear"):
        set_trainable(torch.nn.Linear(2, 2))


def test_adapter_initialization_is_zero_by_default_and_random_on_request():
    config = mt.TFCoVRVisionConfig(**TINY_VISION)
    zero = mt.TFCoVRVisionModel(config)
    assert not zero.temporal_embedding.any()
    assert all(not layer.temporal_adapter.fc2.weight.any() for layer in zero.encoder.layers)
    with mt.adapter_initialization("random"):
        random = mt.TFCoVRVisionModel(config)
    std = float(random.temporal_embedding.std())
    assert 0.5 * config.initializer_range < std < 2 * config.initializer_range
    assert all(layer.temporal_adapter.fc2.weight.abs().max() > 0 for layer in random.encoder.layers)
    assert not mt.TFCoVRVisionModel(config).temporal_embedding.any()  # the block's policy does not leak
    with pytest.raises(ValueError, match="'zero' or 'random'"), mt.adapter_initialization("small"):
        pass


def test_configs_saved_with_the_policy_fields_load_into_the_same_architecture(tmp_path):
    """A config.json of an earlier version (policy fields, the two conv-stem fields) loads without them, with the
    stem as `conv_stem`, into a model with the same parameter names, so its weights load strictly."""
    legacy_vision = {
        **TINY_VISION,
        "conv_stem_channels": [8, 16],
        "conv_stem_temporal_kernel": 3,
        "zero_init_adapters": False,
        "freeze_backbone": True,
    }
    legacy = {
        "model_type": "tfcovr",
        "vision_config": {"model_type": "tfcovr_vision_model", **legacy_vision},
        "embed_dim": 32,
        "freeze_vision_encoder": True,
        "freeze_text_encoder": False,
        "gather_across_processes": True,
        "id2label": {"0": "a", "1": "b"},
    }
    (tmp_path / "config.json").write_text(json.dumps(legacy))
    config = mt.TFCoVRConfig.from_pretrained(tmp_path)
    assert config.vision_config.conv_stem == {"channels": [8, 16], "temporal_kernel": 3}
    saved = config.to_dict()
    for name in ("freeze_vision_encoder", "freeze_text_encoder", "gather_across_processes"):
        assert name not in saved
    for name in ("freeze_backbone", "zero_init_adapters", "conv_stem_channels", "conv_stem_temporal_kernel"):
        assert name not in saved["vision_config"]

    current = mt.TFCoVRConfig(
        vision_config={**TINY_VISION, "conv_stem": {"channels": [8, 16], "temporal_kernel": 3}},
        embed_dim=32,
        id2label={0: "a", 1: "b"},
    )
    old_model = mt.TFCoVRForVideoClassification(config)
    new_model = mt.TFCoVRForVideoClassification(current)
    assert "vision_model.embeddings.conv_stem_temporal.conv.weight" in new_model.state_dict()
    new_model.load_state_dict(old_model.state_dict(), strict=True)


def test_presets_and_overrides_build_the_configs_the_mirrored_fields_built():
    assert list_presets() == ["aim-vit-b16", "aim-vit-l14", "synthetic-scratch"]
    # The main job's encoder, written out field by field as the demo's argument list used to pass it.
    expected = mt.TFCoVRConfig(
        vision_config=mt.TFCoVRVisionConfig(
            hidden_size=64,
            intermediate_size=256,
            num_hidden_layers=4,
            num_attention_heads=4,
            image_size=32,
            patch_size=16,
            num_frames=8,
            drop_path_rate=0.0,
            conv_stem={"channels": [16, 32, 64], "temporal_kernel": 3},
            initializer_range=0.1,
        ),
        embed_dim=64,
        classifier_dropout=0.0,
        initializer_range=0.1,
    )
    assert preset_config("synthetic-scratch").to_dict() == expected.to_dict()
    assert preset_config("aim-vit-b16").to_dict() == mt.TFCoVRConfig().to_dict()  # the paper's defaults
    large = preset_config("aim-vit-l14")
    assert (large.vision_config.hidden_size, large.vision_config.patch_size, large.embed_dim) == (1024, 14, 1024)

    overridden = preset_config(
        "aim-vit-b16",
        "num_frames=4,hidden_size=32,num_attention_heads=2,initializer_range=0.1,"
        'vision_config.conv_stem={"channels": [8, 16]},classifier_dropout=0.3',
    )
    assert overridden.vision_config.num_frames == 4 and overridden.vision_config.conv_stem == {"channels": [8, 16]}
    assert overridden.embed_dim == 32  # follows the encoder's width
    assert overridden.initializer_range == overridden.vision_config.initializer_range == 0.1  # a field of both
    assert overridden.classifier_dropout == 0.3


def test_config_overrides_parse_json_values_and_name_mistakes():
    assert parse_config_overrides(' num_frames=8, hn_nce_variant=official ,conv_stem={"channels": [8,16]},x=[1,2]') == {
        "num_frames": 8,
        "hn_nce_variant": "official",
        "conv_stem": {"channels": [8, 16]},
        "x": [1, 2],
    }
    assert parse_config_overrides(None) == {} == parse_config_overrides("")
    with pytest.raises(ConfigOverrideError, match="'num_frames' is not key=value"):
        parse_config_overrides("num_frames")
    with pytest.raises(ConfigOverrideError, match="config override 'num_frame' is not a field .* fields: .*num_frames"):
        apply_config_overrides({}, "num_frame=8")
    with pytest.raises(ConfigOverrideError, match="unknown model preset 'vit-huge'; presets: aim-vit-b16, aim-vit-l14"):
        preset_config("vit-huge")
    with pytest.raises(ConfigOverrideError, match="synthetic-scratch.*odd"):
        preset_config("synthetic-scratch", 'conv_stem={"channels": [8], "temporal_kernel": 2}')


def test_gathering_is_a_stage2_training_argument():
    from modeling_tfcovr.training.stage2 import RetrievalTrainingArguments

    assert RetrievalTrainingArguments(output_dir="unused").gather_across_processes is True
    assert "gather_across_processes" not in mt.TFCoVRConfig().to_dict()
