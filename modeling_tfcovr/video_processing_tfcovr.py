"""Video processor of TF-CoVR: decode, sample frames by segments, resize, crop, normalise."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from transformers.feature_extraction_utils import BatchFeature
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, PILImageResampling
from transformers.processing_utils import VideosKwargs
from transformers.video_processing_utils import BaseVideoProcessor
from transformers.video_utils import group_videos_by_shape

from .errors import VideoDecodeError
from .video_io import DEFAULT_VIDEO_BACKEND, check_video_backend, is_video_file_input, read_frames, video_name

if TYPE_CHECKING:
    from transformers.video_utils import VideoMetadata


class TFCoVRVideoProcessorKwargs(VideosKwargs, total=False):
    """Extra keyword arguments of [`TFCoVRVideoProcessor`].

    Attributes:
        sampling_mode (`str`): `"middle"` (inference: the middle frame of each segment), `"random"`
            (training: a random frame inside each segment) or `"official"` (the official AIM extraction's
            indices, see [`official_aim_frame_indices`]).
        sampling_seed (`int`): seed of the random segment sampling, for reproducible batches.
        video_backend (`str`): decoder of video files: `"decord"`, `"torchcodec"` or `"pyav"`.
    """

    sampling_mode: str
    sampling_seed: int | None
    video_backend: str


SAMPLING_MODES = ("middle", "random", "official")
RESIZE_BACKENDS = ("torch", "pil")


def official_aim_frame_indices(total_frames: int, num_frames: int) -> np.ndarray:
    """Frame indices of the official TF-CoVR AIM extraction (`sample_frames` and `FrameLoader` in
    `AIM_Embeddings/aim_emb.py` of UCF-CRCV/TF-CoVR).

    With `n = min(num_frames, total_frames)` and `edges = np.linspace(0, total_frames, n + 1).astype(int)`, frame
    `i` is `(edges[i] + edges[i + 1] - 1) // 2`. A video shorter than `num_frames` repeats its whole index list
    cyclically (`(indices * num_frames)[:num_frames]`: 5 frames give 0 1 2 3 4 0 1 2 3 4 0 1), so the result is
    not sorted then.
    """
    if total_frames < 1:
        raise ValueError(f"a video needs at least one frame, got {total_frames}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    count = min(num_frames, total_frames)
    edges = np.linspace(0, total_frames, num=count + 1).astype(int)
    indices = [(int(edges[i]) + int(edges[i + 1]) - 1) // 2 for i in range(count)]
    if count < num_frames:
        indices = (indices * num_frames)[:num_frames]
    return np.asarray(indices, dtype=np.int64)


def segment_frame_indices(
    total_frames: int, num_frames: int, mode: str = "middle", rng: np.random.Generator | None = None
) -> np.ndarray:
    """Frame indices of segment-based sampling (TSN style).

    The video is cut into `num_frames` equal segments; `"middle"` takes the middle frame of each,
    `"random"` a uniformly random frame inside each. Videos shorter than `num_frames` repeat frames
    (each index is the frame under the segment's position), so the result always has
    `num_frames` non-decreasing indices in `[0, total_frames)`.

    Args:
        total_frames: frames in the video (>= 1).
        num_frames: frames to sample (>= 1).
        mode: `"middle"`, `"random"` or `"official"` ([`official_aim_frame_indices`], which is not
            always non-decreasing).
        rng: random generator for `"random"` (a fresh unseeded one when `None`).
    """
    if mode == "official":
        return official_aim_frame_indices(total_frames, num_frames)
    if total_frames < 1:
        raise ValueError(f"a video needs at least one frame, got {total_frames}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    segment = total_frames / num_frames
    starts = np.arange(num_frames) * segment
    if mode == "middle":
        positions = starts + segment / 2
    elif mode == "random":
        rng = rng if rng is not None else np.random.default_rng()
        positions = starts + rng.random(num_frames) * segment
    else:
        raise ValueError(f"sampling mode must be one of {SAMPLING_MODES}, got {mode!r}")
    return np.clip(np.floor(positions).astype(np.int64), 0, total_frames - 1)


def to_rgb_frames(video: np.ndarray, source: str = "video") -> np.ndarray:
    """Brings frames to uint8 (T, H, W, 3): grayscale (T, H, W) / (T, H, W, 1) is repeated, RGBA drops
    alpha, float frames in [0, 1] are scaled to [0, 255]."""
    video = np.asarray(video)
    if video.ndim == 3:
        video = video[..., None]
    if video.ndim != 4:
        raise VideoDecodeError(source, f"expected frames of shape (T, H, W, C), got {video.shape}")
    if video.shape[-1] not in (1, 3, 4) and video.shape[1] in (1, 3, 4):
        video = video.transpose(0, 2, 3, 1)  # channels-first input
    channels = video.shape[-1]
    if channels == 1:
        video = np.repeat(video, 3, axis=-1)
    elif channels == 4:
        video = video[..., :3]
    elif channels != 3:
        raise VideoDecodeError(source, f"frames have {channels} channels; expected 1, 3 or 4")
    if video.shape[0] == 0:
        raise VideoDecodeError(source, "video has no frames")
    if video.dtype != np.uint8:
        if np.issubdtype(video.dtype, np.floating) and video.size and float(np.nanmax(video)) <= 1.0:
            video = video * 255.0
        video = np.clip(np.nan_to_num(video), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(video)


class TFCoVRVideoProcessor(BaseVideoProcessor):
    r"""Turns videos into `pixel_values_videos` of shape `(batch_size, num_frames, 3, height, width)`.

    Accepts a path, a torchcodec `VideoDecoder` (what a `datasets` `Video` column holds), a numpy array
    `(T, H, W, 3)` (grayscale and RGBA are converted), a list of PIL images, or a list of these. Files are
    decoded with `video_backend` (decord, torchcodec or PyAV; decoders with torchcodec), reading only the
    sampled frames.
    Frames are sampled by segments (see [`segment_frame_indices`]), resized so that the short side
    is `size["shortest_edge"]`, centre-cropped to `crop_size`, rescaled to [0, 1] and normalised
    with CLIP's mean and standard deviation.

    Args:
        num_frames (`int`, defaults to 12): frames per clip.
        sampling_mode (`str`, defaults to `"middle"`): `"middle"` for inference, `"random"` for training,
            `"official"` for the official AIM extraction's indices.
        size (`dict`, defaults to `{"shortest_edge": 224}`) and crop_size (`{"height": 224, "width": 224}`).
        resize_backend (`str`, defaults to `"torch"`): `"torch"` resizes the batch with transformers' torch
            resize; `"pil"` resizes every frame with PIL (`resample`, to `size["height"] x size["width"]`) and
            normalises as torchvision's `ToTensor` + `Normalize` do, as the official extraction does.

        video_backend (`str`, defaults to `"decord"`): decoder of video files: `"decord"`, `"torchcodec"` or `"pyav"`.

    [`official_aim_video_processor`] builds the preset of the official TF-CoVR AIM extraction, with which the
    released embeddings were computed.
    """

    valid_kwargs = TFCoVRVideoProcessorKwargs
    model_input_names = ["pixel_values_videos"]
    resample = PILImageResampling.BICUBIC
    image_mean = OPENAI_CLIP_MEAN
    image_std = OPENAI_CLIP_STD
    size = {"shortest_edge": 224}
    crop_size = {"height": 224, "width": 224}
    default_to_square = False
    do_resize = True
    do_center_crop = True
    do_rescale = True
    do_normalize = True
    do_convert_rgb = False
    do_sample_frames = True
    num_frames = 12
    sampling_mode = "middle"
    sampling_seed = None
    resize_backend = "torch"
    video_backend = DEFAULT_VIDEO_BACKEND
    return_tensors = "pt"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.sampling_mode not in SAMPLING_MODES:
            raise ValueError(f"sampling_mode must be one of {SAMPLING_MODES}, got {self.sampling_mode!r}")
        if self.resize_backend not in RESIZE_BACKENDS:
            raise ValueError(f"resize_backend must be one of {RESIZE_BACKENDS}, got {self.resize_backend!r}")
        check_video_backend(self.video_backend)

    def _decode_and_sample_videos(self, videos, video_metadata=None, do_sample_frames=None, sample_indices_fn=None):
        # Sampling parameters reach us through `sample_indices_fn`, a partial of `sample_frames`.
        options = dict(getattr(sample_indices_fn, "keywords", {}) or {})
        num_frames = options.get("num_frames") or self.num_frames
        mode = options.get("sampling_mode") or self.sampling_mode
        seed = options.get("sampling_seed", self.sampling_seed)
        rng = np.random.default_rng(seed) if mode == "random" else None
        backend = check_video_backend(options.get("video_backend") or self.video_backend)
        decoded = []
        for item in _as_video_list(videos):
            decoded.append(_load_sampled_frames(item, num_frames if do_sample_frames else None, mode, rng, backend))
        return decoded, None

    def sample_frames(
        self, metadata: VideoMetadata | None = None, num_frames: int | None = None, **kwargs
    ) -> np.ndarray:
        """Segment-based indices for a video of `metadata.total_num_frames` frames.

        Args:
            metadata (`VideoMetadata`): the video's metadata; only `total_num_frames` is read.
            num_frames (`int`, *optional*): frames to sample (default: `self.num_frames`).
            kwargs: `sampling_mode` (default: `self.sampling_mode`); other keys are ignored.

        Returns:
            `np.ndarray` of shape `(num_frames,)`: non-decreasing frame indices (int64).
        """
        num_frames = num_frames or self.num_frames
        mode = kwargs.get("sampling_mode") or self.sampling_mode
        return segment_frame_indices(int(metadata.total_num_frames), num_frames, mode)

    def _preprocess(self, videos, return_tensors=None, **kwargs):
        if self.resize_backend == "pil":
            return self._preprocess_with_pil(videos, return_tensors, **kwargs)
        grouped_videos, _ = group_videos_by_shape(videos)
        if len(grouped_videos) == 1:
            # One input shape (the usual batch): the grouped stack is already (B, T, C, H, W) in input order, so it
            # goes through resize, crop and normalisation as it is, with no split and re-stack of float32 pixels.
            (stacked,) = grouped_videos.values()
            if kwargs["do_resize"]:
                stacked = self.resize(stacked, size=kwargs["size"], resample=kwargs["resample"])
            if kwargs["do_center_crop"]:
                stacked = self.center_crop(stacked, kwargs["crop_size"])
            pixels = self.rescale_and_normalize(
                stacked, kwargs["do_rescale"], kwargs["rescale_factor"], kwargs["do_normalize"],
                kwargs["image_mean"], kwargs["image_std"],
            )
            return BatchFeature(data={"pixel_values_videos": pixels}, tensor_type=return_tensors)
        output = super()._preprocess(videos, return_tensors=None, **kwargs)
        frames = output["pixel_values_videos"]
        if return_tensors in ("pt", None) and isinstance(frames, list) and frames:
            output["pixel_values_videos"] = torch.stack(frames) if len({f.shape for f in frames}) == 1 else frames
        return output

    def _preprocess_with_pil(self, videos, return_tensors=None, **kwargs):
        """The official extraction's pixels: each frame resized by PIL, then `ToTensor` (`/ 255`) and `Normalize`."""
        from PIL import Image

        size = kwargs["size"]
        target = (size.width, size.height) if hasattr(size, "width") else (size["width"], size["height"])
        if not all(target):
            raise ValueError(f"resize_backend='pil' needs size with height and width, got {size}")
        resample = kwargs["resample"]
        resample = Image.Resampling(int(resample)) if resample is not None else Image.Resampling.BICUBIC
        mean = torch.as_tensor(kwargs["image_mean"], dtype=torch.float32).view(-1, 1, 1)
        std = torch.as_tensor(kwargs["image_std"], dtype=torch.float32).view(-1, 1, 1)
        processed = []
        for video in videos:
            frames = video.permute(0, 2, 3, 1).cpu().numpy()  # (T, H, W, C) uint8
            if kwargs["do_resize"]:
                frames = np.stack([np.asarray(Image.fromarray(frame).resize(target, resample)) for frame in frames])
            pixels = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div(255)
            if kwargs["do_normalize"]:
                pixels = pixels.sub(mean).div(std)
            processed.append(pixels)
        return BatchFeature(data={"pixel_values_videos": torch.stack(processed)}, tensor_type=return_tensors)

    def rescale_and_normalize(
        self,
        images: torch.Tensor,
        do_rescale: bool,
        rescale_factor: float,
        do_normalize: bool,
        image_mean: float | list[float],
        image_std: float | list[float],
    ) -> torch.Tensor:
        """`(images * rescale_factor - mean) / std` of uint8 `images` (..., C, H, W), as float32 in one new buffer.

        The same operations as the base class, bit for bit (convert, subtract, divide), but into a buffer that,
        inside a DataLoader worker, is allocated in shared memory, as `default_collate` does: the batch then reaches
        the main process without being copied into shared memory first.
        """
        if not do_normalize or images.dtype != torch.uint8:
            return super().rescale_and_normalize(
                images, do_rescale, rescale_factor, do_normalize, image_mean, image_std
            )
        mean, std, _ = self._fuse_mean_std_and_rescale_factor(
            do_normalize=do_normalize, image_mean=image_mean, image_std=image_std, do_rescale=do_rescale,
            rescale_factor=rescale_factor, device=images.device,
        )
        channel_shape = (-1, 1, 1)
        pixels = _new_float32_buffer(images.shape, images.device).copy_(images.contiguous())
        pixels.sub_(torch.as_tensor(mean, dtype=torch.float32).view(channel_shape))
        return pixels.div_(torch.as_tensor(std, dtype=torch.float32).view(channel_shape))


def _new_float32_buffer(shape: torch.Size, device: torch.device) -> torch.Tensor:
    """An uninitialised float32 tensor; in shared memory when called inside a DataLoader worker (CPU only)."""
    if device.type == "cpu" and torch.utils.data.get_worker_info() is not None:
        template = torch.empty(0, dtype=torch.float32)
        storage = template._typed_storage()._new_shared(shape.numel(), device=device)
        return template.new(storage).view(shape)
    return torch.empty(shape, dtype=torch.float32, device=device)


def _as_video_list(videos) -> list:
    """Splits the accepted input forms into a list of single videos."""
    from PIL import Image

    if is_video_file_input(videos):
        return [videos]
    if isinstance(videos, (str, os.PathLike, np.ndarray, torch.Tensor)):
        if isinstance(videos, (np.ndarray, torch.Tensor)) and np.ndim(videos) == 5:
            return list(videos)
        return [videos]
    if isinstance(videos, Sequence) and videos and isinstance(videos[0], Image.Image):
        return [videos]  # one video given as a list of frames
    if isinstance(videos, Sequence):
        if not videos:
            raise ValueError("no videos given")
        return list(videos)
    raise TypeError(f"unsupported video input of type {type(videos).__name__}")


def _load_sampled_frames(video, num_frames: int | None, mode: str, rng: np.random.Generator | None,
                         backend: str = DEFAULT_VIDEO_BACKEND) -> np.ndarray:
    """uint8 (T, H, W, 3) frames of one video, sampled when `num_frames` is given."""
    from PIL import Image

    if is_video_file_input(video):
        indices = (lambda total: segment_frame_indices(total, num_frames, mode, rng)) if num_frames else None
        return to_rgb_frames(read_frames(video, indices, backend), video_name(video))
    if isinstance(video, Sequence) and video and isinstance(video[0], Image.Image):
        frames = np.stack([np.asarray(image.convert("RGB")) for image in video])
    elif isinstance(video, torch.Tensor):
        frames = video.cpu().numpy()
    elif isinstance(video, np.ndarray):
        frames = video
    else:
        raise TypeError(f"unsupported video of type {type(video).__name__}; pass a path, an array or a list of PIL images")
    frames = to_rgb_frames(frames, "<array>")
    if num_frames:
        frames = frames[segment_frame_indices(frames.shape[0], num_frames, mode, rng)]
    return frames


def official_aim_video_processor(num_frames: int = 12, image_size: int = 224) -> TFCoVRVideoProcessor:
    """The preset of the official TF-CoVR AIM extraction (`AIM_Embeddings/aim_emb.py`), with which the released
    embeddings were computed: decord, `num_frames` frames at [`official_aim_frame_indices`], every frame resized
    with PIL bicubic to `image_size x image_size` (a squash, no crop), `ToTensor` and CLIP's mean and std."""
    return TFCoVRVideoProcessor(
        num_frames=num_frames, sampling_mode="official", resize_backend="pil", resample=PILImageResampling.BICUBIC,
        size={"height": image_size, "width": image_size}, do_center_crop=False,
        image_mean=list(OPENAI_CLIP_MEAN), image_std=list(OPENAI_CLIP_STD),
    )


__all__ = [
    "RESIZE_BACKENDS",
    "SAMPLING_MODES",
    "TFCoVRVideoProcessor",
    "official_aim_frame_indices",
    "official_aim_video_processor",
    "segment_frame_indices",
    "to_rgb_frames",
]
