#!/usr/bin/env python
"""Encodes TF-CoVR's FineDiving clips from the FineDiving frame folders.

The command is `modeling_tfcovr.commands.prepare_finediving` (installed as `tfcovr-prepare-finediving`); `--help` lists its options.
"""

import sys

from modeling_tfcovr.commands import run
from modeling_tfcovr.commands.prepare_finediving import main

if __name__ == "__main__":
    sys.exit(run(main))
