"""Outputs of the models in transformers v5's conventions: hidden states and attention weights recorded on request
(`output_hidden_states`, `output_attentions`, `output_temporal_attentions`), `return_dict=False` tuples, and the
weight initialisation unchanged by the move to class-dispatched `_init_weights`."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F

import modeling_tfcovr as mt

from .conftest import TINY_VISION, randomize_aim_parameters

BATCH, FRAMES = 2, 3
NUM_TOKENS = (32 // 8) ** 2 + 1  # patches of a 32 px frame at patch size 8, plus CLS
HEADS, HEAD_DIM = 4, 8


def _vision_model(attn_implementation: str = "eager", seed: int = 0, **overrides) -> mt.TFCoVRVisionModel:
    torch.manual_seed(seed)
    config = mt.TFCoVRVisionConfig(**{**TINY_VISION, **overrides}, attn_implementation=attn_implementation)
    model = mt.TFCoVRVisionModel(config).eval()
    randomize_aim_parameters(model, seed=seed)
    return model


def _videos(seed: int = 1) -> torch.Tensor:
    return torch.randn(BATCH, FRAMES, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def _attention_weights(layer, tokens: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) of `layer.self_attn` on `layer_norm1(tokens)`, written out: (batch, heads, n, n)."""
    attention = layer.self_attn
    normed = layer.layer_norm1(tokens)
    batch, length, _ = normed.shape
    queries = (normed @ attention.q_proj.weight.T + attention.q_proj.bias).view(batch, length, HEADS, HEAD_DIM)
    keys = (normed @ attention.k_proj.weight.T + attention.k_proj.bias).view(batch, length, HEADS, HEAD_DIM)
    scores = torch.einsum("bqhd,bkhd->bhqk", queries, keys) / HEAD_DIM**0.5
    return scores.softmax(dim=-1)


def test_hidden_states_are_the_embeddings_and_every_layer_output_and_pool_to_the_video_embedding():
    model = _vision_model()
    videos = _videos()
    with torch.no_grad():
        output = model(videos, output_hidden_states=True)
        frames = videos.flatten(0, 1)
        embedded = (
            model.embeddings(frames).view(BATCH, FRAMES, NUM_TOKENS, 32) + model.temporal_embedding[:, :FRAMES, None]
        )
        expected_first = model.pre_layrnorm(embedded.view(BATCH * FRAMES, NUM_TOKENS, 32))
    assert len(output.hidden_states) == TINY_VISION["num_hidden_layers"] + 1
    assert all(state.shape == (BATCH * FRAMES, NUM_TOKENS, 32) for state in output.hidden_states)
    torch.testing.assert_close(output.hidden_states[0], expected_first)
    # The last one is the last layer's output, before post_layernorm; its CLS tokens pool to the video embedding.
    torch.testing.assert_close(output.hidden_states[-1].view(BATCH, FRAMES, NUM_TOKENS, 32), output.last_hidden_state)
    with torch.no_grad():
        cls_tokens = model.post_layernorm(output.hidden_states[-1][:, 0]).view(BATCH, FRAMES, 32)
    torch.testing.assert_close(cls_tokens, output.frame_embeds)
    torch.testing.assert_close(cls_tokens.mean(dim=1), output.pooler_output)
    # Each layer's output is that layer applied to the previous state.
    with torch.no_grad():
        for index, layer in enumerate(model.encoder.layers):
            layer_output = layer(output.hidden_states[index], FRAMES)[0]
            torch.testing.assert_close(layer_output, output.hidden_states[index + 1])


def test_spatial_attentions_equal_the_softmax_of_each_layer_on_its_input():
    # Without the temporal branch the spatial attention's input is the layer's input, so its weights can be written
    # out from the recorded hidden states.
    model = _vision_model(use_temporal_adapter=False)
    with torch.no_grad():
        output = model(_videos(), output_attentions=True, output_hidden_states=True)
        assert len(output.attentions) == TINY_VISION["num_hidden_layers"]
        for index, layer in enumerate(model.encoder.layers):
            weights = output.attentions[index]
            assert weights.shape == (BATCH * FRAMES, HEADS, NUM_TOKENS, NUM_TOKENS)
            torch.testing.assert_close(weights.sum(dim=-1), torch.ones(BATCH * FRAMES, HEADS, NUM_TOKENS))
            torch.testing.assert_close(weights, _attention_weights(layer, output.hidden_states[index]))
    assert output.temporal_attentions is None  # not requested


