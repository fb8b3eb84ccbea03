"""Zero-shot composed video retrieval with any transformers CLIP checkpoint (the paper's zero-shot
protocol for image-text models): the baseline models next to [`TFCoVRModel`], with its feature methods.

A video is the mean of its frames' projected, L2-normalised image features, normalised again. A
composed query adds the modification text's normalised feature to the query video's (`"sum"`) or
averages the two (`"avg"`), then normalises; both give the same normalised query and hence the same
ranking, and are kept apart only to name the protocol a result was produced with. `"text"` and
`"video"` are the usual single-modality baselines. Targets are encoded like query videos.
"""

from __future__ import annotations

import inspect
import os
from types import SimpleNamespace
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .modeling_tfcovr import TFCoVRModel

ComposeMode = Literal["sum", "avg", "text", "video"]
COMPOSE_MODES = ("sum", "avg", "text", "video")
_QUERY_ARGUMENTS = inspect.signature(TFCoVRModel.get_query_features)  # the composer takes TFCoVRModel's arguments


def _features(output) -> torch.Tensor:
    """A `get_*_features` result as a tensor: transformers 5 returns a model output whose
    `pooler_output` holds the projected features, older versions the tensor itself."""
    if isinstance(output, torch.Tensor):
        return output
    return output.pooler_output


def zero_shot_video_features(
    clip_model: nn.Module, pixel_values_videos: torch.Tensor, frame_batch_size: int | None = None
) -> torch.Tensor:
    """L2-normalised video features: the mean of the normalised image features of every frame.

    Args:
        clip_model: a transformers `CLIPModel` (anything with `get_image_features(pixel_values=...)`).
        pixel_values_videos (`torch.Tensor` of shape `(batch_size, num_frames, 3, height, width)`):
            frames preprocessed for the CLIP model (e.g. by [`TFCoVRVideoProcessor`]).
        frame_batch_size: encode at most this many frames at once (default: all).

    Returns:
        `torch.Tensor` of shape `(batch_size, projection_dim)`, float32.
    """
    if pixel_values_videos.ndim != 5:
        raise ValueError(
            f"pixel_values_videos must have shape (batch, frames, 3, H, W), got {tuple(pixel_values_videos.shape)}"
        )
    batch_size, num_frames = pixel_values_videos.shape[:2]
    frames = pixel_values_videos.flatten(0, 1)
    chunk = frame_batch_size or frames.shape[0]
    features = torch.cat(
        [
            _features(clip_model.get_image_features(pixel_values=frames[start : start + chunk]))
            for start in range(0, frames.shape[0], chunk)
        ]
    )
    features = F.normalize(features.float(), dim=-1).view(batch_size, num_frames, -1)
    return F.normalize(features.mean(dim=1), dim=-1)


