#!/usr/bin/env python
"""Converts the official TF-CoVR stage-2 checkpoint (Lightning Fabric state with `combiner.*`,
`text_proj.*` and OpenAI CLIP RN50 under `clip_model.*`) to a TFCoVRModel folder.

Runs `tfcovr convert-checkpoint` (`modeling_tfcovr.commands.convert_tfcovr_checkpoint`); `--help` lists its options.
"""

import sys

from modeling_tfcovr.commands import run_command

if __name__ == "__main__":
    sys.exit(run_command("convert-checkpoint"))
