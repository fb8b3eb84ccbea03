"""The TF-CoVR model family: AIM equivalence with CLIP, frame order, trainable parameters, HN-NCE,
and saving / loading (including trust_remote_code without the package)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModel, AutoModelForVideoClassification, AutoProcessor, CLIPVisionConfig, CLIPVisionModel

import modeling_tfcovr as mt
from modeling_tfcovr.modeling_tfcovr import load_clip_vision_weights
from modeling_tfcovr.training.freezing import set_trainable

from .conftest import TINY_VISION, randomize_aim_parameters

CLIP_FIELDS = {k: v for k, v in TINY_VISION.items() if k != "num_frames"}


def _clip_and_aim(seed: int = 0):
    torch.manual_seed(seed)
    clip = CLIPVisionModel(CLIPVisionConfig(**CLIP_FIELDS)).eval()
    aim = mt.TFCoVRVisionModel(mt.TFCoVRVisionConfig(**TINY_VISION)).eval()
    load_clip_vision_weights(aim, clip.state_dict())
    return clip, aim


def test_zero_initialised_aim_equals_framewise_clip():
    clip, aim = _clip_and_aim()
    videos = torch.randn(3, 4, 3, 32, 32)
    with torch.no_grad():
        expected = torch.stack([clip(pixel_values=videos[:, t]).pooler_output for t in range(4)], dim=1).mean(dim=1)
        output = aim(videos)
    assert output.pooler_output.shape == (3, 32)
    assert output.frame_embeds.shape == (3, 4, 32)
    torch.testing.assert_close(output.pooler_output, expected, atol=1e-5, rtol=1e-5)
    extra_keys = set(aim.state_dict()) - set(clip.state_dict())
    assert extra_keys and all("_adapter." in k or k == "temporal_embedding" for k in extra_keys)
    assert not set(clip.state_dict()) - set(aim.state_dict())


def test_frame_order_matters_only_once_aim_parameters_are_trained():
    _, aim = _clip_and_aim()
    videos = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        forward, backward = aim(videos).pooler_output, aim(videos.flip(1)).pooler_output
    torch.testing.assert_close(forward, backward, atol=1e-5, rtol=1e-5)
    randomize_aim_parameters(aim)
    with torch.no_grad():
        forward, backward = aim(videos).pooler_output, aim(videos.flip(1)).pooler_output
    assert (forward - backward).abs().max() > 1e-2


def test_clip_checkpoint_loads_through_from_clip_pretrained(tmp_path):
    clip, _ = _clip_and_aim(seed=1)
    clip.save_pretrained(tmp_path / "clip")
    aim = mt.TFCoVRVisionModel.from_clip_pretrained(tmp_path / "clip", num_frames=4).eval()
    for key, value in clip.state_dict().items():
        torch.testing.assert_close(aim.state_dict()[key], value)
    assert aim.config.num_frames == 4 and aim.config.patch_size == 8


def _parameters_with_gradients(model: torch.nn.Module, loss: torch.Tensor) -> set[str]:
    model.zero_grad(set_to_none=True)
    loss.backward()
    return {name for name, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}


def test_stage1_default_trains_only_adapters_temporal_embedding_post_layernorm_and_head(tiny_config):
    model = mt.TFCoVRForVideoClassification(tiny_config)
    set_trainable(model)  # the stage-1 training's default: AIM's recipe
    model.train()
    randomize_aim_parameters(model)  # non-zero adapters so every adapter weight receives gradient
    output = model(torch.randn(2, 4, 3, 32, 32), labels=torch.tensor([0, 3]))
    with_grad = _parameters_with_gradients(model, output.loss)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    expected = {
        name
        for name, _ in model.named_parameters()
        if "_adapter." in name
        or name.endswith("temporal_embedding")
        or "post_layernorm" in name
        or name.startswith("classifier")
    }
    assert trainable == expected
    assert with_grad == expected


def test_stage1_flag_trains_everything(tiny_config):
    model = mt.TFCoVRForVideoClassification(tiny_config)
    set_trainable(model, backbone=True)  # --train_backbone
    model.train()
    randomize_aim_parameters(model)
    with_grad = _parameters_with_gradients(model, model(torch.randn(2, 4, 3, 32, 32), labels=torch.tensor([1, 2])).loss)
    # position_ids is a buffer; every parameter of the model must receive a gradient
    assert with_grad == {name for name, _ in model.named_parameters()}


def test_stage2_default_trains_only_text_projection_and_combiner(tiny_config, tiny_processor):
    model = mt.TFCoVRModel(tiny_config)
    set_trainable(model, vision_encoder=False)  # the stage-2 training's default
    model.train()
    inputs = tiny_processor(text=["one more rotation", "reverse the direction"])
    output = model(
        pixel_values_videos=torch.randn(2, 4, 3, 32, 32),
        **inputs,
        target_pixel_values_videos=torch.randn(2, 4, 3, 32, 32),
    )
    with_grad = _parameters_with_gradients(model, output.loss)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in model.named_parameters() if n.startswith(("text_projection.", "combiner."))}
    assert with_grad == trainable


def test_stage2_precomputed_embeddings_equal_raw_inputs(tiny_config, tiny_processor):
    model = mt.TFCoVRModel(tiny_config).eval()
    frames = torch.randn(2, 4, 3, 32, 32)
    text = tiny_processor(text=["one more rotation", "with two rotations"])
    with torch.no_grad():
        raw = model.get_query_features(pixel_values_videos=frames, **text)
        video_embeds = model.vision_model(frames).pooler_output
        text_embeds = model.encode_text(text["input_ids"], text["attention_mask"])
        cached = model.get_query_features(query_video_embeds=video_embeds, text_embeds=text_embeds)
        targets = model.get_video_features(frames)
    torch.testing.assert_close(raw, cached)
    torch.testing.assert_close(raw.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(targets, F.normalize(video_embeds, dim=-1))


def _naive_hn_nce(q: torch.Tensor, t: torch.Tensor, temperature: float, alpha: float, beta: float) -> float:
    """The HN-NCE formula written element by element, in float64."""
    s = (q.double() @ t.double().T / temperature).tolist()
    n = len(s)
    import math

    def direction(matrix):
        total = 0.0
        for i in range(n):
            normaliser = sum(math.exp(beta * matrix[i][k]) for k in range(n) if k != i)
            denominator = alpha * math.exp(matrix[i][i])
            for j in range(n):
                if j != i:
                    weight = (n - 1) * math.exp(beta * matrix[i][j]) / normaliser
                    denominator += weight * math.exp(matrix[i][j])
            total += -matrix[i][i] + math.log(denominator)
        return total / n

    transposed = [[s[j][i] for j in range(n)] for i in range(n)]
    return direction(s) + direction(transposed)


@pytest.mark.parametrize("alpha,beta", [(1.0, 0.5), (1.0, 0.0), (0.7, 1.3)])
def test_hn_nce_equals_naive_formula(alpha, beta):
    torch.manual_seed(0)
    q, t = F.normalize(torch.randn(7, 16), dim=-1), F.normalize(torch.randn(7, 16), dim=-1)
    value = mt.hn_nce_loss(q, t, temperature=0.07, alpha=alpha, beta=beta)
    assert value.item() == pytest.approx(_naive_hn_nce(q, t, 0.07, alpha, beta), rel=1e-5)


def test_hn_nce_is_symmetric_infonce_at_beta_zero():
    torch.manual_seed(1)
    q, t = F.normalize(torch.randn(9, 8), dim=-1), F.normalize(torch.randn(9, 8), dim=-1)
    logits = q @ t.T / 0.1
    labels = torch.arange(9)
    infonce = F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)
    torch.testing.assert_close(mt.hn_nce_loss(q, t, 0.1, alpha=1.0, beta=0.0), infonce)
    assert mt.hn_nce_loss(q, t, 0.1, alpha=1.0, beta=0.5) > infonce  # hard negatives weigh more


def test_save_and_load_give_identical_outputs(tmp_path, tiny_config):
    torch.manual_seed(0)
    model = mt.TFCoVRForVideoClassification(tiny_config).eval()
    randomize_aim_parameters(model)
    model.save_pretrained(tmp_path / "clf")
    assert (tmp_path / "clf" / "model.safetensors").exists()
    assert not list((tmp_path / "clf").glob("*.bin"))
    reloaded = AutoModelForVideoClassification.from_pretrained(tmp_path / "clf").eval()
    assert isinstance(reloaded, mt.TFCoVRForVideoClassification)
    videos = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(videos).logits, reloaded(videos).logits, atol=0, rtol=0)


REMOTE_CODE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.modules["modeling_tfcovr"] = None  # the package must not be importable
    try:
        import modeling_tfcovr  # noqa: F401
        raise SystemExit("modeling_tfcovr should not import here")
    except ImportError:
        pass
    import torch
    from transformers import AutoModel, AutoProcessor
    folder, video = sys.argv[1], sys.argv[2]
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    inputs = processor(videos=[video, video], text=["one more rotation", "With 2 rotations!"])
    with torch.no_grad():
        out = model(**inputs, target_pixel_values_videos=inputs["pixel_values_videos"])
    print(json.dumps({"module": type(model).__module__, "logits": out.logits_per_query.tolist(),
                      "input_ids": inputs["input_ids"].tolist()}))
    """
)


