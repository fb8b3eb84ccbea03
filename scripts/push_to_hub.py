#!/usr/bin/env python
"""Publish a trained TF-CoVR model folder (weights, processor, code through auto_map, model card)
or the dataset folder to the Hugging Face Hub.

Runs `tfcovr push-to-hub` (`modeling_tfcovr.commands.push_to_hub`); `--help` lists its options.
"""

import sys

from modeling_tfcovr.commands import run_command

if __name__ == "__main__":
    sys.exit(run_command("push-to-hub"))