def test_temporal_attentions_are_attention_across_frames_at_each_token_position():
    model = _vision_model()
    with torch.no_grad():
        output = model(_videos(), output_temporal_attentions=True, output_hidden_states=True)
        assert output.attentions is None  # output_attentions was not asked for
        assert len(output.temporal_attentions) == TINY_VISION["num_hidden_layers"]
        for index, layer in enumerate(model.encoder.layers):
            tokens = output.hidden_states[index].view(BATCH, FRAMES, NUM_TOKENS, 32).transpose(1, 2)
            expected = _attention_weights(layer, tokens.reshape(BATCH * NUM_TOKENS, FRAMES, 32))
            assert output.temporal_attentions[index].shape == (BATCH * NUM_TOKENS, HEADS, FRAMES, FRAMES)
            torch.testing.assert_close(output.temporal_attentions[index], expected)


def test_recording_changes_no_number_and_nothing_is_returned_unless_asked():
    model = _vision_model()
    videos = _videos()
    with torch.no_grad():
        plain = model(videos)
        recorded = model(videos, output_attentions=True, output_hidden_states=True, output_temporal_attentions=True)
        declined = model(videos, output_attentions=False, output_hidden_states=False)
    for output in (plain, declined):
        assert output.hidden_states is None and output.attentions is None and output.temporal_attentions is None
        assert list(output.keys()) == ["pooler_output", "frame_embeds", "last_hidden_state"]
    assert torch.equal(plain.pooler_output, recorded.pooler_output)
    assert torch.equal(plain.last_hidden_state, recorded.last_hidden_state)
    # The SDPA kernel gives the same embedding as the eager one.
    sdpa = _vision_model("sdpa")
    sdpa.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(sdpa(videos).pooler_output, plain.pooler_output, atol=1e-5, rtol=1e-5)


