#!/usr/bin/env python
"""Builds the synthetic gym: rendered clips, TF-CoVR-style triplets, clip tables and a dataset card.

Runs `tfcovr build-synthetic` (`modeling_tfcovr.commands.build_synthetic`); `--help` lists its options.
"""

import sys

from modeling_tfcovr.commands import run_command

if __name__ == "__main__":
    sys.exit(run_command("build-synthetic"))
