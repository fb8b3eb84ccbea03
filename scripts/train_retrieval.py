#!/usr/bin/env python
"""Stage 2: train TF-CoVR's text projection and combiner with HN-NCE.

Runs `tfcovr train-retrieval` (`modeling_tfcovr.commands.train_retrieval`); `--help` lists its options.
"""

import sys

from modeling_tfcovr.commands import run_command

if __name__ == "__main__":
    sys.exit(run_command("train-retrieval"))
