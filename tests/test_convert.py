"""Converters against independent references.

* OpenAI's own CLIP code (the `clip` package, a test-only dependency), instantiated small with
  random weights, must give the same text (and image) features as the converted transformers models.
* A random AIM-format state dict, converted and run, must equal AIM computed directly from those
  tensors in plain torch (written below from the AIM paper's description).
* The offline CLIP tokenizer must tokenise exactly like `clip.tokenize`.
* The official stage-2 checkpoint layout must convert to a `TFCoVRModel` whose composed queries
  equal the official formula computed from the raw tensors.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import types
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoTokenizer, AutoVideoProcessor, CLIPConfig, CLIPModel

from modeling_tfcovr import TFCoVRForVideoClassification, TFCoVRModel, TFCoVRVisionModel, UntrustedFileError
from modeling_tfcovr.commands import load_command
from modeling_tfcovr.convert import (
    PlaceholderObject,
    build_clip_tokenizer,
    convert_aim_checkpoint,
    convert_openai_clip_checkpoint,
    convert_tfcovr_checkpoint,
    load_checkpoint,
)
from modeling_tfcovr.errors import DataFormatError
from modeling_tfcovr.modeling_zero_shot import ZeroShotCLIPComposer, zero_shot_query_features, zero_shot_video_features

REPO = Path(__file__).resolve().parents[1]
VOCAB, CONTEXT, EMBED = 100, 16, 48  # tiny OpenAI CLIP: vocabulary, context length, joint embedding
SOT, EOT = VOCAB - 2, VOCAB - 1


@pytest.fixture(scope="module")
def openai_clip():
    """OpenAI's `clip` package. Its `clip.py` still imports `pkg_resources` (gone from recent
    setuptools) only for `packaging`; a stand-in module is provided for the import when needed."""
    try:
        import clip
    except ModuleNotFoundError as error:
        if error.name != "pkg_resources":
            pytest.skip("OpenAI's clip package (pip install clip-anytorch) is not installed")
        import packaging.version

        shim = types.ModuleType("pkg_resources")
        shim.packaging = packaging
        sys.modules["pkg_resources"] = shim
        try:
            import clip
        finally:
            sys.modules.pop("pkg_resources", None)
    import clip.model

    return clip


def tiny_openai_clip(clip, vit: bool, seed: int = 0) -> torch.nn.Module:
    """OpenAI's CLIP model class, tiny, with every parameter (layer norms and biases too) random."""
    torch.manual_seed(seed)
    model = clip.model.CLIP(
        embed_dim=EMBED,
        image_resolution=32,
        vision_layers=2 if vit else (1, 1, 1, 1),
        vision_width=64 if vit else 8,
        vision_patch_size=8,
        context_length=CONTEXT,
        vocab_size=VOCAB,
        transformer_width=128,
        transformer_heads=2,
        transformer_layers=2,
    )
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model.eval()


