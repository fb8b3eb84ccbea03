"""TF-CoVR models: the AIM video encoder, its stage-1 action classifier and the stage-2 composed
video retrieval model (text projection + CLIP4Cir combiner trained with HN-NCE).

The video encoder's CLIP parts carry exactly the parameter names of `transformers.CLIPVisionModel`
(`embeddings.*`, `pre_layrnorm`, `encoder.layers.N.{self_attn,layer_norm1,mlp,layer_norm2}`,
`post_layernorm`), so a CLIP checkpoint loads into it unchanged; AIM adds `temporal_embedding` and
the `*_adapter` modules.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, CLIPTextModelWithProjection, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.models.clip.modeling_clip import CLIPMLP, CLIPAttention, CLIPTextEmbeddings, CLIPVisionEmbeddings
from transformers.processing_utils import Unpack
from transformers.utils import ModelOutput, TransformersKwargs, auto_docstring, can_return_tuple
from transformers.utils.output_capturing import OutputRecorder, capture_outputs

from .configuration_tfcovr import TFCoVRConfig, TFCoVRVisionConfig
from .loss_tfcovr import gather_with_grad, hn_nce_loss, hn_nce_loss_from_logits  # noqa: F401  (re-exported)

# ----------------------------------------------------------------------------------------------
# Outputs
# ----------------------------------------------------------------------------------------------


@auto_docstring(custom_intro="Outputs of the AIM video encoder, [`TFCoVRVisionModel`].")
@dataclass
class TFCoVRVisionModelOutput(ModelOutput):
    r"""
    pooler_output (`torch.FloatTensor` of shape `(batch_size, hidden_size)`):
        The video embedding: mean over frames of each frame's post-layernorm CLS token.
    frame_embeds (`torch.FloatTensor` of shape `(batch_size, num_frames, hidden_size)`):
        Each frame's post-layernorm CLS token.
    last_hidden_state (`torch.FloatTensor` of shape `(batch_size, num_frames, num_patches + 1, hidden_size)`):
        Token states after the last layer (before `post_layernorm`).
    hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
        Token states after the embeddings (and `pre_layrnorm`) and after every layer, `num_hidden_layers + 1`
        tensors of shape `(batch_size * num_frames, num_patches + 1, hidden_size)`, the frames of a video
        consecutive; the last one is `last_hidden_state` flattened over frames.
    attentions (`tuple(torch.FloatTensor)`, *optional*, returned when `output_attentions=True`):
        The spatial attention weights of every layer (after the softmax), one tensor of shape
        `(batch_size * num_frames, num_attention_heads, num_patches + 1, num_patches + 1)` per layer: attention
        among the tokens of one frame. Needs `attn_implementation="eager"`; other attention kernels do not return
        weights (transformers warns, and the tuple is empty).
    temporal_attentions (`tuple(torch.FloatTensor)`, *optional*, returned when `output_temporal_attentions=True`):
        AIM's temporal attention weights (the same attention module applied across frames), one tensor of shape
        `(batch_size * (num_patches + 1), num_attention_heads, num_frames, num_frames)` per layer: attention among
        the frames at one token position. Layers without a temporal branch (`use_temporal_adapter=False`, or a
        single frame) record nothing. `output_attentions` alone does not record them.
    """

    pooler_output: torch.FloatTensor | None = None
    frame_embeds: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    temporal_attentions: tuple[torch.FloatTensor, ...] | None = None


@auto_docstring(custom_intro="Outputs of the stage-1 classifier, [`TFCoVRForVideoClassification`].")
@dataclass
class TFCoVRVideoClassifierOutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `labels` are given):
        Cross-entropy.
    logits (`torch.FloatTensor` of shape `(batch_size, num_labels)`):
        Classification scores.
    video_embeds (`torch.FloatTensor` of shape `(batch_size, hidden_size)`):
        The pooled video embedding.
    hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
        The video encoder's hidden states, as in [`TFCoVRVisionModelOutput`].
    attentions (`tuple(torch.FloatTensor)`, *optional*, returned when `output_attentions=True`):
        The video encoder's spatial attention weights, as in [`TFCoVRVisionModelOutput`].
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    video_embeds: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@auto_docstring(custom_intro="Outputs of the stage-2 composed video retrieval model, [`TFCoVRModel`].")
@dataclass
class TFCoVROutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor` of shape `()`, *optional*):
        HN-NCE over the (global) batch, when targets are given and `return_loss` is not `False`. In distributed
        training with [`TFCoVRModel.gather_across_processes`] on, the loss and `logits_per_query` cover the global batch
        (queries and targets of every process).
    logits_per_query (`torch.FloatTensor` of shape `(num_queries, num_targets)`):
        Cosine similarities of queries and targets divided by the temperature.
    query_embeds (`torch.FloatTensor` of shape `(num_queries, embed_dim)`):
        L2-normalised composed query embeddings.
    target_embeds (`torch.FloatTensor` of shape `(num_targets, embed_dim)`, *optional*):
        L2-normalised target video embeddings.
    query_vision_model_output (`TFCoVRVisionModelOutput`, *optional*):
        The video encoder's output for the query videos, when they are given as frames and hidden states or
        attentions were requested (`output_hidden_states`, `output_attentions`, `output_temporal_attentions`, which
        apply to the video encoder only).
    target_vision_model_output (`TFCoVRVisionModelOutput`, *optional*):
        The same for the target videos.
    """

    loss: torch.FloatTensor | None = None
    logits_per_query: torch.FloatTensor | None = None
    query_embeds: torch.FloatTensor | None = None
    target_embeds: torch.FloatTensor | None = None
    query_vision_model_output: TFCoVRVisionModelOutput | None = None
    target_vision_model_output: TFCoVRVisionModelOutput | None = None

    def to_tuple(self) -> tuple:
        return tuple(value.to_tuple() if isinstance(value, ModelOutput) else value for value in self.values())


