#!/usr/bin/env python
"""Embed a set of videos with a TF-CoVR video encoder into an embeddings dataset.

Runs `tfcovr extract-embeddings` (`modeling_tfcovr.commands.extract_embeddings`); `--help` lists its options.
"""

import sys

from modeling_tfcovr.commands import run_command

if __name__ == "__main__":
    sys.exit(run_command("extract-embeddings"))
