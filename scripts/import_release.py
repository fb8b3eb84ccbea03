#!/usr/bin/env python
"""Imports the TF-CoVR release folder (annotation CSVs and AIM embeddings) as triplets and an embeddings parquet.

The command is `modeling_tfcovr.commands.import_release` (installed as `tfcovr-import-release`); `--help` lists
its options.
"""

import sys

from modeling_tfcovr.commands import run
from modeling_tfcovr.commands.import_release import main

if __name__ == "__main__":
    sys.exit(run(main))
