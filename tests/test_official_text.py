"""Text normalisation and tokenisation against literal reimplementations of the official definitions.

The official TF-CoVR datasets run `replace_numbers_with_text` then `pre_caption(max_words=30)` on every
modification (`src/data/finegd_covr.py`, `src/data/finegd_test.py`, `src/data/utils.py`), then
`clip.tokenize(text, truncate=True)`. The references below are written from those definitions, line for
line, independently of the package.
"""

from __future__ import annotations

import re

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modeling_tfcovr import TFCoVRProcessor, TFCoVRVideoProcessor
from modeling_tfcovr.convert import build_clip_tokenizer
from modeling_tfcovr.text_normalization import normalize_modification_text

from .test_convert import openai_clip  # noqa: F401  (fixture: OpenAI's own clip package)

OFFICIAL_TABLE = {
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


def official_replace_numbers_with_text(text):
    def repl(match):
        return OFFICIAL_TABLE.get(float(match.group(0)), match.group(0))

    return re.compile(r"\b\d+(\.\d+)?\b").sub(repl, text)


def official_pre_caption(caption, max_words=50):
    caption = re.sub(r"([!\"()*#:;~])", " ", caption.lower())
    caption = re.sub(r"\s{2,}", " ", caption)
    caption = caption.rstrip("\n")
    caption = caption.strip(" ")
    caption_words = caption.split(" ")
    if len(caption_words) > max_words:
        caption = " ".join(caption_words[:max_words])
    return caption


def official_normalisation(text):
    return official_pre_caption(official_replace_numbers_with_text(text), 30)


NEAR_MISSES = [
    "1.5m",
    "2.50",
    "0",
    "7.5",
    "10",
    "1/2",
    "3-4",
    "0.5",
    "00.5",
    "07",
    "7.0",
    "7.00",
    "6.5",
    "8",
    "1.25",
    "1.",
    ".5",
    "2.5.5",
    "x2",
    "2x",
    "2nd",
    "1,5",
    "1_5",
    "٣ turns",
    "² twists",
    "1e3",
    "-1",
    "+2",
    "3%",
    "$4",
    "Show it with 2.5 turns instead of 1.5!",
    "Do 3 rotations, not 1.",
    "0.5 turn; 7 twists; 8 saltos",
    "It's a HALF-turn",
    "a double-twisting   Yurchenko (2/1) vault",
    "What's the difference? I'd say: 3 twists & 1 salto.",
    "they're doing it 100% backwards... we'll see",
    "Add one more rotation:(1.5->2.5)",
    "tuck → pike, naïve café",
    "İstanbul STRASSE Σίσυφος ΟΔΟΣ",
    "tab\tseparated\twords",
    "two\t\tTABS",
    "line\nbreak\n",
    "trailing  \n\n",
    "  leading and trailing  ",
    "\u00a0nbsp\u00a0\u00a0twice",
    "don’t “quote” me",
    "salto &amp; twist",
    "&lt;b&gt;bold&lt;/b&gt;",
    "&amp;amp;",
    "mojibake: donâ€™t",
    "under_score_words",
    "~tilde~ *star* #hash# ;semi; :colon:",
    "all of it: !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
    "",
    " ".join(["word"] * 40),
    " ".join(str(i % 9) for i in range(45)),
    "a " * 29 + "b  c d",
    "x " * 31,
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen twenty twenty-one twenty-two twenty-three twenty-four twenty-five twenty-six twenty-seven "
    "twenty-eight twenty-nine thirty thirty-one",
]


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_normalisation_equals_the_official_one(text):
    assert normalize_modification_text(text) == official_normalisation(text)


def test_normalisation_on_the_cases_that_differed_from_the_official_code():
    assert normalize_modification_text("0 turns, 7.5 twists, 10 saltos") == "0 turns, 7.5 twists, 10 saltos"
    assert normalize_modification_text("1.25 and 1/2") == "1.25 and one/two"  # "1/2": 1 and 2 are separate numbers
    assert normalize_modification_text("1.5m, 2.50, 3-4") == "one.5m, two and a half, three-four"
    assert normalize_modification_text("Why? Now & then; under_score.") == "why? now & then under_score."


_pieces = st.one_of(
    st.integers(0, 12).map(str),
    st.tuples(st.integers(0, 9), st.sampled_from(["5", "50", "0", "25", "2", "05", ""])).map(
        lambda t: f"{t[0]}.{t[1]}"
    ),
    st.sampled_from(
        ["Turn", "SALTO", "twists", "x2", "2nd", "İstanbul", "straße", "٣", "Ǆ", "half-turn", "it's", "ΟΔΟΣ"]
    ),
    st.sampled_from(
        [
            " ",
            "  ",
            "\t",
            "\n",
            "\u00a0",
            "\u2028",
            "\x1c",
            ".",
            ",",
            "!",
            "?",
            ";",
            "(",
            ")",
            "_",
            "-",
            "'",
            "/",
            "~",
            "#",
            "*",
            '"',
            ":",
            "&amp;",
            "’",
            "â€™",
        ]
    ),
)
TEXTS = st.one_of(st.lists(_pieces, max_size=60).map("".join), st.text(max_size=200))
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(TEXTS, st.integers(1, 40))
def test_normalisation_equals_the_official_one_on_random_texts(text, max_words):
    assert normalize_modification_text(text, max_words) == official_pre_caption(
        official_replace_numbers_with_text(text), max_words
    )


# ----------------------------------------------------------------------------------------------------------------------
# Tokenisation: the processor with a CLIP tokenizer gives the ids of `clip.tokenize(..., truncate=True)`
# ----------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip_processor(tmp_path_factory):
    tokenizer = build_clip_tokenizer(tmp_path_factory.mktemp("clip_tokenizer"))
    return TFCoVRProcessor(video_processor=TFCoVRVideoProcessor(), tokenizer=tokenizer)


def official_tokens(clip, text: str) -> list[int]:
    """What the official code feeds the text tower: normalised, then `clip.tokenize(truncate=True)`, zeros cut."""
    ids = clip.tokenize([official_normalisation(text)], truncate=True)[0]
    return ids[: int((ids != 0).sum())].tolist()


TOKENIZER_CASES = NEAR_MISSES + [
    "don’t “quote” me",
    "salto &amp; twist",
    "&amp;lt;",
    "mojibake donâ€™t stop",
    "caf\u0065\u0301 composed",
    "ﬁne ligature",
    "full-width ＡＢＣ",
    "emoji 🤸 flip",
    "<|endoftext|> inside",
    "zero\u200bwidth",
    "repeat " * 90,
    "a1b2c3 " * 40,
    "longwordwithoutspaces" * 20,
    "1\U000323b0",
    "a\U000323b0b",
    "\u0e01\u0e34\u0e19 Thai marks",
    "\U0001f938\u200d\u2640\ufe0f zwj",
    "\x1c\x1d sep",
    "\u180e mongolian",
    "<|startoftext|>",
    "tab\tin\tit",
    "ﬀ ﬁ ﬂ",
    "ǅ titlecase",
]


@pytest.mark.parametrize("text", TOKENIZER_CASES)
def test_processor_tokens_equal_clip_tokenize(openai_clip, clip_processor, text):  # noqa: F811
    ids = clip_processor(text=[text])["input_ids"][0].tolist()
    assert ids == official_tokens(openai_clip, text)
    assert len(ids) <= 77


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(TEXTS)
def test_processor_tokens_equal_clip_tokenize_on_random_texts(openai_clip, clip_processor, text):  # noqa: F811
    assert clip_processor(text=[text])["input_ids"][0].tolist() == official_tokens(openai_clip, text)


def test_a_batch_pads_and_keeps_every_row_equal_to_clip_tokenize(openai_clip, clip_processor):  # noqa: F811
    texts = ["Show it with 2.5 turns!", "x " * 100, "don’t"]
    batch = clip_processor(text=texts)
    reference = openai_clip.tokenize([official_normalisation(t) for t in texts], truncate=True)
    ids = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, 0)
    assert torch.equal(ids, reference[:, : ids.shape[1]])
    assert not reference[:, ids.shape[1] :].any()
