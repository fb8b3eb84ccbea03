#!/usr/bin/env python
"""Builds the synthetic gym: rendered clips, TF-CoVR-style triplets, clip tables and a dataset card.

The command is `modeling_tfcovr.commands.build_synthetic` (installed as `tfcovr-build-synthetic`); `--help` lists
its options.
"""

import sys

from modeling_tfcovr.commands import run
from modeling_tfcovr.commands.build_synthetic import main

if __name__ == "__main__":
    sys.exit(run(main))
