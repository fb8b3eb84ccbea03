"""Token ids exactly as OpenAI's `clip.tokenize(text, truncate=True)` computes them, with a transformers CLIP
tokenizer's vocabulary and merges.

transformers' CLIP tokenizer splits text into words with its own regular-expression engine, whose Unicode tables
can be older than those of the `regex` package that OpenAI's tokenizer uses: a letter added in a recent Unicode
version (e.g. U+323B0) is a letter to one and punctuation to the other, and the ids differ. This module splits
words as OpenAI does (the `regex` package, OpenAI's pattern, case-insensitive), maps each word's UTF-8 bytes to
the byte-level alphabet and merges it with the tokenizer's own BPE model. Texts must already be cleaned
([`openai_clip_clean_text`]: ftfy, HTML unescaping, whitespace, lower case).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

START_TOKEN, END_TOKEN = "<|startoftext|>", "<|endoftext|>"
# OpenAI's word pattern (simple_tokenizer.py), matched with re.IGNORECASE.
WORD_PATTERN = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from the 256 byte values to printable characters (the byte-level BPE's alphabet).

    Printable Latin-1 bytes map to themselves; the others (control characters, space, ...) map to code points from
    256 upwards, in byte order. The dict's order (printable bytes first) is the order of the first 256 entries of
    OpenAI's vocabulary.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping = {byte: chr(byte) for byte in printable}
    extra = 0
    for byte in range(256):
        if byte not in mapping:
            mapping[byte] = chr(256 + extra)
            extra += 1
    return mapping


_BYTE_ALPHABET = bytes_to_unicode()


def encode_like_openai_clip(tokenizer, text: str, context_length: int = 77) -> list[int]:
    """The ids of `clip.tokenize(text, context_length, truncate=True)` without the zero padding, for an already
    cleaned `text`: start token, BPE ids of every word, end token; cut at `context_length` with the end token last.
    """
    import regex

    bpe = tokenizer.backend_tokenizer.model
    start, end = tokenizer.convert_tokens_to_ids(START_TOKEN), tokenizer.convert_tokens_to_ids(END_TOKEN)
    ids = [start]
    for word in regex.findall(WORD_PATTERN, text, regex.IGNORECASE):
        if word in (START_TOKEN, END_TOKEN):  # OpenAI keeps these as their own tokens
            ids.append(start if word == START_TOKEN else end)
            continue
        ids += [token.id for token in bpe.tokenize("".join(_BYTE_ALPHABET[b] for b in word.encode("utf-8")))]
    ids.append(end)
    if len(ids) > context_length:
        ids = ids[:context_length]
        ids[-1] = end
    return ids


def batch_encode_like_openai_clip(tokenizer, texts: Sequence[str], context_length: int = 77) -> dict[str, torch.Tensor]:
    """`input_ids` and `attention_mask` `(B, L)` of cleaned `texts`, padded with the tokenizer's pad token to the
    longest text (`clip.tokenize` pads with 0 to 77; CLIP's causal text tower gives the same features)."""
    encoded = [encode_like_openai_clip(tokenizer, text, context_length) for text in texts]
    length = max(len(ids) for ids in encoded)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(encoded), length), pad, dtype=torch.long)
    attention_mask = torch.zeros((len(encoded), length), dtype=torch.long)
    for row, ids in enumerate(encoded):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention_mask[row, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}


__all__ = ["WORD_PATTERN", "batch_encode_like_openai_clip", "bytes_to_unicode", "encode_like_openai_clip"]
