"""Video processor of TF-CoVR: decode, sample frames by segments, resize, crop, normalise."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
import torch
from transformers.feature_extraction_utils import BatchFeature
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, PILImageResampling
from transformers.processing_utils import Unpack, VideosKwargs
from transformers.video_processing_utils import BaseVideoProcessor
from transformers.video_utils import VideoMetadata, group_videos_by_shape

from .errors import VideoDecodeError
from .video_io import DEFAULT_VIDEO_BACKEND, check_video_backend, is_video_file_input, read_frames, video_name


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
# Options of `__call__` that `load_frames` consumes (decoding and sampling) before transformers' `preprocess` runs.
_LOADING_OPTIONS = (
    "do_sample_frames",
    "num_frames",
    "fps",
    "sampling_mode",
    "sampling_seed",
    "video_backend",
    "video_metadata",
)
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

    The processor uses transformers' public hooks only: `preprocess` decodes and samples the videos with
    [`~TFCoVRVideoProcessor.load_frames`] (files through `fetch_videos`, the package's reader; the indices of every
    video from `sample_frames`), then transformers' `preprocess` runs `_preprocess` on the frames. A subclass changes
    the sampling by overriding `sample_frames` and the decoding by overriding `fetch_videos`.
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

    def sample_frames(
        self,
        metadata: VideoMetadata,
        num_frames: int | None = None,
        fps: float | None = None,
        sampling_mode: str | None = None,
        rng: np.random.Generator | None = None,
        **kwargs,
    ) -> np.ndarray:
        """Indices of the frames to keep of a video of `metadata.total_num_frames` frames: segment-based sampling
        ([`segment_frame_indices`]). Every video goes through this method, decoded ones as well as frame arrays.

        Args:
            metadata (`VideoMetadata`): the video's metadata; only `total_num_frames` is read.
            num_frames (`int`, *optional*): frames to sample (default: `self.num_frames`).
            fps (`float`, *optional*): not supported (a clip has a fixed number of frames); raises `ValueError`.
            sampling_mode (`str`, *optional*): `"middle"`, `"random"` or `"official"` (default: `self.sampling_mode`).
            rng (`np.random.Generator`, *optional*): the generator of `"random"` sampling (default: one seeded with
                `sampling_seed`, else `self.sampling_seed`). [`~TFCoVRVideoProcessor.load_frames`] passes one
                generator to all videos of a call, so that a seed gives each video its own draw.
            kwargs: `sampling_seed`; other processor options are ignored.

        Returns:
            `np.ndarray` of shape `(num_frames,)`: frame indices (int64), non-decreasing except in `"official"` mode.
        """
        if fps is not None:
            raise ValueError(f"TF-CoVR samples a fixed number of frames per clip; pass num_frames, not fps={fps}")
        num_frames = num_frames or self.num_frames
        mode = sampling_mode or self.sampling_mode
        if mode == "random" and rng is None:
            rng = np.random.default_rng(kwargs.get("sampling_seed", self.sampling_seed))
        return segment_frame_indices(int(metadata.total_num_frames), num_frames, mode, rng)

    def fetch_videos(
        self,
        video_url_or_urls,
        sample_indices_fn: Callable[..., Sequence[int]] | None = None,
        video_backend: str | None = None,
    ):
        """Decodes video files with the package's reader ([`read_frames`], backend `video_backend`, default
        `self.video_backend`), reading only the frames at `sample_indices_fn(metadata=...)` (all when `None`).

        Accepts what [`is_video_file_input`] accepts: a path, a torchcodec `VideoDecoder` or a [`DatasetVideo`].
        Returns `(frames, metadata)` for one video (uint8 `(T, H, W, 3)` and its `VideoMetadata`), or a list of
        frames and a list of metadata for a list, as transformers' `fetch_videos` does.
        """
        backend = check_video_backend(video_backend or self.video_backend)
        if isinstance(video_url_or_urls, (list, tuple)):
            decoded = [self.fetch_videos(video, sample_indices_fn, backend) for video in video_url_or_urls]
            return [frames for frames, _ in decoded], [metadata for _, metadata in decoded]
        return decode_video(video_url_or_urls, sample_indices_fn, backend)

    def load_frames(
        self,
        videos,
        do_sample_frames: bool | None = None,
        num_frames: int | None = None,
        fps: float | None = None,
        sampling_mode: str | None = None,
        sampling_seed: int | None = None,
        video_backend: str | None = None,
        video_metadata: VideoMetadata | dict | list | None = None,
    ) -> tuple[list[np.ndarray], list[VideoMetadata]]:
        """Decodes and samples `videos` (any input `__call__` accepts) into uint8 frames `(T, H, W, 3)`, one array per
        video, and their metadata (`frames_indices` holds the sampled indices): the first step of `__call__`.

        Files are decoded by [`~TFCoVRVideoProcessor.fetch_videos`], reading only the sampled frames; frame arrays
        and lists of PIL images are brought to RGB uint8. Indices come from [`~TFCoVRVideoProcessor.sample_frames`]
        (`do_sample_frames=False` keeps every frame). Options default to the processor's.
        """
        do_sample_frames = self.do_sample_frames if do_sample_frames is None else do_sample_frames
        mode = sampling_mode or self.sampling_mode
        seed = self.sampling_seed if sampling_seed is None else sampling_seed
        rng = np.random.default_rng(seed) if mode == "random" else None
        backend = check_video_backend(video_backend or self.video_backend)
        sample = partial(self.sample_frames, num_frames=num_frames, fps=fps, sampling_mode=mode, rng=rng)
        videos = _as_video_list(videos)
        if isinstance(video_metadata, (dict, VideoMetadata)):
            video_metadata = [video_metadata]
        if video_metadata is not None and len(video_metadata) != len(videos):
            raise ValueError(f"{len(videos)} videos but {len(video_metadata)} video_metadata entries")
        indices_fn = sample if do_sample_frames else None
        frames, metadata = [], []
        for position, video in enumerate(videos):
            if is_video_file_input(video):
                decoded, info = self.fetch_videos(video, indices_fn, backend)
            else:
                given = video_metadata[position] if video_metadata is not None else None
                decoded, info = decode_video(video, indices_fn, backend, given)
            frames.append(decoded)
            metadata.append(info)
        return frames, metadata

    def preprocess(self, videos, **kwargs: Unpack[TFCoVRVideoProcessorKwargs]) -> BatchFeature:
        """`pixel_values_videos` of `videos`: [`~TFCoVRVideoProcessor.load_frames`] decodes and samples them, then
        transformers' `preprocess` resizes, crops and normalises the frames (see [`~TFCoVRVideoProcessor._preprocess`]).
        """
        options = {key: kwargs.pop(key) for key in _LOADING_OPTIONS if key in kwargs}
        frames, metadata = self.load_frames(videos, **options)
        return super().preprocess(frames, do_sample_frames=False, video_metadata=metadata, **kwargs)

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
                stacked,
                kwargs["do_rescale"],
                kwargs["rescale_factor"],
                kwargs["do_normalize"],
                kwargs["image_mean"],
                kwargs["image_std"],
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
        """`(images - mean / rescale_factor) / (std / rescale_factor)` of uint8 `images` (..., C, H, W) as float32: the
        base class's fused rescale and normalisation, bit for bit, written with public torch operations.

        Inside a DataLoader worker the result is allocated in shared memory (as `default_collate` allocates its
        batches there), so that the batch crosses to the main process without being copied into shared memory again.
        """
        if not do_normalize or images.dtype != torch.uint8:
            return super().rescale_and_normalize(
                images, do_rescale, rescale_factor, do_normalize, image_mean, image_std
            )
        scale = 1.0 / rescale_factor if do_rescale else 1.0
        mean = torch.tensor(image_mean, dtype=torch.float32, device=images.device) * scale
        std = torch.tensor(image_std, dtype=torch.float32, device=images.device) * scale
        if (std == 0).any():
            raise ValueError(f"image_std must not contain zeros, got {image_std}")
        pixels = torch.empty(images.shape, dtype=torch.float32, device=images.device)
        if images.device.type == "cpu" and torch.utils.data.get_worker_info() is not None:
            pixels.share_memory_()
        pixels.copy_(images)
        return pixels.sub_(mean.view(-1, 1, 1)).div_(std.view(-1, 1, 1))


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


def decode_video(
    video,
    sample_indices_fn: Callable[..., Sequence[int]] | None = None,
    backend: str = DEFAULT_VIDEO_BACKEND,
    metadata: VideoMetadata | dict | None = None,
) -> tuple[np.ndarray, VideoMetadata]:
    """The package's decode-and-sample step: uint8 RGB frames `(T, H, W, 3)` of one video, and its metadata.

    Args:
        video: a file ([`read_frames`] decodes only the sampled frames), a torchcodec `VideoDecoder`, a
            [`DatasetVideo`], frames `(T, H, W, C)` / `(T, H, W)` (numpy or torch; see [`to_rgb_frames`]) or a list of
            PIL images.
        sample_indices_fn: called as `sample_indices_fn(metadata=metadata)`, as transformers calls it, returns the
            frame indices to keep (any order, repeats allowed); all frames when `None`.
        backend: decoder of files: `"decord"`, `"torchcodec"` or `"pyav"`.
        metadata: metadata of an in-memory video (default: its frame count and size).

    Returns:
        `(frames, metadata)`; `metadata.frames_indices` lists the indices kept.
    """
    from PIL import Image

    if is_video_file_input(video):
        found: list[VideoMetadata] = []

        def indices(total: int) -> list[int]:
            info = VideoMetadata(total_num_frames=total, video_backend=backend)
            info.frames_indices = _chosen(sample_indices_fn, info)
            found.append(info)
            return info.frames_indices

        frames = to_rgb_frames(read_frames(video, indices, backend), video_name(video))
        info = found[0]
    else:
        if isinstance(video, Sequence) and video and isinstance(video[0], Image.Image):
            video = np.stack([np.asarray(image.convert("RGB")) for image in video])
        elif isinstance(video, torch.Tensor):
            video = video.cpu().numpy()
        elif not isinstance(video, np.ndarray):
            raise TypeError(
                f"unsupported video of type {type(video).__name__}; pass a path, an array or a list of PIL images"
            )
        frames = to_rgb_frames(video, "<array>")
        info = VideoMetadata(total_num_frames=len(frames)) if metadata is None else metadata
        if isinstance(info, dict):
            info = VideoMetadata(**info)
        info.frames_indices = _chosen(sample_indices_fn, info)
        if sample_indices_fn is not None:
            frames = frames[np.asarray(info.frames_indices, dtype=np.int64)]
    info.height, info.width = frames.shape[1], frames.shape[2]
    return frames, info


def _chosen(sample_indices_fn: Callable[..., Sequence[int]] | None, metadata: VideoMetadata) -> list[int]:
    """The frame indices `sample_indices_fn` picks for a video of `metadata`, or all of its frames."""
    if sample_indices_fn is None:
        return list(range(int(metadata.total_num_frames)))
    return [int(index) for index in sample_indices_fn(metadata=metadata)]


def official_aim_video_processor(num_frames: int = 12, image_size: int = 224) -> TFCoVRVideoProcessor:
    """The preset of the official TF-CoVR AIM extraction (`AIM_Embeddings/aim_emb.py`), with which the released
    embeddings were computed: decord, `num_frames` frames at [`official_aim_frame_indices`], every frame resized
    with PIL bicubic to `image_size x image_size` (a squash, no crop), `ToTensor` and CLIP's mean and std."""
    return TFCoVRVideoProcessor(
        num_frames=num_frames,
        sampling_mode="official",
        resize_backend="pil",
        resample=PILImageResampling.BICUBIC,
        size={"height": image_size, "width": image_size},
        do_center_crop=False,
        image_mean=list(OPENAI_CLIP_MEAN),
        image_std=list(OPENAI_CLIP_STD),
    )


__all__ = [
    "RESIZE_BACKENDS",
    "SAMPLING_MODES",
    "TFCoVRVideoProcessor",
    "decode_video",
    "official_aim_frame_indices",
    "official_aim_video_processor",
    "segment_frame_indices",
    "to_rgb_frames",
]
