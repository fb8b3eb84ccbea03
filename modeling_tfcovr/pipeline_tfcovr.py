"""`pipeline("composed-video-retrieval")`: index a gallery of videos, then search it with a query
video and a modification text.

    pipe = pipeline("composed-video-retrieval", model="path/or/repo", trust_remote_code=True)
    gallery = pipe.index(["a.mp4", "b.mp4", ...])
    pipe(video="query.mp4", text="the same but with one more rotation", gallery=gallery, top_k=5)
    # -> [{"video_id": "b", "score": 0.83, "path": "b.mp4"}, ...]

This module imports only modules of its own folder, so it travels with a saved model as remote code.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from transformers import Pipeline

from .errors import DataFormatError, TFCoVRError
from .retrieval_index import RetrievalIndex
from .text_normalization import _describe_non_text
from .video_embedding import embed_videos
from .video_io import dataset_videos, video_path

if TYPE_CHECKING:
    import datasets

    from .modeling_tfcovr import TFCoVRModel
    from .processing_tfcovr import TFCoVRProcessor

    # One video: a path, a torchcodec `VideoDecoder` (a `datasets` `Video` value), or frames `(T, H, W, 3)`.
    VideoInput = str | os.PathLike | np.ndarray | torch.Tensor

logger = logging.getLogger(__name__)

TASK = "composed-video-retrieval"


def _video_id(video) -> str | None:
    path = video_path(video)
    return Path(path).stem if path else None


class ComposedVideoRetrievalPipeline(Pipeline):
    """Composed video retrieval with a [`TFCoVRModel`] and its [`TFCoVRProcessor`].

    - `index(videos)` embeds a gallery (paths, a dataset with a video column, or an embeddings
      dataset) and returns a [`RetrievalIndex`], which can be saved and loaded.
    - `__call__(video=..., text=..., gallery=..., top_k=5)` returns, per query, a list of
      `{"video_id", "score", "path"}`, best first; `video`/`text` may be lists, and
      `query_embeds` `(Q, embed_dim)` may replace them. A query never retrieves its own video. A text that is
      not a `str`, or is empty, raises `DataFormatError` naming the query.
    """

    _load_processor = True
    _load_tokenizer = False
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.index_failures: list[dict] = []

    # -- gallery -----------------------------------------------------------------------------

    def index(
        self,
        videos: Sequence[VideoInput] | datasets.Dataset | str | os.PathLike,
        video_ids: Sequence[str] | None = None,
        batch_size: int = 16,
        progress: bool = True,
        video_column: str | None = None,
        num_workers: int = 0,
    ) -> RetrievalIndex:
        """Builds the searchable gallery.

        Args:
            videos: video paths or torchcodec `VideoDecoder`s; a `datasets.Dataset` with a `video`/`video_path`
                column (paths, or a `datasets` `Video` feature, decoded one row at a time) and optionally `video_id`;
                or an embeddings dataset / parquet path with `video_id` + `embedding`.
            video_ids: ids for the videos (default: file stems).
            batch_size / num_workers: videos per batch of the encoder, and DataLoader workers decoding them (0: this
                process; workers need files or a dataset, not open torchcodec decoders).

        The videos are embedded by [`~video_embedding.embed_videos`], as the extraction embeds them. Undecodable files
        are skipped, logged, and listed in `self.index_failures` ([`~video_embedding.failure_record`]s).
        """
        self.index_failures = []
        source = os.fspath(videos) if isinstance(videos, (str, os.PathLike)) else "the embeddings dataset"
        if isinstance(videos, (str, os.PathLike)) and str(videos).endswith(".parquet"):
            import datasets

            videos = datasets.Dataset.from_parquet(os.fspath(videos))
        elif isinstance(videos, (str, os.PathLike)):
            raise TypeError(
                f"videos is one path ({source!r}): pass a list of video paths, e.g. pipe.index([{source!r}]), a "
                "datasets.Dataset, or the path of an embeddings / clips .parquet file"
            )
        if hasattr(videos, "column_names"):  # a datasets.Dataset
            if "embedding" in videos.column_names:
                return self._index_from_embeddings(videos, source)
            video_column = video_column or next(
                (c for c in ("video", "video_path", "path") if c in videos.column_names), None
            )
            if video_column is None:
                raise ValueError(f"the dataset has no video column among {videos.column_names}")
            if video_ids is None and "video_id" in videos.column_names:
                video_ids = list(videos["video_id"])
            if type(videos.features[video_column]).__name__ == "Video":
                videos = dataset_videos(videos, video_column)  # opened one at a time, not all decoders at once
            else:
                videos = list(videos[video_column])
        videos = list(videos)
        ids = list(video_ids) if video_ids is not None else [_video_id(v) or f"video_{i}" for i, v in enumerate(videos)]
        _, embeds, failures = embed_videos(
            self.model.vision_model,
            self.processor.video_processor,
            ids,
            videos,
            batch_size=batch_size,
            num_workers=num_workers,
            progress=progress,
        )
        for failure in failures:
            logger.warning("skipped %s: %s", failure["video_id"], failure["error"])
        self.index_failures = failures
        failed = {failure["index"] for failure in failures}
        kept = [position for position in range(len(videos)) if position not in failed]
        if not kept:
            raise TFCoVRError(f"none of the {len(videos)} videos could be decoded")
        paths = [video_path(videos[i]) for i in kept]
        return RetrievalIndex([ids[i] for i in kept], embeds, paths=paths)

    def _index_from_embeddings(self, dataset, source: str) -> RetrievalIndex:
        try:
            gallery = RetrievalIndex.from_dataset(dataset)
        except DataFormatError as error:
            raise DataFormatError(f"{source}: {error}") from None
        if gallery.dim != self.model.config.embed_dim:
            raise DataFormatError(
                f"{source}: embeddings have dimension {gallery.dim}, but the model's queries have dimension "
                f"{self.model.config.embed_dim} (embeddings of another encoder?)"
            )
        return gallery

    # -- queries -----------------------------------------------------------------------------

    def __call__(
        self,
        video: VideoInput | Sequence[VideoInput] | None = None,
        text: str | Sequence[str] | None = None,
        gallery: RetrievalIndex | None = None,
        top_k: int = 5,
        query_embeds: np.ndarray | torch.Tensor | Sequence[float] | Sequence[Sequence[float]] | None = None,
        exclude_ids: Sequence[str | None] | None = None,
        **kwargs,
    ) -> list[dict] | list[list[dict]]:
        """Searches `gallery` with composed queries.

        Args:
            video: the query video (a path or frames `(T, H, W, 3)`), or a list of them for a batch of queries.
            text: the modification text, or a list of them (one per video).
            gallery: the [`RetrievalIndex`] to search, from [`~ComposedVideoRetrievalPipeline.index`].
            top_k: results per query.
            query_embeds: precomputed query embeddings `(embed_dim,)` or `(Q, embed_dim)`, instead of `video`/`text`.
            exclude_ids: with `query_embeds`, per query a video id to leave out of its results (or `None`).
            kwargs: options of `Pipeline.__call__` (`batch_size`, `num_workers`).

        Returns:
            `list[dict]` (one query) or `list[list[dict]]` (a batch): `{"video_id", "score", "path"}`, best first.
        """
        _check_gallery(gallery)
        if query_embeds is not None:
            query_embeds = torch.as_tensor(np.asarray(query_embeds, dtype=np.float32))
            single = query_embeds.ndim == 1
            result = gallery.search(
                query_embeds.reshape(-1, query_embeds.shape[-1]), top_k=top_k, exclude_ids=exclude_ids
            )
            answers = [self._answers(result, row) for row in range(len(result))]
            return answers[0] if single else answers
        if video is None or text is None:
            raise ValueError("pass video and text (or query_embeds)")
        single = isinstance(text, (str, bytes, bytearray))
        if single and isinstance(video, (list, tuple)) and not _is_frame_list(video):
            raise TypeError(
                f"video is a list of {len(video)} videos but text is one string: a composed query pairs one "
                "video with one modification text; pass a list of texts, one per video"
            )
        videos = [video] if single else list(video)
        texts = [text] if single else list(text)
        if len(videos) != len(texts):
            raise ValueError(f"{len(videos)} videos but {len(texts)} texts")
        for position, (query_video, query_text) in enumerate(zip(videos, texts)):
            query = f"query {position} ({_video_id(query_video) or 'an array'})"
            if not isinstance(query_text, str):
                raise DataFormatError(
                    f"{query}: the modification text must be a str, got {_describe_non_text(query_text)}"
                )
            if not query_text.strip():
                raise DataFormatError(f"{query}: the modification text is empty; a composed query needs one")
        inputs = [{"video": v, "text": t} for v, t in zip(videos, texts)]
        answers = super().__call__(inputs, gallery=gallery, top_k=top_k, **kwargs)
        return answers[0] if single else answers

    def _sanitize_parameters(self, gallery=None, top_k=None, **kwargs):
        postprocess = {}
        if gallery is not None:
            postprocess["gallery"] = gallery
        if top_k is not None:
            postprocess["top_k"] = top_k
        return {}, {}, postprocess

    def preprocess(self, inputs: dict) -> dict:
        encoded = self.processor(videos=[inputs["video"]], text=[inputs["text"]])
        return {**encoded, "query_video_id": _video_id(inputs["video"])}

    def _forward(self, model_inputs: dict) -> dict:
        video_id = model_inputs.pop("query_video_id")
        query = self.model.get_query_features(
            pixel_values_videos=model_inputs["pixel_values_videos"].to(next(self.model.parameters()).dtype),
            input_ids=model_inputs["input_ids"],
            attention_mask=model_inputs["attention_mask"],
        )
        return {"query_embeds": query, "query_video_id": video_id}

    def postprocess(self, model_outputs: dict, gallery: RetrievalIndex, top_k: int = 5) -> list[dict]:
        video_id = model_outputs["query_video_id"]
        result = gallery.search(
            model_outputs["query_embeds"].float().cpu(),
            top_k=top_k,
            exclude_ids=[video_id if video_id in gallery else None],
        )
        return self._answers(result, 0)

    @staticmethod
    def _answers(result, row: int) -> list[dict]:
        paths = result.paths[row] if result.paths is not None else [None] * len(result.video_ids[row])
        return [
            {"video_id": video_id, "score": float(score), "path": path}
            for video_id, score, path in zip(result.video_ids[row], result.scores[row], paths)
        ]


def _check_gallery(gallery) -> None:
    """A `TypeError` naming what `gallery` must be, for the usual mistakes (nothing, or the videos themselves)."""
    if callable(getattr(gallery, "search", None)):
        return
    if gallery is None:
        raise ValueError("pass gallery=pipe.index(videos) (or RetrievalIndex.load(folder))")
    if isinstance(gallery, (str, os.PathLike, list, tuple)):
        raise TypeError(
            f"gallery must be a RetrievalIndex, got a {type(gallery).__name__}: index the videos first with "
            "gallery = pipe.index(videos) (paths, a dataset or an embeddings parquet), or load a saved one "
            "with RetrievalIndex.load(folder), then pass gallery=gallery"
        )
    raise TypeError(
        f"gallery must be a RetrievalIndex (from pipe.index(videos) or RetrievalIndex.load(folder)), got "
        f"a {type(gallery).__name__}"
    )


def _is_frame_list(video: Sequence) -> bool:
    """Whether a list is one video given as frames (PIL images or arrays), not several videos."""
    return bool(video) and all(hasattr(frame, "size") and not isinstance(frame, (str, os.PathLike)) for frame in video)


def save_for_pipeline(model: TFCoVRModel, processor: TFCoVRProcessor, output_dir: str | os.PathLike) -> None:
    """Saves `model` and `processor` so that `pipeline("composed-video-retrieval", model=output_dir,
    trust_remote_code=True)` works anywhere: the config records the task in `custom_pipelines` and
    the folder gets the pipeline's code next to the model's."""
    ComposedVideoRetrievalPipeline(model=model, processor=processor, task=TASK).save_pretrained(output_dir)
    processor.save_pretrained(output_dir)  # Pipeline.save_pretrained saves the tokenizer, not the processor


__all__ = ["ComposedVideoRetrievalPipeline", "TASK", "save_for_pipeline"]
