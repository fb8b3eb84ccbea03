#!/usr/bin/env python
"""Converts the official TF-CoVR embeddings (a stream of pickled {video_id: tensor} dicts) to parquet.

Runs `tfcovr convert-embeddings` (`modeling_tfcovr.commands.convert_embeddings`); `--help` lists its options.
"""

import sys

from modeling_tfcovr.commands import run_command

if __name__ == "__main__":
    sys.exit(run_command("convert-embeddings"))