def zero_shot_text_features(
    clip_model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """L2-normalised projected text features `(batch_size, projection_dim)`, float32."""
    features = _features(clip_model.get_text_features(input_ids=input_ids, attention_mask=attention_mask))
    return F.normalize(features.float(), dim=-1)


def compose_features(
    video_features: torch.Tensor, text_features: torch.Tensor, mode: ComposeMode = "sum"
) -> torch.Tensor:
    """Composes normalised video and text features into normalised query features."""
    if mode == "sum":
        composed = video_features + text_features
    elif mode == "avg":
        composed = (video_features + text_features) / 2
    elif mode == "text":
        composed = text_features
    elif mode == "video":
        composed = video_features
    else:
        raise ValueError(f"mode must be one of {COMPOSE_MODES}, got {mode!r}")
    return F.normalize(composed, dim=-1)


def zero_shot_query_features(
    clip_model: nn.Module,
    pixel_values_videos: torch.Tensor | None = None,
    input_ids: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    mode: ComposeMode = "sum",
    video_features: torch.Tensor | None = None,
    text_features: torch.Tensor | None = None,
    frame_batch_size: int | None = None,
) -> torch.Tensor:
    """L2-normalised composed query features `(batch_size, projection_dim)`.

    Args:
        clip_model: a transformers `CLIPModel`.
        pixel_values_videos / video_features: the query video as frames `(B, T, 3, H, W)` or as
            [`zero_shot_video_features`] output.
        input_ids, attention_mask / text_features: the modification text, tokenised with the CLIP
            checkpoint's tokenizer, or as [`zero_shot_text_features`] output.
        mode: `"sum"`, `"avg"`, `"text"` (text only) or `"video"` (video only).
    """
    if mode not in COMPOSE_MODES:
        raise ValueError(f"mode must be one of {COMPOSE_MODES}, got {mode!r}")
    if video_features is None and mode != "text":
        if pixel_values_videos is None:
            raise ValueError("pass pixel_values_videos or video_features")
        video_features = zero_shot_video_features(clip_model, pixel_values_videos, frame_batch_size)
    if text_features is None and mode != "video":
        if input_ids is None:
            raise ValueError("pass input_ids or text_features")
        text_features = zero_shot_text_features(clip_model, input_ids, attention_mask)
    if mode == "text":
        return F.normalize(text_features.float(), dim=-1)
    if mode == "video":
        return F.normalize(video_features.float(), dim=-1)
    return compose_features(
        F.normalize(video_features.float(), dim=-1), F.normalize(text_features.float(), dim=-1), mode
    )


class ZeroShotCLIPComposer(nn.Module):
    """A CLIP model used for zero-shot composed video retrieval, with the feature methods of
    [`TFCoVRModel`] (`get_video_features`, `get_text_features`, `get_query_features`) so that an
    evaluation loop can treat both alike.

    Args:
        clip_model: a transformers `CLIPModel`.
        mode: how queries are composed: `"sum"`, `"avg"`, `"text"` or `"video"`.
        frame_batch_size: encode at most this many frames at once.
    """

    def __init__(self, clip_model: nn.Module, mode: ComposeMode = "sum", frame_batch_size: int | None = None):
        super().__init__()
        if mode not in COMPOSE_MODES:
            raise ValueError(f"mode must be one of {COMPOSE_MODES}, got {mode!r}")
        self.clip_model = clip_model
        self.mode = mode
        self.frame_batch_size = frame_batch_size

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        mode: ComposeMode = "sum",
        frame_batch_size: int | None = None,
        **kwargs,
    ) -> ZeroShotCLIPComposer:
        """Loads `CLIPModel.from_pretrained(pretrained_model_name_or_path, **kwargs)`, in eval mode."""
        from transformers import CLIPModel

        return cls(CLIPModel.from_pretrained(pretrained_model_name_or_path, **kwargs).eval(), mode, frame_batch_size)

    def get_video_features(
        self, pixel_values_videos: torch.Tensor | None = None, video_embeds: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Normalised video features from frames `(B, T, 3, H, W)` or precomputed `video_embeds`."""
        if video_embeds is not None:
            return F.normalize(video_embeds.float(), dim=-1)
        if pixel_values_videos is None:
            raise ValueError("pass pixel_values_videos or video_embeds")
        return zero_shot_video_features(self.clip_model, pixel_values_videos, self.frame_batch_size)

    def get_text_features(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        text_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Normalised text features from `input_ids` or precomputed `text_embeds`."""
        if text_embeds is not None:
            return F.normalize(text_embeds.float(), dim=-1)
        if input_ids is None:
            raise ValueError("pass input_ids or text_embeds")
        return zero_shot_text_features(self.clip_model, input_ids, attention_mask)

    def get_query_features(self, *args, **kwargs) -> torch.Tensor:
        """Normalised composed queries, from the arguments of [`TFCoVRModel.get_query_features`] (the query video
        as `pixel_values_videos` or `query_video_embeds`, the text as `input_ids` + `attention_mask` or
        `text_embeds`), so that an evaluation loop calls both alike."""
        inputs = _QUERY_ARGUMENTS.bind(self, *args, **kwargs).arguments
        return zero_shot_query_features(
            self.clip_model,
            inputs.get("pixel_values_videos"),
            inputs.get("input_ids"),
            inputs.get("attention_mask"),
            self.mode,
            video_features=inputs.get("query_video_embeds"),
            text_features=inputs.get("text_embeds"),
            frame_batch_size=self.frame_batch_size,
        )

    def forward(self, *args, **kwargs) -> torch.Tensor:
        """Same as [`get_query_features`]."""
        return self.get_query_features(*args, **kwargs)

    # -- the parts of TFCoVRModel's interface that the evaluation loop uses ---------------------

    @property
    def config(self) -> SimpleNamespace:
        """`embed_dim` and `text_embed_dim`: both CLIP's projection width."""
        width = self.clip_model.config.projection_dim
        return SimpleNamespace(embed_dim=width, text_embed_dim=width)

    @property
    def vision_model(self) -> nn.Module:
        """Frame-averaged CLIP image features as a video encoder (`pooler_output`, normalised)."""
        return _FrameAveragedCLIP(self)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised CLIP text features; `get_text_features(text_embeds=...)` accepts them."""
        return zero_shot_text_features(self.clip_model, input_ids, attention_mask)


class _FrameAveragedCLIP(nn.Module):
    def __init__(self, composer: ZeroShotCLIPComposer):
        super().__init__()
        self.composer = composer
        self.config = SimpleNamespace(hidden_size=composer.config.embed_dim)

    def forward(self, pixel_values_videos: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(pooler_output=self.composer.get_video_features(pixel_values_videos))


__all__ = [
    "COMPOSE_MODES",
    "ZeroShotCLIPComposer",
    "compose_features",
    "zero_shot_query_features",
    "zero_shot_text_features",
    "zero_shot_video_features",
]
