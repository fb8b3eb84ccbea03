#!/usr/bin/env python
"""Builds OpenAI's CLIP tokenizer as a transformers CLIPTokenizer folder, without downloads, from the
BPE vocabulary that ships with OpenAI's CLIP package (pip install clip-anytorch).

Runs `tfcovr build-clip-tokenizer` (`modeling_tfcovr.commands.build_clip_tokenizer`); `--help` lists its options.
"""

import sys

from modeling_tfcovr.commands import run_command

if __name__ == "__main__":
    sys.exit(run_command("build-clip-tokenizer"))
