#!/usr/bin/env python
"""The main job: TF-CoVR end to end on the synthetic benchmark (build, stage 1, embeddings, stage 2,
evaluation with baselines, pipeline, report). Run it through `make demo`, which sets up the
environment first.

Runs `tfcovr demo` (`modeling_tfcovr.commands.demo`); `--help` lists its options.
"""

import sys

from modeling_tfcovr.commands import run_command

if __name__ == "__main__":
    sys.exit(run_command("demo"))