# ----------------------------------------------------------------------------------------------
# AIM building blocks
# ----------------------------------------------------------------------------------------------


class TFCoVRAdapterOutputProjection(nn.Linear):
    """The adapter's last linear layer (bottleneck -> hidden size): zero at initialisation under AIM's recipe
    (see [`adapter_initialization`]), so that a fresh adapter outputs 0 (or its input, with the skip connection)."""


class TFCoVRStemConv2d(nn.Conv2d):
    """A convolution of the from-scratch stem, initialised with Kaiming's normal scheme (ReLU gain)."""


class TFCoVRStemConv3d(nn.Conv3d):
    """The stem's convolution over neighbouring frames, initialised like [`TFCoVRStemConv2d`]."""


class TFCoVRAdapter(nn.Module):
    """AIM adapter: Linear(D -> r*D) -> GELU -> Linear(r*D -> D), optional skip connection.

    The second linear layer starts at zero, so a fresh adapter outputs 0 (or its input, with skip).
    """

    def __init__(self, hidden_size: int, ratio: float, skip_connection: bool):
        super().__init__()
        bottleneck = max(1, int(hidden_size * ratio))
        self.skip_connection = skip_connection
        self.fc1 = nn.Linear(hidden_size, bottleneck)
        self.activation = nn.GELU()
        self.fc2 = TFCoVRAdapterOutputProjection(bottleneck, hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """
        Args:
            hidden_states (`torch.Tensor` of shape `(..., hidden_size)`): tokens to adapt; any leading dimensions.

        Returns:
            `torch.Tensor` of the same shape `(..., hidden_size)`: the adapter's output, plus `hidden_states` when
            `skip_connection`.
        """
        adapted = self.fc2(self.activation(self.fc1(hidden_states)))
        return hidden_states + adapted if self.skip_connection else adapted


class TFCoVRDropPath(nn.Module):
    """Stochastic depth: drops a whole residual branch per sample while training."""

    def __init__(self, drop_prob: float):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """
        Args:
            hidden_states (`torch.Tensor` of shape `(batch_size, ...)`): the residual branch; one keep/drop draw
                per index of the first dimension.

        Returns:
            `torch.Tensor` of the same shape: in training, each sample zeroed with probability `drop_prob` and the
            others scaled by `1 / (1 - drop_prob)`; unchanged in eval mode or when `drop_prob == 0`.
        """
        if self.drop_prob == 0.0 or not self.training:
            return hidden_states
        keep_prob = 1.0 - self.drop_prob
        mask_shape = (hidden_states.shape[0],) + (1,) * (hidden_states.ndim - 1)
        mask = hidden_states.new_empty(mask_shape).bernoulli_(keep_prob)
        return hidden_states * mask / keep_prob

    def extra_repr(self) -> str:
        return f"p={self.drop_prob}"


class TFCoVRVisionLayer(GradientCheckpointingLayer):
    """One CLIP ViT layer with AIM's temporal, spatial and joint (MLP) adaptation.

    temporal: x = x + drop_path(T-Adapter(attn(ln_1(x)) over frames))   (per token position)
              with `num_temporal_adapters=2`: T-Adapter(attn(T-Adapter-in(ln_1(x))))  (T-Adapter-in has a skip)
    spatial:  x = x + S-Adapter(attn(ln_1(x)))                           (S-Adapter has a skip)
    joint:    x = x + mlp(ln_2(x)) + drop_path(s * MLP-Adapter(ln_2(x)))
    The temporal branch reuses the layer's own attention weights and `layer_norm1`.
    """

    def __init__(self, config: TFCoVRVisionConfig, drop_path_rate: float):
        super().__init__()
        hidden_size = config.hidden_size
        self.self_attn = CLIPAttention(config)
        self.layer_norm1 = nn.LayerNorm(hidden_size, eps=config.layer_norm_eps)
        self.mlp = CLIPMLP(config)
        self.layer_norm2 = nn.LayerNorm(hidden_size, eps=config.layer_norm_eps)
        self.mlp_adapter_scale = config.mlp_adapter_scale
        ratio = config.adapter_ratio
        self.temporal_adapter = (
            TFCoVRAdapter(hidden_size, ratio, skip_connection=False) if config.use_temporal_adapter else None
        )
        if config.use_temporal_adapter and config.num_temporal_adapters == 2:
            self.temporal_input_adapter = TFCoVRAdapter(hidden_size, ratio, skip_connection=True)
        else:
            self.temporal_input_adapter = None
        self.spatial_adapter = (
            TFCoVRAdapter(hidden_size, ratio, skip_connection=True) if config.use_spatial_adapter else None
        )
        self.mlp_adapter = TFCoVRAdapter(hidden_size, ratio, skip_connection=False) if config.use_mlp_adapter else None
        self.drop_path = TFCoVRDropPath(drop_path_rate)

    def forward(
        self, hidden_states: torch.Tensor, num_frames: int, **kwargs: Unpack[TransformersKwargs]
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """
        Args:
            hidden_states (`torch.Tensor` of shape `(batch_size * num_frames, num_tokens, hidden_size)`).
            num_frames (`int`): frames per video.
            kwargs: passed to the attention (e.g. `output_attentions`).

        Returns:
            `(hidden_states, spatial_attentions, temporal_attentions)`: the layer's output, of the input's shape, and
            the attention weights of the spatial and temporal calls of `self_attn`, of shapes
            `(batch_size * num_frames, num_heads, num_tokens, num_tokens)` and
            `(batch_size * num_tokens, num_heads, num_frames, num_frames)`; `None` where the attention kernel
            returns no weights or there is no temporal branch.
        """
        frames_batch, num_tokens, hidden_size = hidden_states.shape
        temporal_weights = None
        if self.temporal_adapter is not None and num_frames > 1:
            batch_size = frames_batch // num_frames
            # (B*T, N, D) -> (B*N, T, D): attend across frames at each token position.
            temporal = hidden_states.view(batch_size, num_frames, num_tokens, hidden_size).transpose(1, 2)
            temporal = temporal.reshape(batch_size * num_tokens, num_frames, hidden_size)
            temporal = self.layer_norm1(temporal)
            if self.temporal_input_adapter is not None:
                temporal = self.temporal_input_adapter(temporal)
            temporal, temporal_weights = self.self_attn(temporal, **kwargs)
            temporal = self.temporal_adapter(temporal)
            temporal = temporal.view(batch_size, num_tokens, num_frames, hidden_size).transpose(1, 2)
            hidden_states = hidden_states + self.drop_path(temporal.reshape(frames_batch, num_tokens, hidden_size))

        spatial, spatial_weights = self.self_attn(self.layer_norm1(hidden_states), **kwargs)
        if self.spatial_adapter is not None:
            spatial = self.spatial_adapter(spatial)
        hidden_states = hidden_states + spatial

        normed = self.layer_norm2(hidden_states)
        joint = self.mlp(normed)
        if self.mlp_adapter is not None:
            joint = joint + self.drop_path(self.mlp_adapter_scale * self.mlp_adapter(normed))
        return hidden_states + joint, spatial_weights, temporal_weights


class TFCoVRTemporalConv(nn.Module):
    """Residual convolution over neighbouring frames of per-frame feature maps: x + GELU(conv_t(x)),
    the kernel spanning `kernel_size` frames at each position (zero-padded at the clip's ends)."""

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        self.conv = TFCoVRStemConv3d(
            channels, channels, kernel_size=(kernel_size, 1, 1), padding=(kernel_size // 2, 0, 0)
        )
        self.activation = nn.GELU()

    def forward(self, features: torch.Tensor, num_frames: int) -> torch.Tensor:
        """
        Args:
            features (`torch.Tensor` of shape `(batch_size * num_frames, channels, height, width)`): per-frame maps.

        Returns:
            `torch.Tensor` of the same shape.
        """
        frames_batch, channels, height, width = features.shape
        clips = features.view(frames_batch // num_frames, num_frames, channels, height, width).transpose(1, 2)
        clips = clips + self.activation(self.conv(clips))  # (B, C, T, h, w)
        return clips.transpose(1, 2).reshape(frames_batch, channels, height, width)


class TFCoVRVisionEmbeddings(CLIPVisionEmbeddings):
    """CLIP's patch + class + position embeddings, or their from-scratch variant with a convolutional stem in front
    of the patch embedding (`config.conv_stem`: its `channels`, and optionally a temporal convolution of
    `temporal_kernel` frames); without a stem this is exactly CLIP's module."""

    def __init__(self, config: TFCoVRVisionConfig):
        super().__init__(config)
        self.conv_stem = None
        self.conv_stem_temporal = None
        if config.conv_stem:
            stem_channels, temporal_kernel = config.conv_stem["channels"], config.conv_stem.get("temporal_kernel")
            layers, in_channels = [], config.num_channels
            for channels in stem_channels:
                layers += [TFCoVRStemConv2d(in_channels, channels, kernel_size=3, stride=2, padding=1), nn.GELU()]
                in_channels = channels
            self.conv_stem = nn.Sequential(*layers)
            if temporal_kernel:
                self.conv_stem_temporal = TFCoVRTemporalConv(in_channels, temporal_kernel)
            kernel = config.patch_size // 2 ** len(stem_channels)
            self.patch_embedding = nn.Conv2d(in_channels, self.embed_dim, kernel_size=kernel, stride=kernel, bias=False)

    def forward(
        self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool = False, num_frames: int = 1
    ) -> torch.Tensor:
        """
        Args:
            pixel_values (`torch.Tensor` of shape `(batch_size * num_frames, num_channels, height, width)`): frames,
                clip by clip.
            interpolate_pos_encoding (`bool`, defaults to `False`): interpolate the position embeddings to the
                frames' resolution instead of requiring `config.image_size`.
            num_frames (`int`, defaults to 1): frames per clip (used by the temporal convolution of the stem).

        Returns:
            `torch.Tensor` of shape `(batch_size * num_frames, num_patches + 1, hidden_size)`: the class token
            followed by the patch tokens, with position embeddings added.
        """
        if self.conv_stem is None:
            return super().forward(pixel_values, interpolate_pos_encoding=interpolate_pos_encoding)
        batch_size, _, height, width = pixel_values.shape
        features = self.conv_stem(pixel_values.to(self.patch_embedding.weight.dtype))
        if self.conv_stem_temporal is not None:
            features = self.conv_stem_temporal(features, num_frames)
        patch_embeds = self.patch_embedding(features).flatten(2).transpose(1, 2)
        embeddings = torch.cat([self.class_embedding.expand(batch_size, 1, -1), patch_embeds], dim=1)
        if interpolate_pos_encoding:
            return embeddings + self.interpolate_pos_encoding(embeddings, height, width)
        return embeddings + self.position_embedding(self.position_ids)


class TFCoVRVisionEncoder(nn.Module):
    """A stack of `config.num_hidden_layers` [`TFCoVRVisionLayer`]s.

    The drop-path (stochastic depth) rate rises linearly with depth, from 0 at the first layer to
    `config.drop_path_rate` at the last.
    """

    def __init__(self, config: TFCoVRVisionConfig):
        super().__init__()
        depth = config.num_hidden_layers
        rates = [config.drop_path_rate * i / max(1, depth - 1) for i in range(depth)]
        self.layers = nn.ModuleList([TFCoVRVisionLayer(config, rate) for rate in rates])
        self.gradient_checkpointing = False

    def forward(
        self, hidden_states: torch.Tensor, num_frames: int, **kwargs: Unpack[TransformersKwargs]
    ) -> torch.Tensor:
        """
        Args:
            hidden_states (`torch.Tensor` of shape `(batch_size * num_frames, num_tokens, hidden_size)`): the
                embedded frames, frames of a video consecutive.
            num_frames (`int`): frames per video, for the layers' temporal attention.
            kwargs: passed to every layer's attention (e.g. `output_attentions`).

        Returns:
            `torch.Tensor` of the input's shape: the last layer's output. Per-layer hidden states and attention
            weights are recorded from the layers' outputs by [`TFCoVRVisionModel`]'s `capture_outputs`.
        """
        for layer in self.layers:
            hidden_states = layer(hidden_states, num_frames, **kwargs)[0]
        return hidden_states


# ----------------------------------------------------------------------------------------------
# Pre-trained model bases
# ----------------------------------------------------------------------------------------------


def aim_parameter_names(module: nn.Module) -> set[str]:
    """Names of AIM's own parameters (adapters, temporal embedding) inside `module`."""
    return {name for name, _ in module.named_parameters() if "_adapter." in name or name.endswith("temporal_embedding")}


AdapterInit = Literal["zero", "random"]
_ADAPTER_INIT: ContextVar[AdapterInit] = ContextVar("tfcovr_adapter_init", default="zero")


@contextmanager
def adapter_initialization(mode: AdapterInit) -> Iterator[None]:
    """Initialisation of the AIM adapters' outputs and the temporal embedding for models built inside the block.

    `"zero"` (the default, AIM's recipe): they start at zero, so that a CLIP-initialised encoder starts as frame-wise
    CLIP. `"random"`: normal with `config.initializer_range`, for models trained from scratch, which have no such
    function to preserve. A policy of the training run, not of the architecture; it applies while the weights are
    drawn (in module order), so that a seed gives the same model as a single pass of initialisation would.

    Example:

    ```python
    >>> from modeling_tfcovr import TFCoVRVisionConfig, TFCoVRVisionModel, adapter_initialization
    >>> config = TFCoVRVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
    ...                             image_size=32, patch_size=16, num_frames=2)
    >>> with adapter_initialization("random"):
    ...     model = TFCoVRVisionModel(config)
    >>> bool(model.temporal_embedding.abs().sum() > 0), bool(TFCoVRVisionModel(config).temporal_embedding.any())
    (True, False)

    ```
    """
    if mode not in ("zero", "random"):
        raise ValueError(f"adapter initialisation must be 'zero' or 'random', got {mode!r}")
    token = _ADAPTER_INIT.set(mode)
    try:
        yield
    finally:
        _ADAPTER_INIT.reset(token)


class TFCoVRVisionPreTrainedModel(PreTrainedModel):
    config: TFCoVRVisionConfig
    config_class = TFCoVRVisionConfig
    base_model_prefix = "tfcovr_vision"
    main_input_name = "pixel_values_videos"
    input_modalities = ("video",)
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_attention_backend = True
    _no_split_modules = ["TFCoVRVisionLayer", "TFCoVRVisionEmbeddings"]
    # The layer calls its attention twice (across frames, then within each frame), so the weights are taken from
    # the layer's outputs rather than from every call of the attention module.
    _can_record_outputs = {
        "hidden_states": OutputRecorder(TFCoVRVisionLayer, index=0),
        "attentions": OutputRecorder(TFCoVRVisionLayer, index=1),
        "temporal_attentions": OutputRecorder(TFCoVRVisionLayer, index=2),
    }

    def _init_weights(self, module: nn.Module) -> None:
        # transformers initialises leaf modules one by one, children first (container modules without parameters
        # of their own are skipped for custom code), so each case here is a leaf or owns a parameter. The order of
        # the random draws is the modules' order, hence the dedicated leaf classes rather than a pass per container.
        config = self.config
        zero_adapters = _ADAPTER_INIT.get() == "zero"
        if isinstance(module, TFCoVRAdapterOutputProjection) and zero_adapters:
            # Adapter outputs start at zero: at step 0 the model equals frame-wise CLIP.
            init.zeros_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, (TFCoVRStemConv2d, TFCoVRStemConv3d)):
            init.kaiming_normal_(module.weight, nonlinearity="relu")
            init.zeros_(module.bias)
        elif isinstance(module, (nn.Linear, nn.Conv2d, nn.Conv3d)):
            init.normal_(module.weight, std=config.initializer_range * config.initializer_factor)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, std=config.initializer_range * config.initializer_factor)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, CLIPVisionEmbeddings):  # also TFCoVRVisionEmbeddings
            init.normal_(module.class_embedding, std=module.embed_dim**-0.5 * config.initializer_factor)
            init.copy_(module.position_ids, torch.arange(module.num_positions).expand((1, -1)))
        elif isinstance(module, TFCoVRVisionModel):
            if zero_adapters:
                init.zeros_(module.temporal_embedding)
            else:
                init.normal_(module.temporal_embedding, std=config.initializer_range)


class TFCoVRPreTrainedModel(PreTrainedModel):
    config: TFCoVRConfig
    config_class = TFCoVRConfig
    base_model_prefix = "tfcovr"
    main_input_name = "pixel_values_videos"
    input_modalities = ("video", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_attention_backend = True
    _no_split_modules = ["TFCoVRVisionLayer", "TFCoVRVisionEmbeddings", "TFCoVRCombiner"]

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, CLIPTextEmbeddings):
            init.copy_(module.position_ids, torch.arange(module.position_ids.shape[-1]).expand((1, -1)))


# ----------------------------------------------------------------------------------------------
# Stage 1: the AIM video encoder and its classifier
# ----------------------------------------------------------------------------------------------


@auto_docstring(
    custom_intro="""
    AIM video encoder on a CLIP ViT.

    Frames are embedded independently (CLIP patch + position embeddings), a learned temporal
    embedding is added to every token, and each layer mixes information across frames through its
    own attention (the temporal branch). The video embedding is the mean over frames of the
    post-layernorm CLS token (no CLIP projection).

    `output_hidden_states=True` adds every layer's token states, `output_attentions=True` the spatial attention
    weights (with `attn_implementation="eager"`), `output_temporal_attentions=True` those of AIM's temporal
    attention; see [`TFCoVRVisionModelOutput`] for their shapes.
    """
)
class TFCoVRVisionModel(TFCoVRVisionPreTrainedModel):
    def __init__(self, config: TFCoVRVisionConfig):
        super().__init__(config)
        self.embeddings = TFCoVRVisionEmbeddings(config)
        self.temporal_embedding = nn.Parameter(torch.zeros(1, config.num_frames, config.hidden_size))
        self.pre_layrnorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.encoder = TFCoVRVisionEncoder(config)
        self.post_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.embeddings.patch_embedding

    @capture_outputs(tie_last_hidden_states=False)
    @auto_docstring
    def forward(
        self,
        pixel_values_videos: torch.Tensor,
        interpolate_pos_encoding: bool = False,
        **kwargs: Unpack[TransformersKwargs],
    ) -> TFCoVRVisionModelOutput:
        r"""
        pixel_values_videos (`torch.FloatTensor` of shape `(batch_size, num_frames, 3, height, width)`):
            Normalised frames, e.g. from [`TFCoVRVideoProcessor`]. `num_frames` may differ from
            `config.num_frames` only if it is not larger (the temporal embedding is sliced).
        interpolate_pos_encoding (`bool`, defaults to `False`):
            Interpolate the position embeddings to the frames' resolution instead of requiring `config.image_size`.
        """
        if pixel_values_videos.ndim != 5:
            raise ValueError(
                f"pixel_values_videos must have shape (batch, frames, 3, H, W), got {tuple(pixel_values_videos.shape)}"
            )
        batch_size, num_frames = pixel_values_videos.shape[:2]
        if num_frames > self.config.num_frames:
            raise ValueError(f"got {num_frames} frames but the model's temporal embedding has {self.config.num_frames}")
        frames = pixel_values_videos.flatten(0, 1)
        tokens = self.embeddings(frames, interpolate_pos_encoding=interpolate_pos_encoding, num_frames=num_frames)
        num_tokens, hidden_size = tokens.shape[1:]
        tokens = tokens.view(batch_size, num_frames, num_tokens, hidden_size)
        tokens = tokens + self.temporal_embedding[:, :num_frames, None, :].to(tokens.dtype)
        tokens = self.pre_layrnorm(tokens.view(batch_size * num_frames, num_tokens, hidden_size))

        last_hidden_state = self.encoder(tokens, num_frames, **kwargs)
        frame_embeds = self.post_layernorm(last_hidden_state[:, 0]).view(batch_size, num_frames, hidden_size)
        pooled = frame_embeds.mean(dim=1)
        last_hidden_state = last_hidden_state.view(batch_size, num_frames, num_tokens, hidden_size)
        return TFCoVRVisionModelOutput(
            pooler_output=pooled, frame_embeds=frame_embeds, last_hidden_state=last_hidden_state
        )

    @classmethod
    def from_clip_pretrained(
        cls, clip_path: str | os.PathLike, revision: str | None = None, **config_kwargs
    ) -> TFCoVRVisionModel:
        """Builds an AIM encoder whose CLIP weights come from a transformers CLIP checkpoint directory
        (a `CLIPModel` or `CLIPVisionModel`, e.g. `openai/clip-vit-base-patch16`); AIM's own
        parameters keep their zero-output initialisation.

        Args:
            clip_path: a local directory or hub id that `CLIPVisionModel.from_pretrained` reads.
            revision: branch, tag or commit of a hub id (default `main`).
            config_kwargs: AIM fields (`num_frames`, `drop_path_rate`, ...).
        """
        from transformers import CLIPVisionModel

        clip = CLIPVisionModel.from_pretrained(clip_path, revision=revision)
        config = TFCoVRVisionConfig(**{**clip.config.to_dict(), **config_kwargs})
        model = cls(config)
        load_clip_vision_weights(model, clip.state_dict())
        return model


def load_clip_vision_weights(model: TFCoVRVisionModel, clip_state_dict: dict[str, torch.Tensor]) -> None:
    """Copies a `CLIPVisionModel` state dict into `model`; only AIM's own parameters may be absent.

    Raises:
        ValueError: the state dict has keys the model lacks, or lacks CLIP keys the model has.
    """
    result = model.load_state_dict(clip_state_dict, strict=False)
    unexpected = [key for key in result.unexpected_keys if not key.endswith("position_ids")]
    missing_clip = [key for key in result.missing_keys if key not in aim_parameter_names(model)]
    if unexpected or missing_clip:
        raise ValueError(
            f"CLIP weights do not match the AIM encoder: unexpected {unexpected[:5]}, missing {missing_clip[:5]}"
        )


@auto_docstring(
    custom_intro="""
    Stage 1: the AIM encoder with dropout and a linear head, trained with cross-entropy on
    fine-grained action labels (`config.id2label`).
    """
)
class TFCoVRForVideoClassification(TFCoVRPreTrainedModel):
    def __init__(self, config: TFCoVRConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.vision_model = TFCoVRVisionModel._from_config(config.vision_config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.vision_config.hidden_size, config.num_labels)
        self.post_init()

    @can_return_tuple
    @auto_docstring
    def forward(
        self,
        pixel_values_videos: torch.Tensor,
        labels: torch.LongTensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> TFCoVRVideoClassifierOutput:
        r"""
        pixel_values_videos (`torch.FloatTensor` of shape `(batch_size, num_frames, 3, height, width)`):
            Normalised frames, e.g. from [`TFCoVRVideoProcessor`].
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Class indices; the output then holds the cross-entropy.
        """
        vision_outputs: TFCoVRVisionModelOutput = self.vision_model(pixel_values_videos, return_dict=True, **kwargs)
        video_embeds = vision_outputs.pooler_output
        logits = self.classifier(self.dropout(video_embeds))
        loss = F.cross_entropy(logits, labels.to(logits.device)) if labels is not None else None
        return TFCoVRVideoClassifierOutput(
            loss=loss,
            logits=logits,
            video_embeds=video_embeds,
            hidden_states=vision_outputs.hidden_states,
            attentions=vision_outputs.attentions,
        )

    @classmethod
    def from_clip_pretrained(
        cls, clip_path: str | os.PathLike, config: TFCoVRConfig, revision: str | None = None
    ) -> TFCoVRForVideoClassification:
        """A classifier whose vision backbone starts from a transformers CLIP checkpoint (a folder or a hub id at
        `revision`); the head and AIM's parameters are freshly initialised. `config.vision_config` must match the
        checkpoint's architecture (its AIM fields are kept)."""
        from transformers import CLIPVisionModel

        model = cls(config)
        clip = CLIPVisionModel.from_pretrained(clip_path, revision=revision)
        load_clip_vision_weights(model.vision_model, clip.state_dict())
        return model


# ----------------------------------------------------------------------------------------------
# Stage 2: composed video retrieval
# ----------------------------------------------------------------------------------------------


class TFCoVRCombiner(nn.Module):
    """CLIP4Cir's combiner: fuses a video and a text embedding into one query embedding.

    Each modality is projected (Linear + ReLU + Dropout), the two are concatenated; an MLP predicts
    a residual and a sigmoid gate `g` mixes the inputs: `mlp(c) + g * text + (1 - g) * video`.
    Parameter names follow the CLIP4Cir / TF-CoVR code, so official checkpoints convert by copying.
    """

    def __init__(self, embed_dim: int, projection_dim: int, hidden_dim: int, dropout: float):
        super().__init__()
        self.text_projection_layer = nn.Linear(embed_dim, projection_dim)
        self.image_projection_layer = nn.Linear(embed_dim, projection_dim)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.combiner_layer = nn.Linear(2 * projection_dim, hidden_dim)
        self.output_layer = nn.Linear(hidden_dim, embed_dim)
        self.dropout3 = nn.Dropout(dropout)
        self.dynamic_scalar = nn.Sequential(
            nn.Linear(2 * projection_dim, hidden_dim),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, 1),
            nn.Sigmoid(),
        )

    def forward(self, video_embeds: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
        """
        Args:
            video_embeds (`torch.Tensor` of shape `(batch_size, embed_dim)`).
            text_embeds (`torch.Tensor` of shape `(batch_size, embed_dim)`).

        Returns:
            `torch.Tensor` of shape `(batch_size, embed_dim)`, L2-normalised.
        """
        text_projected = self.dropout1(F.relu(self.text_projection_layer(text_embeds)))
        video_projected = self.dropout2(F.relu(self.image_projection_layer(video_embeds)))
        concatenated = torch.cat((text_projected, video_projected), dim=-1)
        hidden = self.dropout3(F.relu(self.combiner_layer(concatenated)))
        gate = self.dynamic_scalar(concatenated)
        fused = self.output_layer(hidden) + gate * text_embeds + (1 - gate) * video_embeds
        return F.normalize(fused, dim=-1)


class TFCoVRModel(TFCoVRPreTrainedModel):
    """Stage 2, TF-CoVR-Base: composed video retrieval.

    A query (video + modification text) is embedded as `combiner(video, text_projection(text))`;
    targets are video embeddings from the same AIM encoder. Trained with HN-NCE; stage-2 training freezes the
    video and text encoders ([`~training.freezing.set_trainable`]). Every method accepts raw inputs or precomputed
    embeddings, so training can run on released video embeddings and cached text features.
    """

    def __init__(self, config: TFCoVRConfig):
        super().__init__(config)
        if config.vision_config.hidden_size != config.embed_dim:
            raise ValueError(
                f"embed_dim ({config.embed_dim}) must equal the video encoder's hidden_size "
                f"({config.vision_config.hidden_size})"
            )
        self.vision_model = TFCoVRVisionModel._from_config(config.vision_config)
        self.text_model = _text_encoder_from_config(config.text_config)
        self.text_projection = nn.Linear(config.text_embed_dim, config.embed_dim)
        self.combiner = TFCoVRCombiner(
            config.embed_dim, config.combiner_projection_dim, config.combiner_hidden_dim, config.combiner_dropout
        )
        self.post_init()
        # In distributed training, gather the queries and targets of every process (with gradients) so that each
        # sees the negatives of the global batch. Training policy, set by the training run (stage 2 turns it on).
        self.gather_across_processes = False

    def train(self, mode: bool = True) -> TFCoVRModel:
        """Like `nn.Module.train`, except that frozen encoders (no parameter that requires gradients, see
        [`~training.freezing.set_trainable`]) stay in evaluation mode: they compute the same features (no dropout, no
        drop path) in training as in evaluation and in the pipeline."""
        super().train(mode)
        if mode:
            for encoder in (self.vision_model, self.text_model):
                if not any(parameter.requires_grad for parameter in encoder.parameters()):
                    encoder.eval()
        return self

    # -- encoders --------------------------------------------------------------------------

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Output of the text encoder before the text projection.

        Returns:
            `torch.Tensor` of shape `(batch_size, config.text_embed_dim)`: CLIP's projected EOS
            feature for CLIP text towers, the attention-masked mean of the last hidden states otherwise.
        """
        if isinstance(self.text_model, CLIPTextModelWithProjection):
            return self.text_model(input_ids=input_ids, attention_mask=attention_mask).text_embeds
        outputs = self.text_model(input_ids=input_ids, attention_mask=attention_mask)
        states = outputs.last_hidden_state
        if attention_mask is None:
            return states.mean(dim=1)
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        return (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

    def get_video_features(
        self, pixel_values_videos: torch.Tensor | None = None, video_embeds: torch.Tensor | None = None
    ) -> torch.Tensor:
        """L2-normalised video embeddings `(batch_size, embed_dim)`, from frames `(B, T, 3, H, W)` or
        from precomputed (unnormalised or normalised) `video_embeds` `(B, embed_dim)`."""
        if video_embeds is None:
            if pixel_values_videos is None:
                raise ValueError("pass pixel_values_videos or video_embeds")
            video_embeds = self.vision_model(pixel_values_videos).pooler_output
        return F.normalize(video_embeds.float(), dim=-1)

    def get_text_features(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        text_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """L2-normalised projected text features `(batch_size, embed_dim)`.

        Args:
            text_embeds (`torch.Tensor` of shape `(batch_size, config.text_embed_dim)`, *optional*):
                precomputed outputs of `encode_text` (the cache used when the text encoder is frozen).
        """
        if text_embeds is None:
            if input_ids is None:
                raise ValueError("pass input_ids or text_embeds")
            text_embeds = self.encode_text(input_ids, attention_mask)
        return F.normalize(self.text_projection(text_embeds.to(self.text_projection.weight.dtype)), dim=-1)

    def get_query_features(
        self,
        pixel_values_videos: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        query_video_embeds: torch.Tensor | None = None,
        text_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """L2-normalised composed query embeddings `(batch_size, embed_dim)`.

        Args:
            pixel_values_videos / query_video_embeds: the query video as frames `(B, T, 3, H, W)` or
                as its encoder embedding `(B, embed_dim)`.
            input_ids + attention_mask / text_embeds: the modification text, tokenised or as
                `encode_text` output `(B, text_embed_dim)`.
        """
        if query_video_embeds is None:
            if pixel_values_videos is None:
                raise ValueError("pass pixel_values_videos or query_video_embeds")
            query_video_embeds = self.vision_model(pixel_values_videos).pooler_output
        video = query_video_embeds.to(self.text_projection.weight.dtype)
        if self.config.normalize_query_video:
            video = F.normalize(video, dim=-1)
        text = self.get_text_features(input_ids, attention_mask, text_embeds).to(video.dtype)
        return self.combiner(video, text)

    # -- training --------------------------------------------------------------------------

    @can_return_tuple
    @auto_docstring
    def forward(
        self,
        pixel_values_videos: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        query_video_embeds: torch.Tensor | None = None,
        text_embeds: torch.Tensor | None = None,
        target_pixel_values_videos: torch.Tensor | None = None,
        target_video_embeds: torch.Tensor | None = None,
        return_loss: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> TFCoVROutput:
        r"""
        pixel_values_videos (`torch.FloatTensor` of shape `(batch_size, num_frames, 3, height, width)`, *optional*):
            The query videos as frames; or pass `query_video_embeds`.
        input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            The modification texts, tokenised; or pass `text_embeds`.
        attention_mask (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            The texts' attention mask.
        query_video_embeds (`torch.FloatTensor` of shape `(batch_size, embed_dim)`, *optional*):
            The query videos as video-encoder embeddings.
        text_embeds (`torch.FloatTensor` of shape `(batch_size, text_embed_dim)`, *optional*):
            The modification texts as `encode_text` outputs.
        target_pixel_values_videos (`torch.FloatTensor` of shape `(batch, num_frames, 3, height, width)`, *optional*):
            The target of each query as frames; row `i` is query `i`'s positive, the other rows its negatives.
        target_video_embeds (`torch.FloatTensor` of shape `(batch_size, embed_dim)`, *optional*):
            The targets as video-encoder embeddings.
        return_loss (`bool`, *optional*):
            Compute HN-NCE (default: whenever targets are given).
        """
        query_vision_outputs = target_vision_outputs = None
        if query_video_embeds is None and pixel_values_videos is not None:
            query_vision_outputs = self.vision_model(pixel_values_videos, return_dict=True, **kwargs)
            query_video_embeds = query_vision_outputs.pooler_output
        if target_video_embeds is None and target_pixel_values_videos is not None:
            target_vision_outputs = self.vision_model(target_pixel_values_videos, return_dict=True, **kwargs)
            target_video_embeds = target_vision_outputs.pooler_output
        query_embeds = self.get_query_features(None, input_ids, attention_mask, query_video_embeds, text_embeds)
        target_embeds = None
        if target_video_embeds is not None:
            target_embeds = self.get_video_features(video_embeds=target_video_embeds).to(query_embeds.dtype)
        if return_loss is None:
            return_loss = target_embeds is not None

        loss = logits = None
        if target_embeds is not None:
            all_queries, all_targets = query_embeds, target_embeds
            if self.training and self.gather_across_processes:
                all_queries, all_targets = gather_with_grad(query_embeds), gather_with_grad(target_embeds)
            logits = all_queries.float() @ all_targets.float().T / self.config.temperature
            if return_loss:
                loss = hn_nce_loss_from_logits(
                    logits, self.config.hn_nce_alpha, self.config.hn_nce_beta, self.config.hn_nce_variant
                )
        if not self._records_vision_outputs(kwargs):
            # Without recorded states they hold nothing the embeddings do not; leaving them out keeps the tuple and
            # the Trainer's predictions what they were.
            query_vision_outputs = target_vision_outputs = None
        return TFCoVROutput(
            loss=loss,
            logits_per_query=logits,
            query_embeds=query_embeds,
            target_embeds=target_embeds,
            query_vision_model_output=query_vision_outputs,
            target_vision_model_output=target_vision_outputs,
        )

    def _records_vision_outputs(self, kwargs: dict) -> bool:
        """Whether the video encoder was asked (by call or by its config) to record hidden states or attentions."""
        vision_config = self.vision_model.config
        return any(
            kwargs.get(flag, getattr(vision_config, flag, False))
            for flag in ("output_hidden_states", "output_attentions", "output_temporal_attentions")
        )

    @classmethod
    def from_pretrained_encoders(
        cls,
        config: TFCoVRConfig,
        vision_path: str | os.PathLike | None = None,
        text_path: str | os.PathLike | None = None,
        vision_revision: str | None = None,
        text_revision: str | None = None,
    ) -> TFCoVRModel:
        """Builds a stage-2 model from existing encoders: `vision_path` is a stage-1 checkpoint
        (`TFCoVRForVideoClassification` / `TFCoVRVisionModel` folder) or a transformers CLIP checkpoint;
        `text_path` a transformers text-encoder checkpoint (CLIP, or any `AutoModel` text encoder).
        Each is a local folder or a hub id, read at `vision_revision` / `text_revision` (default `main`).
        The config's sub-configs are replaced by the checkpoints' own."""
        from transformers import AutoConfig, CLIPTextConfig

        if vision_path is not None:
            vision_model = load_vision_encoder(vision_path, config.vision_config, revision=vision_revision)
            config.vision_config = vision_model.config
            config.embed_dim = vision_model.config.hidden_size  # the retrieval space is the video embedding's
        if text_path is not None:
            text_config = AutoConfig.from_pretrained(text_path, revision=text_revision)
            if getattr(text_config, "model_type", None) == "clip":
                text_config = CLIPTextConfig(**text_config.text_config.to_dict())
            config.text_config = text_config
        model = cls(config)
        if vision_path is not None:
            model.vision_model.load_state_dict(vision_model.state_dict())
        if text_path is not None:
            if isinstance(model.text_model, CLIPTextModelWithProjection):
                pretrained_text = CLIPTextModelWithProjection.from_pretrained(text_path, revision=text_revision)
            else:
                pretrained_text = AutoModel.from_pretrained(text_path, revision=text_revision)
            model.text_model.load_state_dict(pretrained_text.state_dict())
        return model


def _text_encoder_from_config(text_config) -> PreTrainedModel:
    if text_config.model_type == "clip_text_model":
        return CLIPTextModelWithProjection._from_config(text_config)
    return AutoModel.from_config(text_config)


_AIM_FIELDS = (
    "num_frames",
    "adapter_ratio",
    "mlp_adapter_scale",
    "drop_path_rate",
    "use_temporal_adapter",
    "use_spatial_adapter",
    "use_mlp_adapter",
    "num_temporal_adapters",
)


def load_vision_encoder(
    path: str | os.PathLike, vision_config: TFCoVRVisionConfig | None = None, revision: str | None = None
) -> TFCoVRVisionModel:
    """A `TFCoVRVisionModel` from a TF-CoVR checkpoint (stage 1 or 2, or a bare vision model) or from
    a transformers CLIP checkpoint (then AIM's fields come from `vision_config`, default AIM's).

    `path` is a local folder or a hub id, read at `revision` (branch, tag or commit; default `main`)
    through the Hub's own resolution and cache (so it also works offline once fetched)."""
    vision_config = vision_config or TFCoVRVisionConfig()
    model_type = _saved_model_type(path, revision)
    if model_type == "tfcovr":
        return TFCoVRForVideoClassification.from_pretrained(path, revision=revision).vision_model
    if model_type == "tfcovr_vision_model":
        return TFCoVRVisionModel.from_pretrained(path, revision=revision)
    aim_fields = {k: getattr(vision_config, k) for k in _AIM_FIELDS}
    return TFCoVRVisionModel.from_clip_pretrained(path, revision=revision, **aim_fields)


def _saved_model_type(path: str | os.PathLike, revision: str | None = None) -> str | None:
    """`model_type` of a checkpoint's config.json — a local folder or a hub id at `revision`, resolved by
    transformers (`PretrainedConfig.get_config_dict`, hence the hub cache and `HF_HUB_OFFLINE`) — or `None`
    when there is no config.json to read."""
    from transformers import PretrainedConfig

    if os.path.isfile(path):
        return None
    try:
        config_dict, _ = PretrainedConfig.get_config_dict(path, revision=revision)
    except OSError:  # no config.json there; a repository that cannot be reached raises again when its weights load
        return None
    return config_dict.get("model_type")


__all__ = [
    "TFCoVRPreTrainedModel",
    "TFCoVRVisionPreTrainedModel",
    "TFCoVRVisionModel",
    "TFCoVRForVideoClassification",
    "TFCoVRModel",
    "TFCoVRCombiner",
    "TFCoVRAdapter",
    "TFCoVRTemporalConv",
    "TFCoVRVisionModelOutput",
    "TFCoVRVideoClassifierOutput",
    "TFCoVROutput",
    "hn_nce_loss",
    "gather_with_grad",
    "load_clip_vision_weights",
    "load_vision_encoder",
    "adapter_initialization",
    "aim_parameter_names",
]
