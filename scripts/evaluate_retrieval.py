#!/usr/bin/env python
"""Evaluate composed video retrieval on a triplets split: TF-CoVR and the baselines that show what
composition adds (text only, query video only, average of both).

Runs `tfcovr evaluate` (`modeling_tfcovr.commands.evaluate`); `--help` lists its options.
"""

import sys

from modeling_tfcovr.commands import run_command

if __name__ == "__main__":
    sys.exit(run_command("evaluate"))
