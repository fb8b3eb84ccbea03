#!/usr/bin/env python
"""Imports the TF-CoVR release folder (annotation CSVs and AIM embeddings) as triplets and an embeddings parquet.

Runs `tfcovr import-release` (`modeling_tfcovr.commands.import_release`); `--help` lists its options.
"""

import sys

from modeling_tfcovr.commands import run_command

if __name__ == "__main__":
    sys.exit(run_command("import-release"))
