#!/usr/bin/env python
"""The main job: TF-CoVR end to end on the synthetic benchmark (build, stage 1, embeddings, stage 2,
evaluation with baselines, pipeline, report). Run it through `make demo`, which sets up the
environment first.

The command is `modeling_tfcovr.commands.demo` (installed as `tfcovr-demo`); `--help` lists
its options.
"""

import sys

from modeling_tfcovr.commands import run
from modeling_tfcovr.commands.demo import main

if __name__ == "__main__":
    sys.exit(run(main))
