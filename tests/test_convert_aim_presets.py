"""AIM checkpoints with `num_tadapter=2`, any adapter scale, and the named presets of the official configurations.

* A random mmaction-format state dict, converted, must give the video embedding (and logits) that AIM's own
  forward pass computes from its tensors: the reference below follows the official `ViT_CLIP` layout literally
  (sequence-first tokens, `torch.nn.MultiheadAttention` loaded with `in_proj_*`, the rearranges written as
  permutes), with `T_Adapter_in` (skip connection) before the temporal attention when `num_tadapter == 2`.
* A TF-CoVR stage-1 classifier (bare `model.*` state dict and Lightning Fabric `{"model": ...}`) gets the official
  306 labels in `label2index` order.
* What the weights cannot tell (heads, adapter scale) must come from a preset or an explicit setting; the
  converter refuses otherwise, and refuses presets that contradict the weights.
* Each preset file equals the values of the official configuration files (table written out below).
"""

from __future__ import annotations

import configparser
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from modeling_tfcovr import TFCoVRForVideoClassification, TFCoVRVisionConfig, TFCoVRVisionModel, adapter_initialization
from modeling_tfcovr.commands import load_command
from modeling_tfcovr.convert.aim import (
    AIMPreset,
    aim_preset_names,
    convert_aim_checkpoint,
    load_aim_preset,
    presets_matching,
    resolve_aim_settings,
)
from modeling_tfcovr.errors import DataFormatError

REPO = Path(__file__).resolve().parents[1]
WIDTH, LAYERS, HEADS, FRAMES, IMAGE, PATCH, CLASSES = 64, 2, 4, 4, 32, 16, 7


