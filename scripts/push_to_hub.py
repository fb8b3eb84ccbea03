#!/usr/bin/env python
"""Publish a trained TF-CoVR model folder (weights, processor, code through auto_map, model card)
or the dataset folder to the Hugging Face Hub.

The command is `modeling_tfcovr.commands.push_to_hub` (installed as `tfcovr-push-to-hub`); `--help` lists
its options.
"""

import sys

from modeling_tfcovr.commands import run
from modeling_tfcovr.commands.push_to_hub import main

if __name__ == "__main__":
    sys.exit(run(main))
