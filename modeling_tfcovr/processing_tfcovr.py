"""Processor of TF-CoVR: the video processor and a tokenizer behind one call."""

from __future__ import annotations

from typing import TYPE_CHECKING

from transformers import BatchFeature
from transformers.processing_utils import ProcessorMixin

from .errors import DataFormatError
from .text_normalization import MAX_WORDS, _describe_non_text, normalize_modification_text, openai_clip_clean_text
from .tokenization_openai_clip import batch_encode_like_openai_clip

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

    from transformers import PreTrainedTokenizerBase
    from transformers.video_utils import VideoInput

    from .video_processing_tfcovr import TFCoVRVideoProcessor


class TFCoVRProcessor(ProcessorMixin):
    r"""Wraps a [`TFCoVRVideoProcessor`] and a fast tokenizer.

    `processor(videos=..., text=...)` returns `pixel_values_videos` `(B, T, 3, H, W)`, `input_ids`
    and `attention_mask` `(B, L)`. Modification texts are normalised exactly as in the official code
    (the table of numbers 0.5-7 to words, lower case, `!"()*#:;~` removed, at most 30 words; see
    [`normalize_modification_text`]) unless `normalize_text=False`. With a CLIP tokenizer the texts then go
    through OpenAI's own cleaning (ftfy, HTML entities, whitespace), so that the ids equal
    `clip.tokenize(text, truncate=True)` on every input.

    Args:
        video_processor ([`TFCoVRVideoProcessor`]): frames pipeline.
        tokenizer (`PreTrainedTokenizerFast`): any fast tokenizer (CLIP's, BERT's, or one built with
            [`build_word_level_tokenizer`]).
        normalize_text (`bool`, defaults to `True`): apply the official text normalisation.
        max_words (`int`, defaults to 30): word cap of the normalisation.
        max_length (`int`, defaults to 77): token cap (CLIP's context length).
    """

    def __init__(
        self,
        video_processor: TFCoVRVideoProcessor | None = None,
        tokenizer: PreTrainedTokenizerBase | None = None,
        normalize_text: bool = True,
        max_words: int = MAX_WORDS,
        max_length: int = 77,
        **kwargs,
    ) -> None:
        self.normalize_text = normalize_text
        self.max_words = max_words
        self.max_length = max_length
        super().__init__(video_processor, tokenizer, **kwargs)

    def prepare_text(self, text: str | list[str]) -> list[str]:
        """The texts as the tokenizer will see them."""
        # bytes are one (undecoded) text, not a sequence of texts: iterating them would give integers
        texts = [text] if isinstance(text, (str, bytes, bytearray)) else list(text)
        for position, item in enumerate(texts):
            if not isinstance(item, str):
                raise DataFormatError(f"text {position} must be a str, got {_describe_non_text(item)}")
        if self.normalize_text:
            texts = [normalize_modification_text(t, self.max_words) for t in texts]
        if _is_clip_tokenizer(self.tokenizer):
            texts = [openai_clip_clean_text(t) for t in texts]
        return texts

    def __call__(
        self,
        videos: VideoInput | os.PathLike | Sequence[os.PathLike] | None = None,
        text: str | list[str] | None = None,
        return_tensors: str = "pt",
        **kwargs,
    ) -> BatchFeature:
        """
        Args:
            videos: anything [`TFCoVRVideoProcessor`] accepts (paths, arrays, lists of PIL images).
            text (`str` or `list[str]`): modification texts.
            kwargs: video-processor options (`num_frames`, `sampling_mode`, `sampling_seed`, ...).
        """
        if videos is None and text is None:
            raise ValueError("pass videos, text, or both")
        data = {}
        if text is not None:
            if _is_clip_tokenizer(self.tokenizer):  # OpenAI's word splitting, for the ids of clip.tokenize
                encoded = batch_encode_like_openai_clip(self.tokenizer, self.prepare_text(text), self.max_length)
            else:
                encoded = self.tokenizer(
                    self.prepare_text(text),
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors=return_tensors,
                )
            data.update({key: encoded[key] for key in ("input_ids", "attention_mask")})
        if videos is not None:
            data.update(self.video_processor(videos, return_tensors=return_tensors, **kwargs))
        if (
            "input_ids" in data
            and "pixel_values_videos" in data
            and len(data["input_ids"]) != len(data["pixel_values_videos"])
        ):
            raise ValueError(
                f"got {len(data['pixel_values_videos'])} video(s) but {len(data['input_ids'])} text(s): a composed "
                "query pairs each video with one modification text (pass lists of the same length)"
            )
        return BatchFeature(data=data)

    @property
    def model_input_names(self) -> list[str]:
        return ["pixel_values_videos", "input_ids", "attention_mask"]


def _is_clip_tokenizer(tokenizer) -> bool:
    """A transformers CLIP tokenizer (slow or fast), which needs OpenAI's cleaning to tokenise as `clip.tokenize`."""
    return type(tokenizer).__name__ in ("CLIPTokenizer", "CLIPTokenizerFast")


__all__ = ["TFCoVRProcessor"]
