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
        conv_stem (`dict`, *optional*):
            Not part of AIM: the from-scratch variant of the embeddings, for small models trained without CLIP's
            weights. `{"channels": [16, 32, 64]}` puts 3x3 stride-2 convolutions (GELU after each) before the
            patch embedding, whose kernel then shrinks by the stem's stride; `"temporal_kernel": k` (odd) adds a
            residual convolution over `k` neighbouring frames on the stem's feature maps, so that motion is seen
            before the first layer (a from-scratch encoder otherwise finds its temporal features only after a long
            plateau; see the README's synthetic results). `None` (the default) is CLIP's patch embedding, with
            CLIP's architecture and parameter names.

    Training policy is not part of the configuration: which weights train is set by
    [`~training.freezing.set_trainable`], the adapters' initialisation by [`adapter_initialization`].
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
    conv_stem: dict | None = None

    def __post_init__(self, **kwargs):
        _upgrade_legacy_vision_fields(self, kwargs)
        super().__post_init__(**kwargs)
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be at least 1, got {self.num_frames}")
        if self.num_temporal_adapters not in (1, 2):
            raise ValueError(f"num_temporal_adapters must be 1 or 2, got {self.num_temporal_adapters}")
        if self.num_temporal_adapters == 2 and not self.use_temporal_adapter:
            raise ValueError("num_temporal_adapters=2 needs use_temporal_adapter=True")
        if not 0.0 < self.adapter_ratio <= 4.0:
            raise ValueError(f"adapter_ratio must be in (0, 4], got {self.adapter_ratio}")
        if self.conv_stem is not None:
            self._check_conv_stem()

    def _check_conv_stem(self) -> None:
        stem = self.conv_stem
        unknown = set(stem) - {"channels", "temporal_kernel"}
        if unknown:
            raise ValueError(
                f"conv_stem has unknown keys {sorted(unknown)}; its keys are 'channels' and 'temporal_kernel'"
            )
        channels = stem.get("channels")
        if not channels or not all(isinstance(c, int) and c > 0 for c in channels):
            raise ValueError(f"conv_stem['channels'] must be a non-empty list of positive widths, got {channels!r}")
        stride = 2 ** len(channels)
        if self.patch_size % stride:
            raise ValueError(f"patch_size {self.patch_size} must be divisible by the conv stem's stride {stride}")
        kernel = stem.get("temporal_kernel")
        if kernel is not None and (kernel < 1 or kernel % 2 == 0):
            raise ValueError(f"conv_stem['temporal_kernel'] must be an odd number >= 1, got {kernel}")


# Fields of earlier versions. Training policy (freezing, adapter initialisation, gathering) moved to the training
# arguments; a saved config that still has them loads as before, without them.
_LEGACY_POLICY_FIELDS = (
    "freeze_backbone",
    "zero_init_adapters",
    "freeze_vision_encoder",
    "freeze_text_encoder",
    "gather_across_processes",
)


def _upgrade_legacy_vision_fields(config: TFCoVRVisionConfig, kwargs: dict) -> None:
    """Drops the policy fields and folds `conv_stem_channels` / `conv_stem_temporal_kernel` into `conv_stem`."""
    for name in _LEGACY_POLICY_FIELDS:
        kwargs.pop(name, None)
    channels = kwargs.pop("conv_stem_channels", None)
    temporal_kernel = kwargs.pop("conv_stem_temporal_kernel", None)
    if temporal_kernel is not None and not channels:
        raise ValueError("conv_stem_temporal_kernel needs a conv stem (conv_stem_channels)")
    if channels and config.conv_stem is None:
        config.conv_stem = {"channels": list(channels)}
        if temporal_kernel is not None:
            config.conv_stem["temporal_kernel"] = temporal_kernel


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
        normalize_query_video (`bool`, defaults to `True`):
            L2-normalise the query video embedding before the combiner. The official code feeds the
            raw AIM embedding; its converter sets this to `False`.
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
    normalize_query_video: bool = True
    classifier_dropout: float = 0.5
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        for name in _LEGACY_POLICY_FIELDS:
            kwargs.pop(name, None)
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
