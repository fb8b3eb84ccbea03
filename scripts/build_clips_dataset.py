#!/usr/bin/env python
"""Builds a stage-1 clips dataset (for train_classifier.py --dataset-dir) from clips and label tables.

Runs `tfcovr build-clips-dataset` (`modeling_tfcovr.commands.build_clips_dataset`); `--help` lists its options.
"""

import sys

from modeling_tfcovr.commands import run_command

if __name__ == "__main__":
    sys.exit(run_command("build-clips-dataset"))
