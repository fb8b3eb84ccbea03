#!/usr/bin/env python
"""Encodes TF-CoVR's FineDiving clips from the FineDiving frame folders.

Runs `tfcovr prepare-finediving` (`modeling_tfcovr.commands.prepare_finediving`); `--help` lists its options.
"""

import sys

from modeling_tfcovr.commands import run_command

if __name__ == "__main__":
    sys.exit(run_command("prepare-finediving"))