def random_aim_state(
    num_tadapter: int,
    prefix: str = "backbone.",
    head: str = "cls_head.fc_cls.",
    num_classes: int = CLASSES,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Every tensor of an AIM `ViT_CLIP` random, adapters' second layers included (so that each adapter matters)."""
    generator = torch.Generator().manual_seed(seed)
    hidden = WIDTH // 4

    def rand(*shape: int, std: float = 0.1) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * std

    def norm(name: str) -> dict[str, torch.Tensor]:
        return {f"{name}.weight": 1 + rand(WIDTH), f"{name}.bias": rand(WIDTH)}

    grid = IMAGE // PATCH
    state = {
        "conv1.weight": rand(WIDTH, 3, PATCH, PATCH, std=0.05),
        "class_embedding": rand(WIDTH),
        "positional_embedding": rand(grid * grid + 1, WIDTH),
        "temporal_embedding": rand(1, FRAMES, WIDTH, std=0.3),
        **norm("ln_pre"),
        **norm("ln_post"),
    }
    adapters = ["T_Adapter", "S_Adapter", "MLP_Adapter"] + (["T_Adapter_in"] if num_tadapter == 2 else [])
    for index in range(LAYERS):
        block = f"transformer.resblocks.{index}."
        state.update(
            {
                f"{block}attn.in_proj_weight": rand(3 * WIDTH, WIDTH, std=WIDTH**-0.5),
                f"{block}attn.in_proj_bias": rand(3 * WIDTH),
                f"{block}attn.out_proj.weight": rand(WIDTH, WIDTH, std=WIDTH**-0.5),
                f"{block}attn.out_proj.bias": rand(WIDTH),
                f"{block}mlp.c_fc.weight": rand(4 * WIDTH, WIDTH, std=WIDTH**-0.5),
                f"{block}mlp.c_fc.bias": rand(4 * WIDTH),
                f"{block}mlp.c_proj.weight": rand(WIDTH, 4 * WIDTH, std=(4 * WIDTH) ** -0.5),
                f"{block}mlp.c_proj.bias": rand(WIDTH),
                **{f"{block}{k}": v for k, v in norm("ln_1").items()},
                **{f"{block}{k}": v for k, v in norm("ln_2").items()},
            }
        )
        for adapter in adapters:
            state.update(
                {
                    f"{block}{adapter}.D_fc1.weight": rand(hidden, WIDTH, std=WIDTH**-0.5),
                    f"{block}{adapter}.D_fc1.bias": rand(hidden),
                    f"{block}{adapter}.D_fc2.weight": rand(WIDTH, hidden, std=hidden**-0.5),
                    f"{block}{adapter}.D_fc2.bias": rand(WIDTH),
                }
            )
    state = {f"{prefix}{key}": value for key, value in state.items()}
    state[f"{head}weight"], state[f"{head}bias"] = rand(num_classes, WIDTH), rand(num_classes)
    return state


def official_forward(
    state: dict, videos: torch.Tensor, prefix: str, heads: int, scale: float, num_tadapter: int
) -> torch.Tensor:
    """AIM's `ViT_CLIP.forward` (eval mode) on `videos` (B, T, C, H, W): the frame-mean of the CLS tokens after
    `ln_post`. Tokens are kept sequence-first, (HW+1, BT, D), as in the official code."""
    batch, frames = videos.shape[:2]

    def p(name: str) -> torch.Tensor:
        return state[f"{prefix}{name}"]

    def layer_norm(x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(x, (WIDTH,), p(f"{name}.weight"), p(f"{name}.bias"), eps=1e-5)

    def adapter(x: torch.Tensor, name: str, skip_connect: bool) -> torch.Tensor:
        xs = F.gelu(F.linear(x, p(f"{name}.D_fc1.weight"), p(f"{name}.D_fc1.bias")))
        xs = F.linear(xs, p(f"{name}.D_fc2.weight"), p(f"{name}.D_fc2.bias"))
        return x + xs if skip_connect else xs

    def mlp(x: torch.Tensor, block: str) -> torch.Tensor:
        h = F.linear(x, p(f"{block}mlp.c_fc.weight"), p(f"{block}mlp.c_fc.bias"))
        return F.linear(h * torch.sigmoid(1.702 * h), p(f"{block}mlp.c_proj.weight"), p(f"{block}mlp.c_proj.bias"))

    x = F.conv2d(videos.flatten(0, 1), p("conv1.weight"), stride=PATCH)  # (BT, D, g, g)
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
    x = torch.cat([p("class_embedding") + torch.zeros(x.shape[0], 1, WIDTH), x], dim=1) + p("positional_embedding")
    n = x.shape[1]
    x = x.view(batch, frames, n, WIDTH).permute(0, 2, 1, 3).reshape(batch * n, frames, WIDTH)  # (b t) n d -> (b n) t d
    x = x + p("temporal_embedding")
    x = x.view(batch, n, frames, WIDTH).permute(0, 2, 1, 3).reshape(batch * frames, n, WIDTH)  # (b n) t d -> (b t) n d
    x = layer_norm(x, "ln_pre").permute(1, 0, 2)  # NLD -> LND
    for index in range(LAYERS):
        block = f"transformer.resblocks.{index}."
        attn = torch.nn.MultiheadAttention(WIDTH, heads)
        attn.load_state_dict(
            {
                "in_proj_weight": p(f"{block}attn.in_proj_weight"),
                "in_proj_bias": p(f"{block}attn.in_proj_bias"),
                "out_proj.weight": p(f"{block}attn.out_proj.weight"),
                "out_proj.bias": p(f"{block}attn.out_proj.bias"),
            }
        )
        attn.eval()

        def attention(h: torch.Tensor) -> torch.Tensor:
            return attn(h, h, h, need_weights=False)[0]  # noqa: B023

        xt = (
            x.view(n, batch, frames, WIDTH).permute(2, 1, 0, 3).reshape(frames, batch * n, WIDTH)
        )  # n (b t) d -> t (b n) d
        if num_tadapter == 2:
            xt = adapter(
                attention(adapter(layer_norm(xt, f"{block}ln_1"), f"{block}T_Adapter_in", True)),
                f"{block}T_Adapter",
                False,
            )
        else:
            xt = adapter(attention(layer_norm(xt, f"{block}ln_1")), f"{block}T_Adapter", False)
        x = x + xt.view(frames, batch, n, WIDTH).permute(2, 1, 0, 3).reshape(
            n, batch * frames, WIDTH
        )  # t (b n) d -> n (b t) d
        x = x + adapter(attention(layer_norm(x, f"{block}ln_1")), f"{block}S_Adapter", True)
        xn = layer_norm(x, f"{block}ln_2")
        x = x + mlp(xn, block) + scale * adapter(xn, f"{block}MLP_Adapter", False)
    x = layer_norm(x.permute(1, 0, 2), "ln_post")[:, 0]  # (BT, D)
    return x.view(batch, frames, WIDTH).mean(dim=1)  # '(b t) d -> b d t' then AdaptiveAvgPool3d


def random_videos(batch: int = 2, seed: int = 3) -> torch.Tensor:
    return torch.randn(batch, FRAMES, 3, IMAGE, IMAGE, generator=torch.Generator().manual_seed(seed))


def tiny_preset(**changes) -> AIMPreset:
    """A preset of the tiny architecture with the TF-CoVR stage-1 label space (the shipped `tfcovr-stage1` is
    ViT-B/16 sized; see the slow test for it)."""
    vision = dict(
        image_size=IMAGE,
        patch_size=PATCH,
        hidden_size=WIDTH,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_frames=FRAMES,
        drop_path_rate=0.1,
        mlp_adapter_scale=0.5,
        num_temporal_adapters=1,
    )
    vision.update(changes)
    return AIMPreset(
        name="tiny-stage1",
        description="tiny",
        source="test",
        vision_config=vision,
        num_labels=306,
        label_set="tfcovr-306",
    )


# ----------------------------------------------------------------------------------------------
# (a) num_tadapter = 2 and any adapter scale against the official forward pass
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_tadapter, scale", [(2, 1.0), (2, 0.3), (1, 0.7)])
def test_mmaction_checkpoint_equals_official_forward(tmp_path, num_tadapter, scale):
    state = random_aim_state(num_tadapter)
    torch.save({"meta": {"mmaction_version": "0.24.1"}, "state_dict": state}, tmp_path / "aim.pth")
    args = [
        str(tmp_path / "aim.pth"),
        "--output",
        str(tmp_path / "hf"),
        "--no-processor",
        "--num-attention-heads",
        str(HEADS),
        "--adapter-scale",
        str(scale),
    ]
    assert load_command("convert-aim").main(args) == 0

    model = TFCoVRForVideoClassification.from_pretrained(tmp_path / "hf").eval()
    vision = model.config.vision_config
    assert (vision.num_temporal_adapters, vision.mlp_adapter_scale, vision.num_attention_heads) == (
        num_tadapter,
        scale,
        HEADS,
    )
    assert (vision.num_frames, vision.image_size, vision.patch_size, vision.hidden_size) == (
        FRAMES,
        IMAGE,
        PATCH,
        WIDTH,
    )
    layer = model.vision_model.encoder.layers[1]
    assert (layer.temporal_input_adapter is not None) == (num_tadapter == 2)
    if num_tadapter == 2:
        torch.testing.assert_close(
            layer.temporal_input_adapter.fc2.weight, state["backbone.transformer.resblocks.1.T_Adapter_in.D_fc2.weight"]
        )

    videos = random_videos()
    expected = official_forward(state, videos, "backbone.", HEADS, scale, num_tadapter)
    with torch.no_grad():
        output = model(videos)
    torch.testing.assert_close(output.video_embeds, expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(
        output.logits,
        expected @ state["cls_head.fc_cls.weight"].T + state["cls_head.fc_cls.bias"],
        atol=1e-4,
        rtol=1e-4,
    )
    # The check can fail: the embedding moves by far more than the tolerance without T_Adapter_in or with another scale.
    assert (
        official_forward(state, videos, "backbone.", HEADS, scale, 1) - expected
    ).abs().max() > 1e-2 or num_tadapter == 1
    assert (
        official_forward(state, videos, "backbone.", HEADS, scale + 0.5, num_tadapter) - expected
    ).abs().max() > 1e-2


def test_preset_num_tadapter_is_read_from_the_weights_and_checked(tmp_path):
    state = random_aim_state(2)
    torch.save(state, tmp_path / "aim.pth")
    model = convert_aim_checkpoint(tmp_path / "aim.pth", preset=tiny_preset(num_temporal_adapters=2), vision_only=True)
    assert model.config.num_temporal_adapters == 2 and model.config.drop_path_rate == 0.1
    with pytest.raises(DataFormatError, match=r"num_temporal_adapters: preset 1, weights 2"):
        convert_aim_checkpoint(tmp_path / "aim.pth", preset=tiny_preset(), vision_only=True)
    with pytest.raises(DataFormatError, match=r"num_temporal_adapters=1 \(--num-temporal-adapters\) contradicts"):
        convert_aim_checkpoint(
            tmp_path / "aim.pth", num_attention_heads=HEADS, mlp_adapter_scale=1.0, num_temporal_adapters=1
        )


def test_temporal_input_adapter_starts_as_identity_and_trains():
    """AIM zero-initialises every adapter's D_fc2 (T_Adapter_in included): a fresh num_tadapter=2 encoder computes
    what the num_tadapter=1 encoder with the same other weights computes. Default models are unchanged."""
    tiny = dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=32,
        patch_size=16,
        num_frames=3,
    )
    torch.manual_seed(0)
    with adapter_initialization("random"):
        two = TFCoVRVisionModel(TFCoVRVisionConfig(**tiny, num_temporal_adapters=2)).eval()
        one = TFCoVRVisionModel(TFCoVRVisionConfig(**tiny)).eval()
    assert not any("temporal_input_adapter" in key for key in one.state_dict())
    extra = set(two.state_dict()) - set(one.state_dict())
    assert extra == {
        f"encoder.layers.{i}.temporal_input_adapter.{m}.{p}"
        for i in range(2)
        for m in ("fc1", "fc2")
        for p in ("weight", "bias")
    }
    assert all(
        parameter.requires_grad for name, parameter in two.named_parameters() if "temporal_input_adapter" in name
    )
    one.load_state_dict({key: value for key, value in two.state_dict().items() if key not in extra})
    for layer in two.encoder.layers:
        torch.nn.init.zeros_(layer.temporal_input_adapter.fc2.weight)  # what AIM's zero-init does
        torch.nn.init.zeros_(layer.temporal_input_adapter.fc2.bias)
    videos = torch.randn(2, 3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(two(videos).pooler_output, one(videos).pooler_output)

    fresh = TFCoVRVisionModel(TFCoVRVisionConfig(**tiny, num_temporal_adapters=2))
    assert all(layer.temporal_input_adapter.fc2.weight.abs().max() == 0 for layer in fresh.encoder.layers)
    with pytest.raises(ValueError, match="num_temporal_adapters must be 1 or 2"):
        TFCoVRVisionConfig(num_temporal_adapters=3)
    with pytest.raises(ValueError, match="needs use_temporal_adapter"):
        TFCoVRVisionConfig(num_temporal_adapters=2, use_temporal_adapter=False)


# ----------------------------------------------------------------------------------------------
# (b) TF-CoVR stage 1: the official label names, both wrappings
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("wrapping", ["bare", "fabric"])
def test_tfcovr_stage1_gets_the_official_labels(tmp_path, wrapping):
    state = random_aim_state(1, prefix="model.", head="model.fc_cls.", num_classes=306, seed=4)
    torch.save(state if wrapping == "bare" else {"epoch": 3, "model": state}, tmp_path / "stage1.ckpt")
    model = convert_aim_checkpoint(
        tmp_path / "stage1.ckpt", tmp_path / "hf", preset=tiny_preset(), save_video_processor=False
    )
    saved = TFCoVRForVideoClassification.from_pretrained(tmp_path / "hf").eval()
    for labels in (model.config.id2label, saved.config.id2label):
        assert len(labels) == 306
        assert (labels[0], labels[23], labels[24], labels[39], labels[258]) == ("0", "23", "25", "42", "287")
        assert (labels[259], labels[260], labels[305]) == ("407c", "5253b", "5233d")
    videos = random_videos(seed=6)
    with torch.no_grad():
        torch.testing.assert_close(
            saved(videos).video_embeds, official_forward(state, videos, "model.", HEADS, 0.5, 1), atol=1e-4, rtol=1e-4
        )

    # Labels given explicitly win over the preset's; a head of another size contradicts the preset.
    mine = {index: f"action {index}" for index in range(306)}
    assert (
        convert_aim_checkpoint(tmp_path / "stage1.ckpt", preset=tiny_preset(), id2label=mine).config.id2label[259]
        == "action 259"
    )
    torch.save(random_aim_state(1, prefix="model.", head="model.fc_cls.", num_classes=300), tmp_path / "other.ckpt")
    with pytest.raises(DataFormatError, match=r"num_labels: preset 306, weights 300"):
        convert_aim_checkpoint(tmp_path / "other.ckpt", preset=tiny_preset())


def _zeros_stage1_state() -> dict[str, torch.Tensor]:
    """A TF-CoVR stage-1 state dict of the real size (ViT-B/16, 224 px, 12 frames, 306 classes), all zeros."""
    width, grid, frames = 768, 14, 12
    state = {
        "conv1.weight": torch.zeros(width, 3, 16, 16),
        "class_embedding": torch.zeros(width),
        "positional_embedding": torch.zeros(grid * grid + 1, width),
        "temporal_embedding": torch.zeros(1, frames, width),
        "fc_cls.weight": torch.zeros(306, width),
        "fc_cls.bias": torch.zeros(306),
    }
    for name in ("ln_pre", "ln_post"):
        state.update({f"{name}.weight": torch.ones(width), f"{name}.bias": torch.zeros(width)})
    for index in range(12):
        block = f"transformer.resblocks.{index}."
        for name, shape in (
            ("attn.in_proj_weight", (3 * width, width)),
            ("attn.in_proj_bias", (3 * width,)),
            ("attn.out_proj.weight", (width, width)),
            ("attn.out_proj.bias", (width,)),
            ("mlp.c_fc.weight", (4 * width, width)),
            ("mlp.c_fc.bias", (4 * width,)),
            ("mlp.c_proj.weight", (width, 4 * width)),
            ("mlp.c_proj.bias", (width,)),
            ("ln_1.weight", (width,)),
            ("ln_1.bias", (width,)),
            ("ln_2.weight", (width,)),
            ("ln_2.bias", (width,)),
        ):
            state[f"{block}{name}"] = torch.zeros(shape)
        for adapter in ("T_Adapter", "S_Adapter", "MLP_Adapter"):
            state.update(
                {
                    f"{block}{adapter}.D_fc1.weight": torch.zeros(width // 4, width),
                    f"{block}{adapter}.D_fc1.bias": torch.zeros(width // 4),
                    f"{block}{adapter}.D_fc2.weight": torch.zeros(width, width // 4),
                    f"{block}{adapter}.D_fc2.bias": torch.zeros(width),
                }
            )
    return {f"model.{key}": value for key, value in state.items()}


@pytest.mark.slow
def test_real_size_tfcovr_stage1_with_just_the_preset(tmp_path):
    """The user's command: the TF-CoVR stage-1 checkpoint (Fabric form) and `--preset tfcovr-stage1`, nothing else."""
    torch.save({"epoch": 9, "model": _zeros_stage1_state()}, tmp_path / "aim_stage1.ckpt")
    model = convert_aim_checkpoint(tmp_path / "aim_stage1.ckpt", preset="tfcovr-stage1")
    vision = model.config.vision_config
    assert (vision.num_attention_heads, vision.mlp_adapter_scale, vision.num_frames, vision.drop_path_rate) == (
        12,
        0.5,
        12,
        0.1,
    )
    assert (model.config.id2label[39], model.config.id2label[259], model.config.id2label[305]) == (
        "42",
        "407c",
        "5233d",
    )
    with pytest.raises(DataFormatError, match=r"presets that fit these weights: tfcovr-stage1\."):
        convert_aim_checkpoint(tmp_path / "aim_stage1.ckpt")


# ----------------------------------------------------------------------------------------------
# (c) refusals
# ----------------------------------------------------------------------------------------------


def test_conversion_without_heads_or_scale_is_refused(tmp_path, capsys):
    torch.save({"state_dict": random_aim_state(2)}, tmp_path / "aim.pth")
    with pytest.raises(DataFormatError) as error:
        convert_aim_checkpoint(tmp_path / "aim.pth")
    message = str(error.value)
    assert (
        "attention heads (--num-attention-heads" in message
        and "adapter scale" in message
        and "--adapter-scale" in message
    )
    assert (
        "no preset fits these weights (hidden_size 64, num_hidden_layers 2, patch_size 16, image_size 32, num_frames "
        "4, "
        "num_temporal_adapters 2)"
        in message
        and "aim-vit-b16-ssv2" in message
    )

    with pytest.raises(DataFormatError) as error:
        convert_aim_checkpoint(tmp_path / "aim.pth", num_attention_heads=HEADS)
    assert "adapter scale" in str(error.value) and "attention heads" not in str(error.value)

    script = load_command("convert-aim")
    assert script.main([str(tmp_path / "aim.pth"), "--output", str(tmp_path / "hf"), "--adapter-scale", "1"]) == 1
    stderr = capsys.readouterr().err
    assert "DataFormatError" in stderr and "attention heads" in stderr and "adapter scale" not in stderr
    assert not (tmp_path / "hf").exists()


def test_preset_that_contradicts_the_weights_is_refused(tmp_path, capsys):
    torch.save({"state_dict": random_aim_state(2)}, tmp_path / "aim.pth")
    script = load_command("convert-aim")
    assert (
        script.main([str(tmp_path / "aim.pth"), "--output", str(tmp_path / "hf"), "--preset", "aim-vit-b16-ssv2"]) == 1
    )
    stderr = capsys.readouterr().err
    assert "the AIM preset 'aim-vit-b16-ssv2' does not match the checkpoint" in stderr
    assert "hidden_size: preset 768, weights 64" in stderr and "num_frames: preset 8, weights 4" in stderr
    assert "num_temporal_adapters" not in stderr  # that one agrees
    with pytest.raises(DataFormatError, match=r"num_frames: preset 8, weights 4"):
        convert_aim_checkpoint(tmp_path / "aim.pth", preset=tiny_preset(num_frames=8, num_temporal_adapters=2))
    with pytest.raises(
        DataFormatError, match=r"mlp_adapter_scale=1.0 \(--adapter-scale\) contradicts the preset 'tiny-stage1'"
    ):
        convert_aim_checkpoint(tmp_path / "aim.pth", preset=tiny_preset(num_temporal_adapters=2), mlp_adapter_scale=1.0)
    with pytest.raises(DataFormatError, match="unknown AIM preset 'vit-b16'; known presets: aim-vit-b16-diving48"):
        convert_aim_checkpoint(tmp_path / "aim.pth", preset="vit-b16")


def test_missing_settings_name_the_presets_that_fit():
    def architecture(**changes) -> dict:
        return dict(
            dict(
                hidden_size=768,
                num_hidden_layers=12,
                patch_size=16,
                image_size=224,
                num_frames=12,
                num_temporal_adapters=1,
                use_mlp_adapter=True,
            ),
            **changes,
        )

    for changes, fitting in (
        ({}, "tfcovr-stage1"),
        ({"num_frames": 8, "num_temporal_adapters": 2}, "aim-vit-b16-ssv2"),
        ({"num_frames": 8}, "aim-vit-b16-k700"),
        ({"num_frames": 32}, "aim-vit-b16-diving48, aim-vit-b16-k400"),
    ):
        with pytest.raises(DataFormatError, match=rf"presets that fit these weights: {fitting}\."):
            resolve_aim_settings(architecture(**changes))
    assert resolve_aim_settings(architecture(use_mlp_adapter=False), num_attention_heads=12) == {
        "num_attention_heads": 12
    }
    assert resolve_aim_settings(architecture(), preset="tfcovr-stage1") == {
        "num_attention_heads": 12,
        "mlp_adapter_scale": 0.5,
        "drop_path_rate": 0.1,
    }
    with pytest.raises(DataFormatError, match="cannot use 5 attention heads for width 768"):
        resolve_aim_settings(architecture(), num_attention_heads=5, mlp_adapter_scale=0.5)


# ----------------------------------------------------------------------------------------------
# (d) the preset files against the official configurations
# ----------------------------------------------------------------------------------------------

VIT_B16 = dict(image_size=224, patch_size=16, hidden_size=768, num_hidden_layers=12, num_attention_heads=12)
VIT_L14 = dict(image_size=224, patch_size=14, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16)
# name: (architecture, frames, drop_path_rate, adapter_scale, num_tadapter, classes, label set), read from
# taoyang1122/adapt-image-models configs/_base_/models/vitclip_base.py + configs/recognition/vit/vitclip_*.py and
# UCF-CRCV/TF-CoVR AIM_Embeddings/src/model/aim/aim.py (ViT_CLIP defaults: num_tadapter=1, adapter_scale=0.5).
OFFICIAL = {
    "tfcovr-stage1": (VIT_B16, 12, 0.1, 0.5, 1, 306, "tfcovr-306"),
    "aim-vit-b16-k400": (VIT_B16, 32, 0.2, 0.5, 1, 400, None),
    "aim-vit-b16-k700": (VIT_B16, 8, 0.2, 0.5, 1, 700, None),
    "aim-vit-b16-ssv2": (VIT_B16, 8, 0.2, 1.0, 2, 174, None),
    "aim-vit-b16-diving48": (VIT_B16, 32, 0.2, 0.5, 1, 48, None),
    "aim-vit-l14-k400": (VIT_L14, 32, 0.2, 0.5, 1, 400, None),
    "aim-vit-l14-k700": (VIT_L14, 32, 0.2, 0.5, 1, 700, None),
    "aim-vit-l14-ssv2": (VIT_L14, 8, 0.2, 1.0, 1, 174, None),
    "aim-vit-l14-diving48": (VIT_L14, 32, 0.2, 0.5, 1, 48, None),
}


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_preset_matches_the_official_configuration(name):
    architecture, frames, drop_path, scale, tadapter, classes, label_set = OFFICIAL[name]
    preset = load_aim_preset(name)
    expected = dict(
        architecture,
        num_frames=frames,
        drop_path_rate=drop_path,
        mlp_adapter_scale=scale,
        num_temporal_adapters=tadapter,
    )
    assert dict(preset.vision_config) == expected
    assert (preset.num_labels, preset.label_set) == (classes, label_set)
    config = TFCoVRVisionConfig(**preset.vision_config)  # a valid configuration
    assert config.num_temporal_adapters == tadapter and config.image_size // config.patch_size == (
        14 if config.patch_size == 16 else 16
    )
    observed = {
        field: expected[field]
        for field in (
            "hidden_size",
            "num_hidden_layers",
            "patch_size",
            "image_size",
            "num_frames",
            "num_temporal_adapters",
        )
    }
    assert name in presets_matching(observed)


def test_every_preset_file_is_listed_and_packaged():
    assert aim_preset_names() == sorted(OFFICIAL)
    files = sorted(path.stem for path in (REPO / "modeling_tfcovr" / "convert" / "presets" / "aim").glob("*.json"))
    assert files == sorted(OFFICIAL)
    for path in (REPO / "modeling_tfcovr" / "convert" / "presets" / "aim").glob("*.json"):
        assert set(json.loads(path.read_text())) == {
            "description",
            "source",
            "vision_config",
            "num_labels",
            "label_set",
        }
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    assert "convert/presets/aim/*.json" in setup["options.package_data"]["modeling_tfcovr"]
    assert load_aim_preset("tfcovr-stage1").id2label()[305] == "5233d"


def test_help_lists_the_presets(capsys):
    with pytest.raises(SystemExit):
        load_command("convert-aim").main(["--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in OFFICIAL) and "--num-attention-heads" in out and "--adapter-scale" in out


def test_readme_preset_table_matches_the_presets():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### 3. AIM checkpoints") : text.index("### 4. OpenAI CLIP weights")]
    rows = {}
    for line in section.splitlines():
        if line.startswith("| `") and not line.startswith("| `--preset`"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            rows[cells[0].strip("`")] = (
                int(cells[2]),
                int(cells[3]),
                float(cells[4]),
                int(cells[5]),
                int(cells[6].split(",")[0]),
            )
    assert rows == {
        name: (frames, arch["num_attention_heads"], scale, tadapter, classes)
        for name, (arch, frames, _, scale, tadapter, classes, _) in OFFICIAL.items()
    }


def test_converted_folder_embeds_a_video_as_the_official_extraction(tmp_path):
    """Saved processor + converted model on a rendered mp4 == the official `aim_emb.py` chain written literally:
    decord, frames at (edges[i] + edges[i+1] - 1) // 2 with edges = linspace(0, vlen, T + 1).astype(int), PIL bicubic
    squash to the image size, ToTensor, CLIP Normalize, then AIM's forward and the frame mean."""
    import decord
    import numpy as np
    from PIL import Image
    from torchvision import transforms
    from transformers import AutoVideoProcessor

    from modeling_tfcovr.video_io import write_mp4

    state = random_aim_state(1, prefix="model.", head="model.fc_cls.", num_classes=306, seed=8)
    torch.save({"model": state}, tmp_path / "stage1.ckpt")
    convert_aim_checkpoint(tmp_path / "stage1.ckpt", tmp_path / "hf", preset=tiny_preset())
    rng = np.random.default_rng(0)
    frames = np.stack([np.clip(rng.normal(128, 60, (48, 64, 3)) + 10 * t, 0, 255) for t in range(11)]).astype(np.uint8)
    write_mp4(tmp_path / "clip.mp4", frames)

    reader = decord.VideoReader(str(tmp_path / "clip.mp4"), num_threads=1)
    edges = np.linspace(0, len(reader), FRAMES + 1).astype(int)
    indices = [(edges[i] + edges[i + 1] - 1) // 2 for i in range(FRAMES)]
    transform = transforms.Compose(
        [
            transforms.Resize((IMAGE, IMAGE), interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.ToTensor(),
            transforms.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
        ]
    )
    expected_pixels = torch.stack([transform(Image.fromarray(frame)) for frame in reader.get_batch(indices).asnumpy()])[
        None
    ]

    processor = AutoVideoProcessor.from_pretrained(tmp_path / "hf", trust_remote_code=True)
    pixels = processor(videos=[str(tmp_path / "clip.mp4")], return_tensors="pt")["pixel_values_videos"]
    torch.testing.assert_close(pixels, expected_pixels, atol=1e-6, rtol=0)
    model = TFCoVRForVideoClassification.from_pretrained(tmp_path / "hf").eval()
    with torch.no_grad():
        embedding = model(pixels).video_embeds
    torch.testing.assert_close(
        embedding, official_forward(state, expected_pixels, "model.", HEADS, 0.5, 1), atol=1e-4, rtol=1e-4
    )
