#!/usr/bin/env python
"""Converts the official TF-CoVR annotation CSVs into the parquet splits of `hub_dataset/`.

Runs `tfcovr build-dataset` (`modeling_tfcovr.commands.build_tfcovr`); `--help` lists its options.
"""

import sys

from modeling_tfcovr.commands import run_command

if __name__ == "__main__":
    sys.exit(run_command("build-dataset"))
