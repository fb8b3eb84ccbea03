#!/usr/bin/env python
"""Converts the official TF-CoVR embeddings (a stream of pickled {video_id: tensor} dicts) to parquet.

The command is `modeling_tfcovr.commands.convert_embeddings` (installed as `tfcovr-convert-embeddings`); `--help` lists
its options.
"""

import sys

from modeling_tfcovr.commands import run
from modeling_tfcovr.commands.convert_embeddings import main

if __name__ == "__main__":
    sys.exit(run(main))
