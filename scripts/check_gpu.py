#!/usr/bin/env python
"""Checks the CUDA paths on one GPU against the CPU path on tiny data (both training stages in fp32/bf16/fp16,
gathered negatives, extraction, pipeline, FAISS, accelerate launch) and prints the model benchmark's GPU timings.
`--dry-run` (automatic without CUDA) runs the CPU part and skips the rest with a message.

Runs `tfcovr check-gpu` (`modeling_tfcovr.commands.check_gpu`); `--help` lists its options.
"""

import sys

from modeling_tfcovr.commands import run_command

if __name__ == "__main__":
    sys.exit(run_command("check-gpu"))
