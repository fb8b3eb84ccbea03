#!/usr/bin/env python
"""Embed a set of videos with a TF-CoVR video encoder into an embeddings dataset.

The command is `modeling_tfcovr.commands.extract_embeddings` (installed as `tfcovr-extract-embeddings`); `--help` lists
its options.
"""

import sys

from modeling_tfcovr.commands import run
from modeling_tfcovr.commands.extract_embeddings import main

if __name__ == "__main__":
    sys.exit(run(main))
