#!/usr/bin/env python
"""Converts the official TF-CoVR annotation CSVs into the parquet splits of `hub_dataset/`.

The command is `modeling_tfcovr.commands.build_tfcovr` (installed as `tfcovr-build-dataset`); `--help` lists
its options.
"""

import sys

from modeling_tfcovr.commands import run
from modeling_tfcovr.commands.build_tfcovr import main

if __name__ == "__main__":
    sys.exit(run(main))
