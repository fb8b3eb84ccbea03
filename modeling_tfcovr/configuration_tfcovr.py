"""Configurations of the TF-CoVR models.

`TFCoVRVisionConfig` describes the AIM video encoder (a CLIP ViT with temporal, spatial and MLP
adapters); `TFCoVRConfig` the whole composed-video-retrieval model: video encoder, text encoder,
the CLIP4Cir combiner and the HN-NCE loss. Defaults follow the paper's TF-CoVR-Base: AIM on
CLIP ViT-B/16 at 224 px with 12 frames, CLIP RN50's text tower, a 768-d embedding space.
"""

from __future__ import annotations

from typing import ClassVar

from transformers import AutoConfig, CLIPVisionConfig, PretrainedConfig
from transformers.configuration_utils import SubConfigSpec

# The text tower of OpenAI CLIP RN50 (width 512, 12 layers, 8 heads, output projection 1024).
CLIP_RN50_TEXT_CONFIG = {
    "vocab_size": 49408,
    "hidden_size": 512,
    "intermediate_size": 2048,
    "projection_dim": 1024,
    "num_hidden_layers": 12,
    "num_attention_heads": 8,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
    "pad_token_id": 0,
    "bos_token_id": 49406,
    "eos_token_id": 49407,
}


class TFCoVRVisionConfig(CLIPVisionConfig):
    r"""Configuration of [`TFCoVRVisionModel`]: the fields of [`CLIPVisionConfig`] (defaults: ViT-B/16 at
    224 px) plus AIM's.

    Args:
        num_frames (`int`, defaults to 12):
            Frames per clip; the length of the temporal embedding.
        adapter_ratio (`float`, defaults to 0.25):
            Bottleneck width of every adapter as a fraction of `hidden_size`.
        mlp_adapter_scale (`float`, defaults to 0.5):
            Scale `s` of the joint (MLP) adapter: `x + mlp(ln_2(x)) + s * adapter(ln_2(x))`.
        drop_path_rate (`float`, defaults to 0.2):
            Stochastic depth of the adapter branches, rising linearly from 0 at the first layer.
        use_temporal_adapter / use_spatial_adapter / use_mlp_adapter (`bool`, default `True`):
            Which of AIM's adapters exist. With all three off the model is frame-wise CLIP.
        num_temporal_adapters (`int`, defaults to 1):
            AIM's `num_tadapter`. With 2, a second temporal adapter (with skip connection) also adapts the
            temporal attention's input: `T-Adapter(attn(T-Adapter-in(ln_1(x))))` (AIM's ViT-B/16
            something-something configuration). Needs `use_temporal_adapter`.
        conv_stem_channels (`list[int]`, *optional*):
            Not part of AIM: for small models trained from scratch, 3x3 stride-2 convolutions (GELU
            after each) before the patch embedding, whose kernel then shrinks by the stem's stride.
            Off by default, which keeps the architecture and parameter names of CLIP.
        conv_stem_temporal_kernel (`int`, *optional*):
            Not part of AIM either: with a conv stem, a residual convolution over `k` neighbouring frames
            (odd `k`, GELU) on the stem's feature maps, so that motion is seen before the first layer. A
            from-scratch encoder otherwise finds its temporal features only after a long plateau (see the
            README's synthetic results); pretrained CLIP features make it unnecessary. Off by default.
        zero_init_adapters (`bool`, defaults to `True`):
            AIM's initialisation: adapter outputs and the temporal embedding start at zero, so a
            CLIP-initialised encoder starts as frame-wise CLIP. Models trained from scratch have no
            such function to preserve and may start them small and random instead (`False`).
        freeze_backbone (`bool`, defaults to `True`):
            Keep CLIP's own weights frozen so that only adapters, the temporal embedding and
            `post_layernorm` train (AIM's recipe). Set to `False` for models trained from scratch.
    """

    model_type = "tfcovr_vision_model"
    base_config_key = "vision_config"

    patch_size: int = 16
    num_frames: int = 12
    adapter_ratio: float = 0.25
    mlp_adapter_scale: float = 0.5
    drop_path_rate: float = 0.2
    use_temporal_adapter: bool = True
    use_spatial_adapter: bool = True
    use_mlp_adapter: bool = True
    num_temporal_adapters: int = 1
    conv_stem_channels: list[int] | None = None
    conv_stem_temporal_kernel: int | None = None
    zero_init_adapters: bool = True
    freeze_backbone: bool = True

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be at least 1, got {self.num_frames}")
        if self.num_temporal_adapters not in (1, 2):
            raise ValueError(f"num_temporal_adapters must be 1 or 2, got {self.num_temporal_adapters}")
        if self.num_temporal_adapters == 2 and not self.use_temporal_adapter:
            raise ValueError("num_temporal_adapters=2 needs use_temporal_adapter=True")
        if not 0.0 < self.adapter_ratio <= 4.0:
            raise ValueError(f"adapter_ratio must be in (0, 4], got {self.adapter_ratio}")
        if self.conv_stem_channels:
            stride = 2 ** len(self.conv_stem_channels)
            if self.patch_size % stride:
                raise ValueError(f"patch_size {self.patch_size} must be divisible by the conv stem's stride {stride}")
        if self.conv_stem_temporal_kernel is not None:
            if not self.conv_stem_channels:
                raise ValueError("conv_stem_temporal_kernel needs a conv stem (conv_stem_channels)")
            if self.conv_stem_temporal_kernel < 1 or self.conv_stem_temporal_kernel % 2 == 0:
                raise ValueError(f"conv_stem_temporal_kernel must be an odd number >= 1, got {self.conv_stem_temporal_kernel}")