def random_tokens(batch_size: int, seed: int = 0) -> torch.Tensor:
    """OpenAI-style token rows: SOT, random ids, EOT (the highest id), zero padding."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.zeros(batch_size, CONTEXT, dtype=torch.long)
    for row in range(batch_size):
        length = int(torch.randint(1, CONTEXT - 1, (1,), generator=generator))
        tokens[row, 0] = SOT
        tokens[row, 1 : 1 + length] = torch.randint(1, SOT, (length,), generator=generator)
        tokens[row, 1 + length] = EOT
    return tokens


# ----------------------------------------------------------------------------------------------
# (1) OpenAI CLIP -> transformers
# ----------------------------------------------------------------------------------------------


def test_openai_clip_vit_converts_to_identical_features(openai_clip, tmp_path):
    reference = tiny_openai_clip(openai_clip, vit=True)
    torch.save(reference.state_dict(), tmp_path / "clip.pt")
    convert_openai_clip_checkpoint(tmp_path / "clip.pt", tmp_path / "hf")
    model = CLIPModel.from_pretrained(tmp_path / "hf").eval()
    assert model.config.text_config.eos_token_id == EOT
    assert model.config.vision_config.image_size == 32 and model.config.vision_config.patch_size == 8

    tokens = random_tokens(4)
    images = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected_text, expected_image = reference.encode_text(tokens), reference.encode_image(images)
        text = model.get_text_features(input_ids=tokens).pooler_output
        masked = model.get_text_features(input_ids=tokens, attention_mask=(tokens != 0).long()).pooler_output
        image = model.get_image_features(pixel_values=images).pooler_output
    torch.testing.assert_close(text, expected_text, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(masked, expected_text, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(image, expected_image, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model.logit_scale, reference.logit_scale)


def test_openai_resnet_clip_converts_its_text_tower(openai_clip, tmp_path):
    reference = tiny_openai_clip(openai_clip, vit=False)
    torch.save(reference.state_dict(), tmp_path / "rn.pt")
    model = load_command("convert-openai-clip")
    assert model.main([str(tmp_path / "rn.pt"), "--output", str(tmp_path / "hf")]) == 0
    from transformers import CLIPTextModelWithProjection

    text_model = CLIPTextModelWithProjection.from_pretrained(tmp_path / "hf").eval()
    tokens = random_tokens(3, seed=2)
    with torch.no_grad():
        torch.testing.assert_close(
            text_model(input_ids=tokens).text_embeds, reference.encode_text(tokens), atol=1e-5, rtol=1e-5
        )


# ----------------------------------------------------------------------------------------------
# AIM: random state dicts and a direct computation
# ----------------------------------------------------------------------------------------------

AIM_WIDTH, AIM_LAYERS, AIM_FRAMES, AIM_PATCH, AIM_IMAGE, AIM_CLASSES = 64, 2, 4, 8, 32, 5


def random_aim_state_dict(
    prefix: str = "backbone.", head: str = "cls_head.fc_cls.", seed: int = 0
) -> dict[str, torch.Tensor]:
    """A state dict in AIM's naming with every tensor random (adapters and temporal embedding too)."""
    generator = torch.Generator().manual_seed(seed)
    width, hidden = AIM_WIDTH, AIM_WIDTH // 4

    def rand(*shape: int, std: float = 0.1) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * std

    def norm(name: str) -> dict[str, torch.Tensor]:
        return {f"{name}.weight": 1 + rand(width), f"{name}.bias": rand(width)}

    grid = AIM_IMAGE // AIM_PATCH
    state = {
        "conv1.weight": rand(width, 3, AIM_PATCH, AIM_PATCH, std=0.05),
        "class_embedding": rand(width),
        "positional_embedding": rand(grid * grid + 1, width),
        "temporal_embedding": rand(1, AIM_FRAMES, width, std=0.3),
        "proj": rand(width, 32),  # CLIP's image projection, unused by AIM
        **norm("ln_pre"),
        **norm("ln_post"),
    }
    for index in range(AIM_LAYERS):
        block = f"transformer.resblocks.{index}."
        state.update(
            {
                f"{block}attn.in_proj_weight": rand(3 * width, width, std=width**-0.5),
                f"{block}attn.in_proj_bias": rand(3 * width),
                f"{block}attn.out_proj.weight": rand(width, width, std=width**-0.5),
                f"{block}attn.out_proj.bias": rand(width),
                f"{block}mlp.c_fc.weight": rand(4 * width, width, std=width**-0.5),
                f"{block}mlp.c_fc.bias": rand(4 * width),
                f"{block}mlp.c_proj.weight": rand(width, 4 * width, std=(4 * width) ** -0.5),
                f"{block}mlp.c_proj.bias": rand(width),
                **{f"{block}{k}": v for k, v in norm("ln_1").items()},
                **{f"{block}{k}": v for k, v in norm("ln_2").items()},
            }
        )
        for adapter in ("T_Adapter", "S_Adapter", "MLP_Adapter"):
            state.update(
                {
                    f"{block}{adapter}.D_fc1.weight": rand(hidden, width, std=width**-0.5),
                    f"{block}{adapter}.D_fc1.bias": rand(hidden),
                    f"{block}{adapter}.D_fc2.weight": rand(width, hidden, std=hidden**-0.5),
                    f"{block}{adapter}.D_fc2.bias": rand(width),
                }
            )
    state = {f"{prefix}{key}": value for key, value in state.items()}
    state[f"{head}weight"], state[f"{head}bias"] = rand(AIM_CLASSES, width), rand(AIM_CLASSES)
    return state


