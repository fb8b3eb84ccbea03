#!/usr/bin/env python
"""Converts an AIM checkpoint (mmaction's `backbone.*` + `cls_head.fc_cls.*`, or the TF-CoVR code's
stage-1 AIM) to a TFCoVRForVideoClassification folder, or to a TFCoVRVisionModel folder with
--vision-only.

The command is `modeling_tfcovr.commands.convert_aim_checkpoint` (installed as `tfcovr-convert-aim`); `--help` lists
its options.
"""

import sys

from modeling_tfcovr.commands import run
from modeling_tfcovr.commands.convert_aim_checkpoint import main

if __name__ == "__main__":
    sys.exit(run(main))
