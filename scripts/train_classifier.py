#!/usr/bin/env python
"""Stage 1: fine-tune the AIM video encoder on clip -> label classification.

Runs `tfcovr train-classifier` (`modeling_tfcovr.commands.train_classifier`); `--help` lists its options.
"""

import sys

from modeling_tfcovr.commands import run_command

if __name__ == "__main__":
    sys.exit(run_command("train-classifier"))