def reference_aim(
    state: dict, videos: torch.Tensor, prefix: str, head: str, heads: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """AIM in plain torch from the raw tensors: returns (video embedding, logits)."""
    batch, frames = videos.shape[:2]
    width = state[f"{prefix}conv1.weight"].shape[0]

    def p(name: str) -> torch.Tensor:
        return state[f"{prefix}{name}"]

    def layer_norm(x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(x, (width,), p(f"{name}.weight"), p(f"{name}.bias"), eps=1e-5)

    def attention(x: torch.Tensor, block: str) -> torch.Tensor:  # x: (sequences, length, width)
        q, k, v = (x @ p(f"{block}attn.in_proj_weight").T + p(f"{block}attn.in_proj_bias")).chunk(3, dim=-1)
        split = lambda t: t.view(*t.shape[:2], heads, width // heads).transpose(1, 2)  # noqa: E731
        weights = torch.softmax(split(q) @ split(k).transpose(-1, -2) / math.sqrt(width // heads), dim=-1)
        out = (weights @ split(v)).transpose(1, 2).reshape(x.shape)
        return out @ p(f"{block}attn.out_proj.weight").T + p(f"{block}attn.out_proj.bias")

    def adapter(x: torch.Tensor, name: str, skip: bool) -> torch.Tensor:
        hidden = F.gelu(x @ p(f"{name}.D_fc1.weight").T + p(f"{name}.D_fc1.bias"))
        out = hidden @ p(f"{name}.D_fc2.weight").T + p(f"{name}.D_fc2.bias")
        return x + out if skip else out

    def mlp(x: torch.Tensor, block: str) -> torch.Tensor:
        hidden = x @ p(f"{block}mlp.c_fc.weight").T + p(f"{block}mlp.c_fc.bias")
        hidden = hidden * torch.sigmoid(1.702 * hidden)  # QuickGELU
        return hidden @ p(f"{block}mlp.c_proj.weight").T + p(f"{block}mlp.c_proj.bias")

    patches = (
        F.conv2d(videos.flatten(0, 1), p("conv1.weight"), stride=p("conv1.weight").shape[-1]).flatten(2).transpose(1, 2)
    )
    cls = p("class_embedding").expand(patches.shape[0], 1, width)
    x = torch.cat([cls, patches], dim=1) + p("positional_embedding")
    tokens = x.shape[1]
    x = (x.view(batch, frames, tokens, width) + p("temporal_embedding")[:, :, None, :]).view(
        batch * frames, tokens, width
    )
    x = layer_norm(x, "ln_pre")
    for index in range(AIM_LAYERS):
        block = f"transformer.resblocks.{index}."
        xt = x.view(batch, frames, tokens, width).transpose(1, 2).reshape(batch * tokens, frames, width)
        xt = adapter(attention(layer_norm(xt, f"{block}ln_1"), block), f"{block}T_Adapter", skip=False)
        x = x + xt.view(batch, tokens, frames, width).transpose(1, 2).reshape(batch * frames, tokens, width)
        x = x + adapter(attention(layer_norm(x, f"{block}ln_1"), block), f"{block}S_Adapter", skip=True)
        xn = layer_norm(x, f"{block}ln_2")
        x = x + mlp(xn, block) + 0.5 * adapter(xn, f"{block}MLP_Adapter", skip=False)
    embedding = layer_norm(x[:, 0], "ln_post").view(batch, frames, width).mean(dim=1)
    return embedding, embedding @ state[f"{head}weight"].T + state[f"{head}bias"]


def random_videos(batch: int = 2, seed: int = 3) -> torch.Tensor:
    return torch.randn(batch, AIM_FRAMES, 3, AIM_IMAGE, AIM_IMAGE, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    "prefix, head, heads",
    [
        ("backbone.", "cls_head.fc_cls.", 2),  # mmaction
        ("model.", "model.fc_cls.", 1),  # TF-CoVR's own AIM module
        ("module.backbone.", "module.cls_head.fc_cls.", 4),  # saved from DDP
    ],
)
def test_aim_checkpoint_equals_direct_computation(tmp_path, prefix, head, heads):
    state = random_aim_state_dict(prefix, head)
    torch.save({"meta": {"epoch": 30, "mmaction_version": "0.24.1"}, "state_dict": state}, tmp_path / "aim.pth")
    args = [
        str(tmp_path / "aim.pth"),
        "--output",
        str(tmp_path / "hf"),
        "--num-heads",
        str(heads),
        "--mlp-adapter-scale",
        "0.5",
    ]
    assert load_command("convert-aim").main(args) == 0

    model = TFCoVRForVideoClassification.from_pretrained(tmp_path / "hf").eval()
    vision = model.config.vision_config
    assert (vision.num_frames, vision.image_size, vision.patch_size, vision.num_attention_heads) == (
        AIM_FRAMES,
        AIM_IMAGE,
        AIM_PATCH,
        heads,
    )
    assert model.config.num_labels == AIM_CLASSES
    videos = random_videos()
    expected_embedding, expected_logits = reference_aim(state, videos, prefix, head, heads)
    with torch.no_grad():
        output = model(videos)
    torch.testing.assert_close(output.video_embeds, expected_embedding, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(output.logits, expected_logits, atol=1e-4, rtol=1e-4)
    video_processor = AutoVideoProcessor.from_pretrained(tmp_path / "hf")
    assert (video_processor.num_frames, video_processor.size, video_processor.sampling_mode) == (
        AIM_FRAMES,
        {"height": AIM_IMAGE, "width": AIM_IMAGE},
        "official",
    )  # the official AIM extraction


def test_aim_vision_only_from_safetensors(tmp_path):
    from safetensors.torch import save_file

    state = random_aim_state_dict("", "fc_cls.", seed=5)
    save_file(state, tmp_path / "aim.safetensors")
    model = convert_aim_checkpoint(
        tmp_path / "aim.safetensors", vision_only=True, num_attention_heads=1, mlp_adapter_scale=0.5
    )
    assert isinstance(model, TFCoVRVisionModel)
    videos = random_videos(seed=4)
    expected, _ = reference_aim(state, videos, "", "fc_cls.", heads=1)
    with torch.no_grad():
        torch.testing.assert_close(model(videos).pooler_output, expected, atol=1e-4, rtol=1e-4)


def test_aim_unknown_backbone_keys_are_rejected(tmp_path):
    state = random_aim_state_dict()
    state["backbone.transformer.resblocks.0.T_Adapter_out.D_fc1.weight"] = torch.zeros(16, AIM_WIDTH)
    torch.save(state, tmp_path / "aim.pth")
    with pytest.raises(DataFormatError, match="T_Adapter_out"):
        convert_aim_checkpoint(tmp_path / "aim.pth", num_attention_heads=2, mlp_adapter_scale=0.5)


# ----------------------------------------------------------------------------------------------
# (2) The official stage-2 checkpoint
# ----------------------------------------------------------------------------------------------

COMBINER_PROJECTION, COMBINER_HIDDEN = 96, 128


def official_model_state(reference: torch.nn.Module, seed: int = 7) -> dict[str, torch.Tensor]:
    """The `model` entry of an official checkpoint: OpenAI CLIP under `clip_model.`, `text_proj`,
    the unused `vision_proj` and the CLIP4Cir combiner, all random."""
    generator = torch.Generator().manual_seed(seed)

    def linear(name: str, out_features: int, in_features: int) -> dict[str, torch.Tensor]:
        bound = in_features**-0.5
        return {
            f"{name}.weight": (torch.rand(out_features, in_features, generator=generator) * 2 - 1) * bound,
            f"{name}.bias": (torch.rand(out_features, generator=generator) * 2 - 1) * bound,
        }

    state = {f"clip_model.{key}": value for key, value in reference.state_dict().items()}
    state.update(linear("text_proj", AIM_WIDTH, EMBED))
    state.update(linear("vision_proj", AIM_WIDTH, EMBED))
    state.update(linear("combiner.text_projection_layer", COMBINER_PROJECTION, AIM_WIDTH))
    state.update(linear("combiner.image_projection_layer", COMBINER_PROJECTION, AIM_WIDTH))
    state.update(linear("combiner.combiner_layer", COMBINER_HIDDEN, 2 * COMBINER_PROJECTION))
    state.update(linear("combiner.output_layer", AIM_WIDTH, COMBINER_HIDDEN))
    state.update(linear("combiner.dynamic_scalar.0", COMBINER_HIDDEN, 2 * COMBINER_PROJECTION))
    state.update(linear("combiner.dynamic_scalar.3", 1, COMBINER_HIDDEN))
    return state


def official_query(state: dict, video: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
    """The official composed query: text_proj -> normalise -> combiner(raw video, text) -> normalise."""

    def linear(x: torch.Tensor, name: str) -> torch.Tensor:
        return x @ state[f"{name}.weight"].T + state[f"{name}.bias"]

    text = F.normalize(linear(text_features, "text_proj"), dim=-1)
    concatenated = torch.cat(
        [
            F.relu(linear(text, "combiner.text_projection_layer")),
            F.relu(linear(video, "combiner.image_projection_layer")),
        ],
        dim=-1,
    )
    hidden = F.relu(linear(concatenated, "combiner.combiner_layer"))
    gate = torch.sigmoid(linear(F.relu(linear(concatenated, "combiner.dynamic_scalar.0")), "combiner.dynamic_scalar.3"))
    return F.normalize(linear(hidden, "combiner.output_layer") + gate * text + (1 - gate) * video, dim=-1)


@pytest.fixture(scope="module")
def official_checkpoint(openai_clip, tmp_path_factory):
    reference = tiny_openai_clip(openai_clip, vit=False)  # a ResNet CLIP, like RN50
    state = official_model_state(reference)
    directory = tmp_path_factory.mktemp("official")
    optimizer = {"state": {}, "param_groups": [{"lr": 1e-5, "weight_decay": 0.05, "params": [0, 1, 2]}]}
    torch.save({"epoch": 4, "model": state, "optimizer": optimizer}, directory / "best_val.ckpt")
    aim_state = random_aim_state_dict(seed=11)
    torch.save({"state_dict": aim_state}, directory / "aim.pth")
    return {"dir": directory, "reference": reference, "state": state, "aim_state": aim_state}


def test_official_stage2_checkpoint_converts_through_the_script(official_checkpoint, tmp_path):
    official = official_checkpoint
    args = [
        str(official["dir"] / "best_val.ckpt"),
        "--output",
        str(tmp_path / "tfcovr"),
        "--vision-checkpoint",
        str(official["dir"] / "aim.pth"),
        "--vision-num-heads",
        "2",
        "--vision-adapter-scale",
        "0.5",
    ]
    assert load_command("convert-checkpoint").main(args) == 0
    model = TFCoVRModel.from_pretrained(tmp_path / "tfcovr").eval()
    assert model.config.normalize_query_video is False
    assert model.config.embed_dim == AIM_WIDTH and model.config.text_embed_dim == EMBED

    generator = torch.Generator().manual_seed(5)
    video = 3 * torch.randn(4, AIM_WIDTH, generator=generator)  # raw, unnormalised AIM embeddings
    tokens = random_tokens(4, seed=6)
    with torch.no_grad():
        text_features = official["reference"].encode_text(tokens)
        expected = official_query(official["state"], video, text_features)
        torch.testing.assert_close(model.encode_text(tokens), text_features, atol=1e-5, rtol=1e-5)
        from_embeds = model.get_query_features(query_video_embeds=video, text_embeds=text_features)
        from_tokens = model.get_query_features(query_video_embeds=video, input_ids=tokens)
    torch.testing.assert_close(from_embeds, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(from_tokens, expected, atol=1e-5, rtol=1e-5)

    # The video encoder is the AIM checkpoint's.
    videos = random_videos(seed=8)
    expected_videos, _ = reference_aim(official["aim_state"], videos, "backbone.", "cls_head.fc_cls.", heads=2)
    with torch.no_grad():
        torch.testing.assert_close(model.vision_model(videos).pooler_output, expected_videos, atol=1e-4, rtol=1e-4)


def test_official_stage2_without_video_encoder(official_checkpoint, caplog):
    tiny_vision = dict(
        hidden_size=AIM_WIDTH,
        intermediate_size=128,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=32,
        patch_size=16,
        num_frames=2,
    )
    with caplog.at_level("WARNING"):
        model = convert_tfcovr_checkpoint(official_checkpoint["dir"] / "best_val.ckpt", vision_config=tiny_vision)
    assert "precomputed AIM" in caplog.text
    video = torch.randn(2, AIM_WIDTH, generator=torch.Generator().manual_seed(9))
    text_features = torch.randn(2, EMBED, generator=torch.Generator().manual_seed(10))
    with torch.no_grad():
        got = model.get_query_features(query_video_embeds=video, text_embeds=text_features)
    torch.testing.assert_close(
        got, official_query(official_checkpoint["state"], video, text_features), atol=1e-5, rtol=1e-5
    )


def test_official_stage2_with_a_converted_stage1_folder(official_checkpoint, tmp_path):
    convert_aim_checkpoint(
        official_checkpoint["dir"] / "aim.pth", tmp_path / "stage1", num_attention_heads=2, mlp_adapter_scale=0.5
    )
    model = convert_tfcovr_checkpoint(
        official_checkpoint["dir"] / "best_val.ckpt", vision_checkpoint=tmp_path / "stage1"
    )
    assert model.config.vision_config.num_attention_heads == 2
    videos = random_videos(seed=12)
    expected, _ = reference_aim(official_checkpoint["aim_state"], videos, "backbone.", "cls_head.fc_cls.", heads=2)
    with torch.no_grad():
        torch.testing.assert_close(model.vision_model(videos).pooler_output, expected, atol=1e-4, rtol=1e-4)


def test_stage2_checkpoint_missing_parts_is_rejected(official_checkpoint, tmp_path):
    state = {k: v for k, v in official_checkpoint["state"].items() if not k.startswith("combiner.output_layer")}
    torch.save({"model": state}, tmp_path / "broken.ckpt")
    with pytest.raises(DataFormatError, match="output_layer"):
        convert_tfcovr_checkpoint(tmp_path / "broken.ckpt")


def test_stage2_folder_gets_a_processor_with_the_clip_tokenizer(tmp_path):
    """With the real CLIP vocabulary size, the converted folder also holds a TFCoVRProcessor, the pipeline's code
    and a model card: it is ready for pipeline(...) and for publishing."""
    from transformers import AutoProcessor

    from modeling_tfcovr import TFCoVRConfig
    from modeling_tfcovr.convert.tfcovr import _save_converted
    from modeling_tfcovr.publishing import plan_upload

    config = TFCoVRConfig(
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=4,
            image_size=32,
            patch_size=8,
            num_frames=4,
        ),
        text_config=dict(
            model_type="clip_text_model",
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=4,
            projection_dim=24,
            vocab_size=49408,
            max_position_embeddings=77,
            bos_token_id=49406,
            eos_token_id=49407,
            pad_token_id=0,
        ),
        embed_dim=32,
        combiner_projection_dim=48,
        combiner_hidden_dim=64,
    )
    _save_converted(TFCoVRModel(config), tmp_path, "best_val.ckpt", None, save_processor=True)
    processor = AutoProcessor.from_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert (
        saved["custom_pipelines"]["composed-video-retrieval"]["impl"]
        == "pipeline_tfcovr.ComposedVideoRetrievalPipeline"
    )
    assert (
        "Converted from the official TF-CoVR stage-2 checkpoint `best_val.ckpt`" in (tmp_path / "README.md").read_text()
    )
    assert "pipeline_tfcovr.py" in [name for name, _ in plan_upload(tmp_path, "ucf/tfcovr-base").files]
    assert processor.video_processor.num_frames == 4
    ids = processor(text=["Show it with 2.5 turns instead of 1.5!"])["input_ids"][0].tolist()
    assert ids[0] == 49406 and ids[-1] == 49407
    assert processor.tokenizer.decode(ids[1:-1]) == "show it with two and a half turns instead of one and a half"


# ----------------------------------------------------------------------------------------------
# (4) The offline CLIP tokenizer
# ----------------------------------------------------------------------------------------------

SENTENCES = [
    "Show it with 2.5 turns, not 1.5!",
    "Don't reverse the salto; it's the SAME vault.",
    "Change the apparatus from Balance Beam to Floor Exercise",
    "a double-twisting   Yurchenko (2/1) vault",
    "What's the difference? I'd say: 3 twists & 1 salto.",
    "they're doing it 100% backwards... we'll see",
    "Add one more rotation:(1.5->2.5)",
    "MiXeD CaSe WoRdS with numbers 12345 and 0.25",
    "I'm sure you've seen a 3.5 somersault pike, 109C",
    "tuck → pike, naïve café",
    "",
]


def test_clip_tokenizer_matches_openai(openai_clip, tmp_path):
    tokenizer = build_clip_tokenizer(tmp_path / "tokenizer")
    assert len(tokenizer) == 49408 and tokenizer.bos_token_id == 49406 and tokenizer.eos_token_id == 49407
    reference = openai_clip.tokenize(SENTENCES)
    reloaded = AutoTokenizer.from_pretrained(tmp_path / "tokenizer")
    for row, sentence in enumerate(SENTENCES):
        ids = tokenizer(sentence)["input_ids"]
        assert ids == reference[row, : len(ids)].tolist(), sentence
        assert not reference[row, len(ids) :].any(), sentence
        assert reloaded(sentence)["input_ids"] == ids

    def zero_padded(texts, **kwargs) -> torch.Tensor:
        encoded = tokenizer(texts, padding="max_length", max_length=77, return_tensors="pt", **kwargs)
        return encoded["input_ids"].masked_fill(encoded["attention_mask"] == 0, 0)

    assert torch.equal(zero_padded(SENTENCES), reference)
    long_text = "Show it with two and a half twists instead of one and a half! " * 8
    assert torch.equal(zero_padded([long_text], truncation=True), openai_clip.tokenize(long_text, truncate=True))


def test_openai_clean_text_covers_ftfy_and_html(openai_clip):
    from modeling_tfcovr.text_normalization import openai_clip_clean_text

    tokenizer = build_clip_tokenizer()
    for text in ["don’t “quote” me", "salto &amp; twist"]:
        ids = tokenizer(openai_clip_clean_text(text))["input_ids"]
        assert ids == openai_clip.tokenize(text)[0, : len(ids)].tolist()


def test_clip_tokenizer_without_clip_package(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(ImportError, match="pip install clip-anytorch"):
        build_clip_tokenizer()


# ----------------------------------------------------------------------------------------------
# (5) Unpickling needs an explicit opt-in
# ----------------------------------------------------------------------------------------------


def test_checkpoint_needing_unpickling_is_refused_without_opt_in(tmp_path):
    path = tmp_path / "aim.pth"
    torch.save({"state_dict": random_aim_state_dict(), "meta": {"config": argparse.Namespace(lr=3e-4)}}, path)
    with pytest.raises(UntrustedFileError, match="trust-pickle") as refused:
        load_checkpoint(path)
    assert "argparse.Namespace" in str(refused.value)
    assert load_checkpoint(path, trust_pickle=True)["meta"]["config"].lr == 3e-4

    script = load_command("convert-aim")
    assert script.main([str(path), "--output", str(tmp_path / "refused")]) == 2
    assert not (tmp_path / "refused").exists()
    assert (
        script.main(
            [
                str(path),
                "--output",
                str(tmp_path / "trusted"),
                "--trust-pickle",
                "--vision-only",
                "--num-heads",
                "1",
                "--adapter-scale",
                "0.5",
            ]
        )
        == 0
    )
    assert isinstance(TFCoVRVisionModel.from_pretrained(tmp_path / "trusted"), TFCoVRVisionModel)


def test_torchscript_archive_needs_opt_in(tmp_path):
    """OpenAI's released CLIP files are TorchScript archives: loading one runs its stored code."""
    module = torch.nn.Linear(3, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(module, torch.randn(1, 3)), str(tmp_path / "scripted.pt"))
        with pytest.raises(UntrustedFileError, match="TorchScript"):
            load_checkpoint(tmp_path / "scripted.pt")
        state = load_checkpoint(tmp_path / "scripted.pt", trust_pickle=True)
    torch.testing.assert_close(dict(state), module.state_dict())


def test_trusted_checkpoint_with_classes_of_code_not_installed(official_checkpoint, tmp_path):
    """The official checkpoint pickles its training script's scheduler; with --trust-pickle it loads
    even though that code is not installed (the object becomes a placeholder)."""
    module = types.ModuleType("tfcovr_official_code_for_tests")

    class CosineSchedule:
        def __init__(self, lr: float):
            self.lr = lr

    CosineSchedule.__module__, CosineSchedule.__qualname__ = module.__name__, "CosineSchedule"
    module.CosineSchedule = CosineSchedule
    sys.modules[module.__name__] = module
    try:
        torch.save(
            {"epoch": 4, "model": official_checkpoint["state"], "scheduler": CosineSchedule(1e-5)},
            tmp_path / "fabric.ckpt",
        )
    finally:
        del sys.modules[module.__name__]

    script = load_command("convert-checkpoint")
    tiny_vision = (
        '{"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 2, '
        '"image_size": 32, "patch_size": 16, "num_frames": 2}'
    )
    args = [
        str(tmp_path / "fabric.ckpt"),
        "--output",
        str(tmp_path / "out"),
        "--vision-config",
        tiny_vision,
        "--no-processor",
    ]
    assert script.main(args) == 2
    assert script.main([*args, "--trust-pickle"]) == 0
    checkpoint = load_checkpoint(tmp_path / "fabric.ckpt", trust_pickle=True)
    assert isinstance(checkpoint["scheduler"], PlaceholderObject) and checkpoint["scheduler"].pickled_state == {
        "lr": 1e-5
    }
    assert TFCoVRModel.from_pretrained(tmp_path / "out").config.normalize_query_video is False


# ----------------------------------------------------------------------------------------------
# (6) Zero-shot composition with a transformers CLIP model
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_clip_model() -> CLIPModel:
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=4,
            vocab_size=50,
            max_position_embeddings=16,
            bos_token_id=48,
            eos_token_id=49,
            pad_token_id=0,
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=4,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=24,
    )
    return CLIPModel(config).eval()


def test_zero_shot_features_equal_direct_computation(tiny_clip_model):
    model = tiny_clip_model
    videos = torch.randn(2, 3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    input_ids = torch.tensor([[48, 5, 6, 7, 49, 0], [48, 9, 49, 0, 0, 0]])
    attention_mask = (torch.arange(6) <= torch.tensor([[4], [2]])).long()
    with torch.no_grad():
        frame_features = torch.stack(
            [
                torch.stack(
                    [
                        model.visual_projection(model.vision_model(pixel_values=frame[None]).pooler_output)[0]
                        for frame in video
                    ]
                )
                for video in videos
            ]
        )
        video_direct = F.normalize(F.normalize(frame_features, dim=-1).mean(dim=1), dim=-1)
        text_direct = F.normalize(
            model.text_projection(model.text_model(input_ids=input_ids, attention_mask=attention_mask).pooler_output),
            dim=-1,
        )

        video = zero_shot_video_features(model, videos, frame_batch_size=4)
        queries = {
            mode: zero_shot_query_features(model, videos, input_ids, attention_mask, mode=mode)
            for mode in ("sum", "avg", "text", "video")
        }
        composer = ZeroShotCLIPComposer(model, mode="avg")
        composed = composer.get_query_features(
            pixel_values_videos=videos, input_ids=input_ids, attention_mask=attention_mask
        )
        from_features = composer.get_query_features(query_video_embeds=video_direct, text_embeds=text_direct)

    torch.testing.assert_close(video, video_direct, atol=1e-5, rtol=1e-5)
    expected = F.normalize(video_direct + text_direct, dim=-1)
    for result in queries.values():
        torch.testing.assert_close(result.norm(dim=-1), torch.ones(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(queries["sum"], expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(queries["avg"], expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(queries["text"], text_direct, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(queries["video"], video_direct, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(composed, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(from_features, expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="mode"):
        zero_shot_query_features(model, videos, input_ids, mode="concat")