def test_return_dict_false_gives_the_fields_in_order_as_a_tuple():
    model = _vision_model()
    videos = _videos()
    with torch.no_grad():
        output = model(videos, output_attentions=True, output_hidden_states=True)
        as_tuple = model(videos, output_attentions=True, output_hidden_states=True, return_dict=False)
        plain_tuple = model(videos, return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 5
    for value, expected in zip(as_tuple, (output.pooler_output, output.frame_embeds, output.last_hidden_state)):
        assert torch.equal(value, expected)
    assert all(torch.equal(a, b) for a, b in zip(as_tuple[3], output.hidden_states))
    assert all(torch.equal(a, b) for a, b in zip(as_tuple[4], output.attentions))
    assert isinstance(plain_tuple, tuple) and len(plain_tuple) == 3
    assert torch.equal(plain_tuple[0], output.pooler_output)


def test_sdpa_returns_no_weights_as_transformers_clip_does(caplog):
    # The SDPA kernel computes no attention weights. As in transformers' own CLIPVisionModel: asked per call, it warns
    # (once per process) and the tuple is empty; asked in the config at construction, the tuple is empty; switched on
    # later in the config of an SDPA model, the config refuses. `attn_implementation="eager"` records them.
    from transformers import CLIPVisionConfig, CLIPVisionModel

    clip_fields = {k: v for k, v in TINY_VISION.items() if k != "num_frames"}
    clip = CLIPVisionModel(CLIPVisionConfig(**clip_fields, attn_implementation="sdpa")).eval()
    model = _vision_model("sdpa")
    with torch.no_grad(), caplog.at_level(logging.WARNING):
        assert clip(torch.randn(1, 3, 32, 32), output_attentions=True).attentions == ()
        assert model(_videos(), output_attentions=True).attentions == ()
    configured = mt.TFCoVRVisionModel(mt.TFCoVRVisionConfig(**TINY_VISION, output_attentions=True)).eval()
    with torch.no_grad():
        assert configured(_videos()).attentions == ()
    with pytest.raises(ValueError, match="output_attentions"):
        model.config.output_attentions = True
    eager = mt.TFCoVRVisionModel(
        mt.TFCoVRVisionConfig(**TINY_VISION, output_attentions=True, attn_implementation="eager")
    )
    with torch.no_grad():
        assert len(eager.eval()(_videos()).attentions) == TINY_VISION["num_hidden_layers"]


def test_classifier_returns_the_encoders_hidden_states_and_attentions(tiny_config):
    tiny_config.vision_config._attn_implementation = "eager"
    model = mt.TFCoVRForVideoClassification(tiny_config).eval()
    randomize_aim_parameters(model)
    videos = _videos()
    labels = torch.tensor([1, 3])
    with torch.no_grad():
        output = model(videos, labels=labels, output_attentions=True, output_hidden_states=True)
        encoder = model.vision_model(videos, output_attentions=True, output_hidden_states=True)
        plain = model(videos, labels=labels)
        as_tuple = model(videos, labels=labels, return_dict=False)
    assert len(output.attentions) == 2 and len(output.hidden_states) == 3
    assert all(torch.equal(a, b) for a, b in zip(output.attentions, encoder.attentions))
    assert all(torch.equal(a, b) for a, b in zip(output.hidden_states, encoder.hidden_states))
    expected_logits = model.classifier(encoder.pooler_output)  # dropout is off in eval mode
    torch.testing.assert_close(output.logits, expected_logits)
    torch.testing.assert_close(output.loss, F.cross_entropy(expected_logits, labels))
    assert plain.attentions is None and plain.hidden_states is None
    assert len(as_tuple) == 3 and torch.equal(as_tuple[0], plain.loss) and torch.equal(as_tuple[1], plain.logits)


def test_retrieval_model_returns_the_encoders_outputs_only_when_asked(tiny_config, tiny_processor):
    tiny_config.vision_config._attn_implementation = "eager"
    model = mt.TFCoVRModel(tiny_config).eval()
    randomize_aim_parameters(model)
    text = tiny_processor(text=["one more rotation", "reverse the direction"])
    inputs = dict(input_ids=text["input_ids"], attention_mask=text["attention_mask"])
    queries, targets = _videos(1), _videos(2)
    with torch.no_grad():
        plain = model(pixel_values_videos=queries, target_pixel_values_videos=targets, **inputs)
        plain_tuple = model(
            pixel_values_videos=queries, target_pixel_values_videos=targets, return_dict=False, **inputs
        )
        recorded = model(
            pixel_values_videos=queries, target_pixel_values_videos=targets, output_attentions=True, **inputs
        )
        target_encoder = model.vision_model(targets, output_attentions=True)
    assert plain.query_vision_model_output is None and plain.target_vision_model_output is None
    assert len(plain_tuple) == 4
    for value, expected in zip(
        plain_tuple, (plain.loss, plain.logits_per_query, plain.query_embeds, plain.target_embeds)
    ):
        assert torch.equal(value, expected)
    assert torch.equal(recorded.logits_per_query, plain.logits_per_query)
    assert len(recorded.query_vision_model_output.attentions) == 2
    assert recorded.query_vision_model_output.hidden_states is None
    assert all(
        torch.equal(a, b) for a, b in zip(recorded.target_vision_model_output.attentions, target_encoder.attentions)
    )
    torch.testing.assert_close(recorded.target_embeds, F.normalize(target_encoder.pooler_output, dim=-1))


# ------------------------------------------------------------------------------------------------------------------
# Initialisation: per parameter (sum, sum of absolute values) of models built with seed 1234, recorded with the
# implementation before `_init_weights` dispatched on module classes (flag attributes on plain layers).
# ------------------------------------------------------------------------------------------------------------------

INIT_TEXT = dict(
    model_type="clip_text_model",
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=1,
    num_attention_heads=4,
    projection_dim=24,
    vocab_size=20,
    max_position_embeddings=32,
    bos_token_id=2,
    eos_token_id=3,
    pad_token_id=0,
)
SCRATCH_VISION = {**TINY_VISION, "conv_stem": {"channels": [8, 16], "temporal_kernel": 3}, "num_temporal_adapters": 2}


def _scratch_vision() -> mt.TFCoVRVisionModel:
    with mt.adapter_initialization("random"):
        return mt.TFCoVRVisionModel(mt.TFCoVRVisionConfig(**SCRATCH_VISION))


def _init_config() -> mt.TFCoVRConfig:
    return mt.TFCoVRConfig(
        vision_config=TINY_VISION,
        text_config=INIT_TEXT,
        embed_dim=32,
        combiner_projection_dim=48,
        combiner_hidden_dim=64,
        id2label={i: f"c{i}" for i in range(5)},
    )


INIT_BUILDERS = {
    "vision_scratch": _scratch_vision,
    "classifier": lambda: mt.TFCoVRForVideoClassification(_init_config()),
    "retrieval": lambda: mt.TFCoVRModel(_init_config()),
}


@pytest.mark.parametrize("case", sorted(INIT_BUILDERS))
def test_initialisation_is_unchanged_for_a_given_seed(case):
    torch.manual_seed(1234)
    state = INIT_BUILDERS[case]().state_dict()
    expected = INIT_CHECKSUMS[case]
    assert sorted(state) == sorted(expected)
    for name, tensor in state.items():
        total, absolute = float(tensor.double().sum()), float(tensor.double().abs().sum())
        assert (total, absolute) == pytest.approx(expected[name], abs=2e-6), name


INIT_CHECKSUMS = {
    "vision_scratch": {
        "embeddings.class_embedding": (-1.314987, 4.011636),
        "embeddings.conv_stem.0.bias": (0.0, 0.0),
        "embeddings.conv_stem.0.weight": (-2.571358, 47.376666),
        "embeddings.conv_stem.2.bias": (0.0, 0.0),
        "embeddings.conv_stem.2.weight": (-8.917828, 155.059406),
        "embeddings.conv_stem_temporal.conv.bias": (0.0, 0.0),
        "embeddings.conv_stem_temporal.conv.weight": (-7.454656, 125.544741),
        "embeddings.patch_embedding.weight": (0.635403, 32.663057),
        "embeddings.position_embedding.weight": (0.439697, 9.001673),
        "encoder.layers.0.layer_norm1.bias": (0.0, 0.0),
        "encoder.layers.0.layer_norm1.weight": (32.0, 32.0),
        "encoder.layers.0.layer_norm2.bias": (0.0, 0.0),
        "encoder.layers.0.layer_norm2.weight": (32.0, 32.0),
        "encoder.layers.0.mlp.fc1.bias": (0.0, 0.0),
        "encoder.layers.0.mlp.fc1.weight": (0.058271, 32.222592),
        "encoder.layers.0.mlp.fc2.bias": (0.0, 0.0),
        "encoder.layers.0.mlp.fc2.weight": (0.067725, 32.250429),
        "encoder.layers.0.mlp_adapter.fc1.bias": (0.0, 0.0),
        "encoder.layers.0.mlp_adapter.fc1.weight": (0.253733, 4.233641),
        "encoder.layers.0.mlp_adapter.fc2.bias": (0.0, 0.0),
        "encoder.layers.0.mlp_adapter.fc2.weight": (0.256302, 4.028508),
        "encoder.layers.0.self_attn.k_proj.bias": (0.0, 0.0),
        "encoder.layers.0.self_attn.k_proj.weight": (0.094678, 15.865115),
        "encoder.layers.0.self_attn.out_proj.bias": (0.0, 0.0),
        "encoder.layers.0.self_attn.out_proj.weight": (-0.521608, 16.436131),
        "encoder.layers.0.self_attn.q_proj.bias": (0.0, 0.0),
        "encoder.layers.0.self_attn.q_proj.weight": (1.290251, 16.531155),
        "encoder.layers.0.self_attn.v_proj.bias": (0.0, 0.0),
        "encoder.layers.0.self_attn.v_proj.weight": (-0.215951, 16.727861),
        "encoder.layers.0.spatial_adapter.fc1.bias": (0.0, 0.0),
        "encoder.layers.0.spatial_adapter.fc1.weight": (-0.646645, 4.063083),
        "encoder.layers.0.spatial_adapter.fc2.bias": (0.0, 0.0),
        "encoder.layers.0.spatial_adapter.fc2.weight": (0.13817, 4.308303),
        "encoder.layers.0.temporal_adapter.fc1.bias": (0.0, 0.0),
        "encoder.layers.0.temporal_adapter.fc1.weight": (0.402458, 4.111174),
        "encoder.layers.0.temporal_adapter.fc2.bias": (0.0, 0.0),
        "encoder.layers.0.temporal_adapter.fc2.weight": (-0.078954, 4.265718),
        "encoder.layers.0.temporal_input_adapter.fc1.bias": (0.0, 0.0),
        "encoder.layers.0.temporal_input_adapter.fc1.weight": (-0.71066, 4.120646),
        "encoder.layers.0.temporal_input_adapter.fc2.bias": (0.0, 0.0),
        "encoder.layers.0.temporal_input_adapter.fc2.weight": (-0.163761, 4.093012),
        "encoder.layers.1.layer_norm1.bias": (0.0, 0.0),
        "encoder.layers.1.layer_norm1.weight": (32.0, 32.0),
        "encoder.layers.1.layer_norm2.bias": (0.0, 0.0),
        "encoder.layers.1.layer_norm2.weight": (32.0, 32.0),
        "encoder.layers.1.mlp.fc1.bias": (0.0, 0.0),
        "encoder.layers.1.mlp.fc1.weight": (-0.73017, 31.963622),
        "encoder.layers.1.mlp.fc2.bias": (0.0, 0.0),
        "encoder.layers.1.mlp.fc2.weight": (-0.825092, 32.904111),
        "encoder.layers.1.mlp_adapter.fc1.bias": (0.0, 0.0),
        "encoder.layers.1.mlp_adapter.fc1.weight": (-0.318491, 4.178838),
        "encoder.layers.1.mlp_adapter.fc2.bias": (0.0, 0.0),
        "encoder.layers.1.mlp_adapter.fc2.weight": (-0.091028, 4.174437),
        "encoder.layers.1.self_attn.k_proj.bias": (0.0, 0.0),
        "encoder.layers.1.self_attn.k_proj.weight": (1.180897, 17.554665),
        "encoder.layers.1.self_attn.out_proj.bias": (0.0, 0.0),
        "encoder.layers.1.self_attn.out_proj.weight": (-0.129228, 16.904163),
        "encoder.layers.1.self_attn.q_proj.bias": (0.0, 0.0),
        "encoder.layers.1.self_attn.q_proj.weight": (-1.179148, 16.279807),
        "encoder.layers.1.self_attn.v_proj.bias": (0.0, 0.0),
        "encoder.layers.1.self_attn.v_proj.weight": (0.999664, 16.789894),
        "encoder.layers.1.spatial_adapter.fc1.bias": (0.0, 0.0),
        "encoder.layers.1.spatial_adapter.fc1.weight": (-0.258021, 4.146254),
        "encoder.layers.1.spatial_adapter.fc2.bias": (0.0, 0.0),
        "encoder.layers.1.spatial_adapter.fc2.weight": (0.071898, 3.975487),
        "encoder.layers.1.temporal_adapter.fc1.bias": (0.0, 0.0),
        "encoder.layers.1.temporal_adapter.fc1.weight": (0.508042, 3.935065),
        "encoder.layers.1.temporal_adapter.fc2.bias": (0.0, 0.0),
        "encoder.layers.1.temporal_adapter.fc2.weight": (-0.170815, 4.206921),
        "encoder.layers.1.temporal_input_adapter.fc1.bias": (0.0, 0.0),
        "encoder.layers.1.temporal_input_adapter.fc1.weight": (-0.160622, 3.927274),
        "encoder.layers.1.temporal_input_adapter.fc2.bias": (0.0, 0.0),
        "encoder.layers.1.temporal_input_adapter.fc2.weight": (0.333661, 3.970953),
        "post_layernorm.bias": (0.0, 0.0),
        "post_layernorm.weight": (32.0, 32.0),
        "pre_layrnorm.bias": (0.0, 0.0),
        "pre_layrnorm.weight": (32.0, 32.0),
        "temporal_embedding": (0.090038, 2.050698),
    },
    "classifier": {
        "classifier.bias": (0.0, 0.0),
        "classifier.weight": (0.267684, 2.55895),
        "vision_model.embeddings.class_embedding": (1.528209, 4.736651),
        "vision_model.embeddings.patch_embedding.weight": (0.572496, 97.839732),
        "vision_model.embeddings.position_embedding.weight": (0.123091, 8.742982),
        "vision_model.encoder.layers.0.layer_norm1.bias": (0.0, 0.0),
        "vision_model.encoder.layers.0.layer_norm1.weight": (32.0, 32.0),
        "vision_model.encoder.layers.0.layer_norm2.bias": (0.0, 0.0),
        "vision_model.encoder.layers.0.layer_norm2.weight": (32.0, 32.0),
        "vision_model.encoder.layers.0.mlp.fc1.bias": (0.0, 0.0),
        "vision_model.encoder.layers.0.mlp.fc1.weight": (0.139392, 32.255019),
        "vision_model.encoder.layers.0.mlp.fc2.bias": (0.0, 0.0),
        "vision_model.encoder.layers.0.mlp.fc2.weight": (-0.914687, 31.822862),
        "vision_model.encoder.layers.0.mlp_adapter.fc1.bias": (0.0, 0.0),
        "vision_model.encoder.layers.0.mlp_adapter.fc1.weight": (0.375656, 4.251394),
        "vision_model.encoder.layers.0.mlp_adapter.fc2.bias": (0.0, 0.0),
        "vision_model.encoder.layers.0.mlp_adapter.fc2.weight": (0.0, 0.0),
        "vision_model.encoder.layers.0.self_attn.k_proj.bias": (0.0, 0.0),
        "vision_model.encoder.layers.0.self_attn.k_proj.weight": (0.613791, 16.420537),
        "vision_model.encoder.layers.0.self_attn.out_proj.bias": (0.0, 0.0),
        "vision_model.encoder.layers.0.self_attn.out_proj.weight": (-0.224359, 16.524398),
        "vision_model.encoder.layers.0.self_attn.q_proj.bias": (0.0, 0.0),
        "vision_model.encoder.layers.0.self_attn.q_proj.weight": (1.05534, 17.007664),
        "vision_model.encoder.layers.0.self_attn.v_proj.bias": (0.0, 0.0),
        "vision_model.encoder.layers.0.self_attn.v_proj.weight": (0.368555, 16.777859),
        "vision_model.encoder.layers.0.spatial_adapter.fc1.bias": (0.0, 0.0),
        "vision_model.encoder.layers.0.spatial_adapter.fc1.weight": (0.48652, 4.129118),
        "vision_model.encoder.layers.0.spatial_adapter.fc2.bias": (0.0, 0.0),
        "vision_model.encoder.layers.0.spatial_adapter.fc2.weight": (0.0, 0.0),
        "vision_model.encoder.layers.0.temporal_adapter.fc1.bias": (0.0, 0.0),
        "vision_model.encoder.layers.0.temporal_adapter.fc1.weight": (0.202312, 4.363964),
        "vision_model.encoder.layers.0.temporal_adapter.fc2.bias": (0.0, 0.0),
        "vision_model.encoder.layers.0.temporal_adapter.fc2.weight": (0.0, 0.0),
        "vision_model.encoder.layers.1.layer_norm1.bias": (0.0, 0.0),
        "vision_model.encoder.layers.1.layer_norm1.weight": (32.0, 32.0),
        "vision_model.encoder.layers.1.layer_norm2.bias": (0.0, 0.0),
        "vision_model.encoder.layers.1.layer_norm2.weight": (32.0, 32.0),
        "vision_model.encoder.layers.1.mlp.fc1.bias": (0.0, 0.0),
        "vision_model.encoder.layers.1.mlp.fc1.weight": (-2.455606, 32.169673),
        "vision_model.encoder.layers.1.mlp.fc2.bias": (0.0, 0.0),
        "vision_model.encoder.layers.1.mlp.fc2.weight": (1.181369, 33.082225),
        "vision_model.encoder.layers.1.mlp_adapter.fc1.bias": (0.0, 0.0),
        "vision_model.encoder.layers.1.mlp_adapter.fc1.weight": (-0.290319, 4.104989),
        "vision_model.encoder.layers.1.mlp_adapter.fc2.bias": (0.0, 0.0),
        "vision_model.encoder.layers.1.mlp_adapter.fc2.weight": (0.0, 0.0),
        "vision_model.encoder.layers.1.self_attn.k_proj.bias": (0.0, 0.0),
        "vision_model.encoder.layers.1.self_attn.k_proj.weight": (-0.048399, 16.139155),
        "vision_model.encoder.layers.1.self_attn.out_proj.bias": (0.0, 0.0),
        "vision_model.encoder.layers.1.self_attn.out_proj.weight": (-0.569194, 16.531391),
        "vision_model.encoder.layers.1.self_attn.q_proj.bias": (0.0, 0.0),
        "vision_model.encoder.layers.1.self_attn.q_proj.weight": (0.416463, 16.73431),
        "vision_model.encoder.layers.1.self_attn.v_proj.bias": (0.0, 0.0),
        "vision_model.encoder.layers.1.self_attn.v_proj.weight": (-0.019114, 16.077476),
        "vision_model.encoder.layers.1.spatial_adapter.fc1.bias": (0.0, 0.0),
        "vision_model.encoder.layers.1.spatial_adapter.fc1.weight": (-0.848135, 4.052099),
        "vision_model.encoder.layers.1.spatial_adapter.fc2.bias": (0.0, 0.0),
        "vision_model.encoder.layers.1.spatial_adapter.fc2.weight": (0.0, 0.0),
        "vision_model.encoder.layers.1.temporal_adapter.fc1.bias": (0.0, 0.0),
        "vision_model.encoder.layers.1.temporal_adapter.fc1.weight": (-0.067177, 4.358543),
        "vision_model.encoder.layers.1.temporal_adapter.fc2.bias": (0.0, 0.0),
        "vision_model.encoder.layers.1.temporal_adapter.fc2.weight": (0.0, 0.0),
        "vision_model.post_layernorm.bias": (0.0, 0.0),
        "vision_model.post_layernorm.weight": (32.0, 32.0),
        "vision_model.pre_layrnorm.bias": (0.0, 0.0),
        "vision_model.pre_layrnorm.weight": (32.0, 32.0),
        "vision_model.temporal_embedding": (0.0, 0.0),
    },
    "retrieval": {
        "combiner.combiner_layer.bias": (0.0, 0.0),
        "combiner.combiner_layer.weight": (-0.833065, 97.478255),
        "combiner.dynamic_scalar.0.bias": (0.0, 0.0),
        "combiner.dynamic_scalar.0.weight": (-2.211523, 98.703084),
        "combiner.dynamic_scalar.3.bias": (0.0, 0.0),
        "combiner.dynamic_scalar.3.weight": (-0.107339, 1.00695),
        "combiner.image_projection_layer.bias": (0.0, 0.0),
        "combiner.image_projection_layer.weight": (-0.57716, 24.939049),
        "combiner.output_layer.bias": (0.0, 0.0),
        "combiner.output_layer.weight": (-0.795804, 32.737108),
        "combiner.text_projection_layer.bias": (0.0, 0.0),
        "combiner.text_projection_layer.weight": (0.976498, 24.421276),
        "text_model.text_model.embeddings.position_embedding.weight": (0.169407, 15.93919),
        "text_model.text_model.embeddings.token_embedding.weight": (0.598819, 10.955987),
        "text_model.text_model.encoder.layers.0.layer_norm1.bias": (0.0, 0.0),
        "text_model.text_model.encoder.layers.0.layer_norm1.weight": (32.0, 32.0),
        "text_model.text_model.encoder.layers.0.layer_norm2.bias": (0.0, 0.0),
        "text_model.text_model.encoder.layers.0.layer_norm2.weight": (32.0, 32.0),
        "text_model.text_model.encoder.layers.0.mlp.fc1.bias": (0.0, 0.0),
        "text_model.text_model.encoder.layers.0.mlp.fc1.weight": (5.500072, 204.353062),
        "text_model.text_model.encoder.layers.0.mlp.fc2.bias": (0.0, 0.0),
        "text_model.text_model.encoder.layers.0.mlp.fc2.weight": (-2.578145, 206.834723),
        "text_model.text_model.encoder.layers.0.self_attn.k_proj.bias": (0.0, 0.0),
        "text_model.text_model.encoder.layers.0.self_attn.k_proj.weight": (-3.048728, 106.108929),
        "text_model.text_model.encoder.layers.0.self_attn.out_proj.bias": (0.0, 0.0),
        "text_model.text_model.encoder.layers.0.self_attn.out_proj.weight": (10.933617, 142.702138),
        "text_model.text_model.encoder.layers.0.self_attn.q_proj.bias": (0.0, 0.0),
        "text_model.text_model.encoder.layers.0.self_attn.q_proj.weight": (0.067421, 106.827616),
        "text_model.text_model.encoder.layers.0.self_attn.v_proj.bias": (0.0, 0.0),
        "text_model.text_model.encoder.layers.0.self_attn.v_proj.weight": (-0.923715, 97.652064),
        "text_model.text_model.final_layer_norm.bias": (0.0, 0.0),
        "text_model.text_model.final_layer_norm.weight": (32.0, 32.0),
        "text_model.text_projection.weight": (3.757501, 112.451679),
        "text_projection.bias": (0.0, 0.0),
        "text_projection.weight": (-0.128783, 12.527929),
        "vision_model.embeddings.class_embedding": (1.528209, 4.736651),
        "vision_model.embeddings.patch_embedding.weight": (0.572496, 97.839732),
        "vision_model.embeddings.position_embedding.weight": (0.123091, 8.742982),
        "vision_model.encoder.layers.0.layer_norm1.bias": (0.0, 0.0),
        "vision_model.encoder.layers.0.layer_norm1.weight": (32.0, 32.0),
        "vision_model.encoder.layers.0.layer_norm2.bias": (0.0, 0.0),
        "vision_model.encoder.layers.0.layer_norm2.weight": (32.0, 32.0),
        "vision_model.encoder.layers.0.mlp.fc1.bias": (0.0, 0.0),
        "vision_model.encoder.layers.0.mlp.fc1.weight": (0.139392, 32.255019),
        "vision_model.encoder.layers.0.mlp.fc2.bias": (0.0, 0.0),
        "vision_model.encoder.layers.0.mlp.fc2.weight": (-0.914687, 31.822862),
        "vision_model.encoder.layers.0.mlp_adapter.fc1.bias": (0.0, 0.0),
        "vision_model.encoder.layers.0.mlp_adapter.fc1.weight": (0.375656, 4.251394),
        "vision_model.encoder.layers.0.mlp_adapter.fc2.bias": (0.0, 0.0),
        "vision_model.encoder.layers.0.mlp_adapter.fc2.weight": (0.0, 0.0),
        "vision_model.encoder.layers.0.self_attn.k_proj.bias": (0.0, 0.0),
        "vision_model.encoder.layers.0.self_attn.k_proj.weight": (0.613791, 16.420537),
        "vision_model.encoder.layers.0.self_attn.out_proj.bias": (0.0, 0.0),
        "vision_model.encoder.layers.0.self_attn.out_proj.weight": (-0.224359, 16.524398),
        "vision_model.encoder.layers.0.self_attn.q_proj.bias": (0.0, 0.0),
        "vision_model.encoder.layers.0.self_attn.q_proj.weight": (1.05534, 17.007664),
        "vision_model.encoder.layers.0.self_attn.v_proj.bias": (0.0, 0.0),
        "vision_model.encoder.layers.0.self_attn.v_proj.weight": (0.368555, 16.777859),
        "vision_model.encoder.layers.0.spatial_adapter.fc1.bias": (0.0, 0.0),
        "vision_model.encoder.layers.0.spatial_adapter.fc1.weight": (0.48652, 4.129118),
        "vision_model.encoder.layers.0.spatial_adapter.fc2.bias": (0.0, 0.0),
        "vision_model.encoder.layers.0.spatial_adapter.fc2.weight": (0.0, 0.0),
        "vision_model.encoder.layers.0.temporal_adapter.fc1.bias": (0.0, 0.0),
        "vision_model.encoder.layers.0.temporal_adapter.fc1.weight": (0.202312, 4.363964),
        "vision_model.encoder.layers.0.temporal_adapter.fc2.bias": (0.0, 0.0),
        "vision_model.encoder.layers.0.temporal_adapter.fc2.weight": (0.0, 0.0),
        "vision_model.encoder.layers.1.layer_norm1.bias": (0.0, 0.0),
        "vision_model.encoder.layers.1.layer_norm1.weight": (32.0, 32.0),
        "vision_model.encoder.layers.1.layer_norm2.bias": (0.0, 0.0),
        "vision_model.encoder.layers.1.layer_norm2.weight": (32.0, 32.0),
        "vision_model.encoder.layers.1.mlp.fc1.bias": (0.0, 0.0),
        "vision_model.encoder.layers.1.mlp.fc1.weight": (-2.455606, 32.169673),
        "vision_model.encoder.layers.1.mlp.fc2.bias": (0.0, 0.0),
        "vision_model.encoder.layers.1.mlp.fc2.weight": (1.181369, 33.082225),
        "vision_model.encoder.layers.1.mlp_adapter.fc1.bias": (0.0, 0.0),
        "vision_model.encoder.layers.1.mlp_adapter.fc1.weight": (-0.290319, 4.104989),
        "vision_model.encoder.layers.1.mlp_adapter.fc2.bias": (0.0, 0.0),
        "vision_model.encoder.layers.1.mlp_adapter.fc2.weight": (0.0, 0.0),
        "vision_model.encoder.layers.1.self_attn.k_proj.bias": (0.0, 0.0),
        "vision_model.encoder.layers.1.self_attn.k_proj.weight": (-0.048399, 16.139155),
        "vision_model.encoder.layers.1.self_attn.out_proj.bias": (0.0, 0.0),
        "vision_model.encoder.layers.1.self_attn.out_proj.weight": (-0.569194, 16.531391),
        "vision_model.encoder.layers.1.self_attn.q_proj.bias": (0.0, 0.0),
        "vision_model.encoder.layers.1.self_attn.q_proj.weight": (0.416463, 16.73431),
        "vision_model.encoder.layers.1.self_attn.v_proj.bias": (0.0, 0.0),
        "vision_model.encoder.layers.1.self_attn.v_proj.weight": (-0.019114, 16.077476),
        "vision_model.encoder.layers.1.spatial_adapter.fc1.bias": (0.0, 0.0),
        "vision_model.encoder.layers.1.spatial_adapter.fc1.weight": (-0.848135, 4.052099),
        "vision_model.encoder.layers.1.spatial_adapter.fc2.bias": (0.0, 0.0),
        "vision_model.encoder.layers.1.spatial_adapter.fc2.weight": (0.0, 0.0),
        "vision_model.encoder.layers.1.temporal_adapter.fc1.bias": (0.0, 0.0),
        "vision_model.encoder.layers.1.temporal_adapter.fc1.weight": (-0.067177, 4.358543),
        "vision_model.encoder.layers.1.temporal_adapter.fc2.bias": (0.0, 0.0),
        "vision_model.encoder.layers.1.temporal_adapter.fc2.weight": (0.0, 0.0),
        "vision_model.post_layernorm.bias": (0.0, 0.0),
        "vision_model.post_layernorm.weight": (32.0, 32.0),
        "vision_model.pre_layrnorm.bias": (0.0, 0.0),
        "vision_model.pre_layrnorm.weight": (32.0, 32.0),
        "vision_model.temporal_embedding": (0.0, 0.0),
    },
}
