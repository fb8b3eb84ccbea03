#!/usr/bin/env python
"""Cuts TF-CoVR's FineGym sub-action clips from the raw FineGym videos.

Runs `tfcovr prepare-finegym` (`modeling_tfcovr.commands.prepare_finegym`); `--help` lists its options.
"""

import sys

from modeling_tfcovr.commands import run_command

if __name__ == "__main__":
    sys.exit(run_command("prepare-finegym"))