def test_trust_remote_code_loads_without_the_package(tmp_path, tiny_config, tiny_processor, brightness_video):
    torch.manual_seed(0)
    model = mt.TFCoVRModel(tiny_config).eval()
    randomize_aim_parameters(model)
    model.save_pretrained(tmp_path / "model")
    tiny_processor.save_pretrained(tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_tfcovr.TFCoVRModel"

    inputs = tiny_processor(
        videos=[brightness_video, brightness_video], text=["one more rotation", "With 2 rotations!"]
    )
    with torch.no_grad():
        expected = model(**inputs, target_pixel_values_videos=inputs["pixel_values_videos"]).logits_per_query
    # In-process Auto loading too.
    assert isinstance(AutoModel.from_pretrained(tmp_path / "model"), mt.TFCoVRModel)
    assert isinstance(AutoProcessor.from_pretrained(tmp_path / "model"), mt.TFCoVRProcessor)

    result = subprocess.run(
        [sys.executable, "-c", REMOTE_CODE_SCRIPT, str(tmp_path / "model"), str(brightness_video)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    remote = json.loads(result.stdout.strip().splitlines()[-1])
    assert remote["module"].startswith("transformers_modules.")
    assert remote["input_ids"] == inputs["input_ids"].tolist()
    torch.testing.assert_close(torch.tensor(remote["logits"]), expected, atol=1e-6, rtol=1e-6)


def test_conv_stem_and_random_adapter_init_for_models_trained_from_scratch():
    config = mt.TFCoVRVisionConfig(**TINY_VISION, conv_stem={"channels": [8, 16]})
    with mt.adapter_initialization("random"):
        model = mt.TFCoVRVisionModel(config).eval()
    assert model.embeddings.patch_embedding.weight.shape == (32, 16, 2, 2)  # kernel 8 / stem stride 4
    assert model.temporal_embedding.abs().max() > 0
    assert all(layer.temporal_adapter.fc2.weight.abs().max() > 0 for layer in model.encoder.layers)
    videos = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        output = model(videos)
        # random temporal embedding + adapters: frame order matters from the first step
        assert (output.pooler_output - model(videos.flip(1)).pooler_output).abs().max() > 1e-4
    assert output.pooler_output.shape == (2, 32)
    stem_output = model.embeddings.conv_stem(videos[:, 0])
    assert stem_output.shape == (2, 16, 8, 8)
    with pytest.raises(ValueError, match="divisible"):
        mt.TFCoVRVisionConfig(**{**TINY_VISION, "patch_size": 6}, conv_stem={"channels": [8, 16]})
    # the default keeps CLIP's embeddings exactly
    assert mt.TFCoVRVisionModel(mt.TFCoVRVisionConfig(**TINY_VISION)).embeddings.conv_stem is None


def test_temporal_convolution_of_the_stem_mixes_neighbouring_frames_only():
    """conv_stem_temporal_kernel=3: the stem's maps of frame t become x_t + GELU(w_-1 x_(t-1) + w_0 x_t + w_1 x_(t+1)
    + b), zero-padded at the clip's ends, computed here independently with einsum."""
    config = mt.TFCoVRVisionConfig(**TINY_VISION, conv_stem={"channels": [8, 16], "temporal_kernel": 3})
    model = mt.TFCoVRVisionModel(config).eval()  # adapters at zero: only the stem sees motion
    temporal = model.embeddings.conv_stem_temporal
    assert temporal.conv.weight.shape == (16, 16, 3, 1, 1) and temporal.conv.weight.abs().max() > 0
    videos = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        maps = model.embeddings.conv_stem(videos.flatten(0, 1)).view(2, 4, 16, 8, 8)
        mixed = temporal(maps.flatten(0, 1), num_frames=4).view(2, 4, 16, 8, 8)
        weight, bias = temporal.conv.weight[:, :, :, 0, 0], temporal.conv.bias  # (out, in, offset)
        padded = F.pad(maps, (0, 0, 0, 0, 0, 0, 1, 1))  # one zero frame before and after each clip
        expected = maps + F.gelu(
            sum(torch.einsum("oi,btihw->btohw", weight[:, :, k], padded[:, k : k + 4]) for k in range(3))
            + bias[None, None, :, None, None]
        )
        torch.testing.assert_close(mixed, expected, atol=1e-5, rtol=1e-5)
        # so frame order matters even with AIM's adapters and temporal embedding at zero
        assert (model(videos).pooler_output - model(videos.flip(1)).pooler_output).abs().max() > 1e-4
        # a clip of one frame (the single-frame variant) has no neighbours: only the middle tap acts
        one_frame = maps[:, 0]
        torch.testing.assert_close(
            temporal(one_frame, num_frames=1),
            one_frame + F.gelu(torch.einsum("oi,bihw->bohw", weight[:, :, 1], one_frame) + bias[None, :, None, None]),
            atol=1e-5,
            rtol=1e-5,
        )
    with pytest.raises(ValueError, match="needs a conv stem"):
        mt.TFCoVRVisionConfig(**TINY_VISION, conv_stem_temporal_kernel=3)  # the field of earlier versions
    with pytest.raises(ValueError, match="odd"):
        mt.TFCoVRVisionConfig(**TINY_VISION, conv_stem={"channels": [8, 16], "temporal_kernel": 2})


def test_bert_style_text_encoder_is_mean_pooled_over_the_attention_mask(tmp_path, tiny_tokenizer):
    """`text_config` accepts any transformers text encoder; non-CLIP encoders give the masked mean of their last
    hidden states, and `from_pretrained_encoders` loads the checkpoint's weights."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    bert = BertModel(
        BertConfig(
            vocab_size=len(tiny_tokenizer),
            hidden_size=24,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=48,
            max_position_embeddings=32,
        ),
        add_pooling_layer=False,
    ).eval()
    bert.save_pretrained(tmp_path / "bert")
    config = mt.TFCoVRConfig(
        vision_config=TINY_VISION,
        text_config=dict(model_type="bert", vocab_size=8),
        embed_dim=32,
        combiner_projection_dim=48,
        combiner_hidden_dim=64,
    )
    model = mt.TFCoVRModel.from_pretrained_encoders(config, text_path=tmp_path / "bert").eval()
    set_trainable(model, vision_encoder=False)  # as stage-2 training does
    assert model.config.text_embed_dim == 24 and not any(p.requires_grad for p in model.text_model.parameters())

    batch = tiny_tokenizer(
        ["one more rotation", "reverse the direction on the beam"], padding=True, return_tensors="pt"
    )
    assert (batch["attention_mask"] == 0).any()  # the shorter text is padded: the mask matters
    with torch.no_grad():
        features = model.encode_text(batch["input_ids"], batch["attention_mask"])
        states = bert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    for row in range(2):
        length = int(batch["attention_mask"][row].sum())
        torch.testing.assert_close(features[row], states[row, :length].mean(dim=0))
