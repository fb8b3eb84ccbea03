"""Normalisation of modification texts, exactly as the official TF-CoVR code does it before tokenising.

The official datasets (`src/data/finegd_covr.py`, `src/data/finegd_test.py`, `src/data/utils.py` in
UCF-CRCV/TF-CoVR) apply two steps to every modification, in this order:

1. `replace_numbers_with_text`: every match of `\\b\\d+(\\.\\d+)?\\b` is read as a float and replaced from a
   fixed table, 0.5 -> "half", 1.0 -> "one", 1.5 -> "one and a half", ..., 7.0 -> "seven". Any other number
   (0, 7.5, 10, 1.25) is left as written. "2.50" and "02" read as 2.5 and 2.0. Python's `re` semantics
   apply: `\\d` also matches other scripts' digits ("٣" is 3), and "1.5m" matches only "1" (there is no word
   boundary between "5" and "m"), giving "one.5m".
2. `pre_caption(max_words=30)`: lower case (`str.lower`); each of the characters `!"()*#:;~` becomes a
   space (nothing else is removed: `. , ? / ' - & _` stay); runs of two or more whitespace characters become
   one space (a single tab or newline stays); trailing newlines and surrounding spaces are stripped; a text
   of more than 30 space-separated words is cut to its first 30.

The CLIP tokenizer then runs OpenAI's own cleaning (ftfy, HTML unescaping, whitespace); see
[`openai_clip_clean_text`].
"""

from __future__ import annotations

import html
import re

from .errors import DataFormatError

MAX_WORDS = 30

# The official table: only these values are spelled out.
NUMBER_WORDS: dict[float, str] = {
    0.5: "half",
    1.0: "one",
    1.5: "one and a half",
    2.0: "two",
    2.5: "two and a half",
    3.0: "three",
    3.5: "three and a half",
    4.0: "four",
    4.5: "four and a half",
    5.0: "five",
    5.5: "five and a half",
    6.0: "six",
    6.5: "six and a half",
    7.0: "seven",
}

_NUMBER = re.compile(r"\b\d+(\.\d+)?\b")
_REMOVED_CHARACTERS = re.compile(r"[!\"()*#:;~]")
_WHITESPACE_RUN = re.compile(r"\s{2,}")
_ANY_WHITESPACE = re.compile(r"\s+")


def replace_numbers_with_words(text: str) -> str:
    """Step 1 of the official normalisation: numbers in [`NUMBER_WORDS`] become words, others stay.

    >>> replace_numbers_with_words("2.5 turns, not 1 or 10")
    'two and a half turns, not one or 10'
    """
    return _NUMBER.sub(lambda match: NUMBER_WORDS.get(float(match.group(0)), match.group(0)), text)


def pre_caption(text: str, max_words: int = MAX_WORDS) -> str:
    """Step 2 of the official normalisation: lower case, `!"()*#:;~` to spaces, whitespace runs collapsed,
    at most `max_words` words.

    >>> pre_caption('Half-turn (tucked): 3/4 & more!')
    'half-turn tucked 3/4 & more'
    """
    text = _REMOVED_CHARACTERS.sub(" ", text.lower())
    text = _WHITESPACE_RUN.sub(" ", text).rstrip("\n").strip(" ")
    words = text.split(" ")
    return " ".join(words[:max_words]) if len(words) > max_words else text


def normalize_modification_text(text: str, max_words: int = MAX_WORDS) -> str:
    """The official TF-CoVR normalisation of a modification text (both steps).

    >>> normalize_modification_text("Show it with 2.5 turns instead of 1.5!")
    'show it with two and a half turns instead of one and a half'

    Raises:
        DataFormatError: `text` is not a `str` (bytes must be decoded first).
    """
    if not isinstance(text, str):
        raise DataFormatError(f"modification text must be a str, got {_describe_non_text(text)}")
    return pre_caption(replace_numbers_with_words(text), max_words)


def openai_clip_clean_text(text: str) -> str:
    """OpenAI CLIP's cleaning inside `clip.tokenize`: `ftfy.fix_text`, HTML unescaping twice, strip,
    whitespace runs to one space, strip, lower case. The text then splits into the same tokens with the
    transformers CLIP tokenizer as with OpenAI's.

    >>> openai_clip_clean_text("Don\u2019t  &amp;amp; STOP")
    "don't & stop"
    """
    import ftfy

    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return _ANY_WHITESPACE.sub(" ", text).strip().lower()


def _describe_non_text(value: object) -> str:
    """`bytes b'...' (decode them to str first)` / `int 3`: what was passed instead of a text."""
    if isinstance(value, (bytes, bytearray)):
        return f"{type(value).__name__} {bytes(value[:60])!r} (decode them to str first)"
    return f"{type(value).__name__} {str(value)[:60]!r}"


__all__ = [
    "MAX_WORDS",
    "NUMBER_WORDS",
    "normalize_modification_text",
    "openai_clip_clean_text",
    "pre_caption",
    "replace_numbers_with_words",
]
