#!/usr/bin/env python
"""Builds a stage-1 clips dataset (for train_classifier.py --dataset_dir) from clips and label tables.

The command is `modeling_tfcovr.commands.build_clips_dataset` (installed as `tfcovr-build-clips-dataset`); `--help` lists its options.
"""

import sys

from modeling_tfcovr.commands import run
from modeling_tfcovr.commands.build_clips_dataset import main

if __name__ == "__main__":
    sys.exit(run(main))
