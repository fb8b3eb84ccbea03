#!/usr/bin/env python
"""Stage 2: train TF-CoVR's text projection and combiner with HN-NCE.

The command is `modeling_tfcovr.commands.train_retrieval` (installed as `tfcovr-train-retrieval`); `--help` lists
its options.
"""

import sys

from modeling_tfcovr.commands import run
from modeling_tfcovr.commands.train_retrieval import main

if __name__ == "__main__":
    sys.exit(run(main))
