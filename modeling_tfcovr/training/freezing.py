"""Which weights train: the one place where a training run sets `requires_grad`.

Every parameter gets an explicit `True` or `False` from the arguments, so a call undoes any earlier one (freezing is
reversible). The models themselves freeze nothing: a freshly built or loaded model has every parameter trainable.
"""

from __future__ import annotations

from torch import nn

from ..modeling_tfcovr import TFCoVRForVideoClassification, TFCoVRModel, TFCoVRVisionModel, aim_parameter_names


def _vision_trainable_names(vision_model: TFCoVRVisionModel, backbone: bool) -> set[str] | None:
    """Names of the encoder's parameters that train (`None`: all of them)."""
    if backbone:
        return None
    post_layernorm = {name for name, _ in vision_model.post_layernorm.named_parameters(prefix="post_layernorm")}
    return aim_parameter_names(vision_model) | post_layernorm


def _set_vision(vision_model: TFCoVRVisionModel, train: bool, backbone: bool) -> None:
    names = _vision_trainable_names(vision_model, backbone) if train else set()
    for name, parameter in vision_model.named_parameters():
        parameter.requires_grad = names is None or name in names


def set_trainable(
    model: nn.Module,
    *,
    vision_encoder: bool = True,
    backbone: bool = False,
    text_encoder: bool = False,
) -> int:
    """Sets `requires_grad` of every parameter of a TF-CoVR model and returns the number of trainable parameters.

    Args:
        model: a [`TFCoVRVisionModel`], [`TFCoVRForVideoClassification`] (stage 1) or [`TFCoVRModel`] (stage 2).
        vision_encoder: whether the video encoder trains at all (stage 1: yes; stage 2: no, as in the paper).
        backbone: with `vision_encoder`, whether CLIP's own weights train too (`True`, for models trained from
            scratch) or only AIM's adapters, its temporal embedding and `post_layernorm` (`False`, AIM's recipe).
        text_encoder: whether the text encoder of a [`TFCoVRModel`] trains (the paper keeps it frozen).

    Everything else (the stage-1 head; stage 2's text projection and combiner) always trains.
    """
    if isinstance(model, TFCoVRVisionModel):
        _set_vision(model, vision_encoder, backbone)
    elif isinstance(model, (TFCoVRForVideoClassification, TFCoVRModel)):
        for parameter in model.parameters():
            parameter.requires_grad = True
        _set_vision(model.vision_model, vision_encoder, backbone)
        if isinstance(model, TFCoVRModel):
            model.text_model.requires_grad_(text_encoder)
    else:
        raise TypeError(f"set_trainable takes a TF-CoVR model, got {type(model).__name__}")
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)


__all__ = ["set_trainable"]
