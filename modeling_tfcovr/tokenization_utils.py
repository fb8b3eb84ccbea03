"""Building a small word-level tokenizer with the `tokenizers` library, for models trained from
scratch where no pretrained tokenizer exists (the synthetic benchmark, tests)."""

from __future__ import annotations

from collections.abc import Iterable

from transformers import PreTrainedTokenizerFast

from .text_normalization import normalize_modification_text

PAD, UNK, BOS, EOS = "[PAD]", "[UNK]", "[BOS]", "[EOS]"


def build_word_level_tokenizer(
    texts: Iterable[str], min_frequency: int = 1, normalize: bool = True
) -> PreTrainedTokenizerFast:
    """A word-level fast tokenizer over the words of `texts`.

    Ids: `[PAD]`=0, `[UNK]`=1, `[BOS]`=2, `[EOS]`=3, then words by frequency. Every encoding is
    `[BOS] words [EOS]`, so CLIP-style text towers can pool at the EOS token (set the text config's
    `eos_token_id=3`, `bos_token_id=2`, `pad_token_id=0`).
    """
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from tokenizers.trainers import WordLevelTrainer

    corpus = [normalize_modification_text(t) if normalize else t for t in texts]
    tokenizer = Tokenizer(WordLevel(unk_token=UNK))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace()])
    trainer = WordLevelTrainer(special_tokens=[PAD, UNK, BOS, EOS], min_frequency=min_frequency)
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    bos_id, eos_id = tokenizer.token_to_id(BOS), tokenizer.token_to_id(EOS)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}", special_tokens=[(BOS, bos_id), (EOS, eos_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token=PAD, unk_token=UNK, bos_token=BOS, eos_token=EOS, model_max_length=77
    )


__all__ = ["build_word_level_tokenizer"]
