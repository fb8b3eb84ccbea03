#!/usr/bin/env python
"""The web app (Gradio): choose or upload a query clip, type a modification, see the top-k gallery videos.

    python scripts/app.py --model runs/demo/tfcovr-synthetic --gallery my_gallery/

Runs `tfcovr app` (`modeling_tfcovr.commands.app`); `--help` lists its options.
"""

import sys

from modeling_tfcovr.commands import run_command

if __name__ == "__main__":
    sys.exit(run_command("app"))