class TFCoVRConfig(PretrainedConfig):
    r"""Configuration of [`TFCoVRModel`] (stage 2) and [`TFCoVRForVideoClassification`] (stage 1).

    Args:
        vision_config (`dict` or [`TFCoVRVisionConfig`], *optional*):
            The AIM video encoder.
        text_config (`dict` or [`PretrainedConfig`], *optional*):
            Any transformers text-encoder config. CLIP text configs (`clip_text_model`) use their
            projected output; other encoders (BERT, MiniLM, ...) are mean-pooled over the attention
            mask. Defaults to the CLIP RN50 text tower.
        embed_dim (`int`, defaults to 768):
            Dimension of the shared retrieval space (the video embedding's width).
        combiner_projection_dim / combiner_hidden_dim (`int`, defaults to 3072 / 6144):
            Widths of the CLIP4Cir combiner's per-modality projections and hidden layer.
        combiner_dropout (`float`, defaults to 0.5):
            Dropout inside the combiner.
        temperature (`float`, defaults to 0.07):
            Softmax temperature of the contrastive loss and of `logits_per_query`.
        hn_nce_alpha / hn_nce_beta (`float`, defaults to 1.0 / 0.5):
            HN-NCE weights; `alpha=1, beta=0` is InfoNCE.
        hn_nce_variant (`str`, defaults to `"paper"`):
            `"paper"`: HN-NCE as its paper defines it. `"official"`: the official TF-CoVR / CoVR loss bit for
            bit, whose query-to-target weights are normalised by the wrong row's sum when `beta > 0` (see
            `loss_tfcovr.py`). Converted official checkpoints set `"official"`.
        freeze_vision_encoder / freeze_text_encoder (`bool`, default `True`):
            Stage 2 trains only the text projection and the combiner, as in the paper.
        normalize_query_video (`bool`, defaults to `True`):
            L2-normalise the query video embedding before the combiner. The official code feeds the
            raw AIM embedding; its converter sets this to `False`.
        gather_across_processes (`bool`, defaults to `True`):
            In distributed training, gather query and target embeddings of every process (with
            gradients) so that each sees the negatives of the global batch.
        classifier_dropout (`float`, defaults to 0.5):
            Dropout before the stage-1 classification head. `id2label` / `label2id` hold its labels.
    """

    model_type = "tfcovr"
    # Trainer's prediction loop keeps the embeddings (for retrieval metrics), not the in-batch logits.
    keys_to_ignore_at_inference: ClassVar[list[str]] = ["logits_per_query"]
    sub_configs_defaults = {
        "vision_config": TFCoVRVisionConfig,
        "text_config": SubConfigSpec(
            config_class=AutoConfig, model_type="clip_text_model", init_kwargs=CLIP_RN50_TEXT_CONFIG
        ),
    }

    vision_config: dict | TFCoVRVisionConfig | None = None
    text_config: dict | PretrainedConfig | None = None
    embed_dim: int = 768
    combiner_projection_dim: int = 3072
    combiner_hidden_dim: int = 6144
    combiner_dropout: float = 0.5
    temperature: float = 0.07
    hn_nce_alpha: float = 1.0
    hn_nce_beta: float = 0.5
    hn_nce_variant: str = "paper"
    freeze_vision_encoder: bool = True
    freeze_text_encoder: bool = True
    normalize_query_video: bool = True
    gather_across_processes: bool = True
    classifier_dropout: float = 0.5
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        if self.hn_nce_variant not in ("paper", "official"):
            raise ValueError(f"hn_nce_variant must be 'paper' or 'official', got {self.hn_nce_variant!r}")

    @property
    def text_embed_dim(self) -> int:
        """Width of the text encoder's output before the text projection."""
        if self.text_config.model_type == "clip_text_model" and self.text_config.projection_dim:
            return self.text_config.projection_dim
        return self.text_config.hidden_size


__all__ = ["TFCoVRConfig", "TFCoVRVisionConfig", "CLIP_RN50_TEXT_CONFIG"]
