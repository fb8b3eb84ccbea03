#!/usr/bin/env python
"""Converts an AIM checkpoint (mmaction's `backbone.*` + `cls_head.fc_cls.*`, or the TF-CoVR code's
stage-1 AIM) to a TFCoVRForVideoClassification folder, or to a TFCoVRVisionModel folder with
--vision-only.

Runs `tfcovr convert-aim` (`modeling_tfcovr.commands.convert_aim_checkpoint`); `--help` lists its options.
"""

import sys

from modeling_tfcovr.commands import run_command

if __name__ == "__main__":
    sys.exit(run_command("convert-aim"))
