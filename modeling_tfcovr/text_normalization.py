"""Normalisation of modification texts, as the official TF-CoVR code does it before tokenising.

Numbers become words ("2.5" -> "two and a half", "1" -> "one", up to seven), the text is
lower-cased, punctuation other than apostrophes and hyphens is removed, and the result is capped
at 30 words.
"""

from __future__ import annotations

import re

from .errors import DataFormatError

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven")
MAX_WORDS = 30

_NUMBER = re.compile(r"(?<![\w.])(\d+)(?:\.(\d+))?(?![\w])")
_PUNCTUATION = re.compile(r"[^\w\s'\-]")
_SPACES = re.compile(r"\s+")


def number_to_words(integer_part: int, fraction: str | None = None) -> str | None:
    """Words for integers 0-7 and their halves ("2", ".5" -> "two and a half"); `None` otherwise."""
    if integer_part >= len(NUMBER_WORDS):
        return None
    if fraction is None or set(fraction) == {"0"}:
        return NUMBER_WORDS[integer_part]
    if fraction.rstrip("0") == "5":
        return "half" if integer_part == 0 else f"{NUMBER_WORDS[integer_part]} and a half"
    return None


def normalize_modification_text(text: str, max_words: int = MAX_WORDS) -> str:
    """Normalises a modification text (numbers to words, lower case, no punctuation, at most
    `max_words` words).

    >>> normalize_modification_text("Show it with 2.5 turns instead of 1.5!")
    'show it with two and a half turns instead of one and a half'
    """
    if not isinstance(text, str):
        raise DataFormatError(f"modification text must be a str, got {_describe_non_text(text)}")

    def replace(match: re.Match) -> str:
        words = number_to_words(int(match.group(1)), match.group(2))
        return words if words is not None else match.group(0)

    text = _NUMBER.sub(replace, text).lower()
    text = _PUNCTUATION.sub(" ", text.replace("_", " "))
    # Removing punctuation can free more numbers ("0.25" -> "0 25", "2_" -> "2 "): convert those too, so that no
    # digit 0-7 stands alone in the result and normalising twice changes nothing.
    text = _NUMBER.sub(replace, text)
    words = _SPACES.sub(" ", text).strip().split(" ")
    return " ".join(words[:max_words]) if words != [""] else ""


def _describe_non_text(value: object) -> str:
    """`bytes b'...' (decode them to str first)` / `int 3`: what was passed instead of a text."""
    if isinstance(value, (bytes, bytearray)):
        return f"{type(value).__name__} {bytes(value[:60])!r} (decode them to str first)"
    return f"{type(value).__name__} {str(value)[:60]!r}"


__all__ = ["normalize_modification_text", "number_to_words", "NUMBER_WORDS", "MAX_WORDS"]
