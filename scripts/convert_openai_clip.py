#!/usr/bin/env python
"""Converts OpenAI CLIP weights (the `clip` package's naming) to a transformers model folder: a
CLIPModel for ViT models, a CLIPTextModelWithProjection (text tower only) for ResNet models.

The command is `modeling_tfcovr.commands.convert_openai_clip` (installed as `tfcovr-convert-openai-clip`); `--help` lists
its options.
"""

import sys

from modeling_tfcovr.commands import run
from modeling_tfcovr.commands.convert_openai_clip import main

if __name__ == "__main__":
    sys.exit(run(main))
