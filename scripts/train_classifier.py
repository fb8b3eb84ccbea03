#!/usr/bin/env python
"""Stage 1: fine-tune the AIM video encoder on clip -> label classification.

The command is `modeling_tfcovr.commands.train_classifier` (installed as `tfcovr-train-classifier`); `--help` lists
its options.
"""

import sys

from modeling_tfcovr.commands import run
from modeling_tfcovr.commands.train_classifier import main

if __name__ == "__main__":
    sys.exit(run(main))
