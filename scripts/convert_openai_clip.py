#!/usr/bin/env python
"""Converts OpenAI CLIP weights (the `clip` package's naming) to a transformers model folder: a
CLIPModel for ViT models, a CLIPTextModelWithProjection (text tower only) for ResNet models.

Runs `tfcovr convert-openai-clip` (`modeling_tfcovr.commands.convert_openai_clip`); `--help` lists its options.
"""

import sys

from modeling_tfcovr.commands import run_command

if __name__ == "__main__":
    sys.exit(run_command("convert-openai-clip"))
