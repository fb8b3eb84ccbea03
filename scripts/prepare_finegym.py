#!/usr/bin/env python
"""Cuts TF-CoVR's FineGym sub-action clips from the raw FineGym videos.

The command is `modeling_tfcovr.commands.prepare_finegym` (installed as `tfcovr-prepare-finegym`); `--help` lists its options.
"""

import sys

from modeling_tfcovr.commands import run
from modeling_tfcovr.commands.prepare_finegym import main

if __name__ == "__main__":
    sys.exit(run(main))
