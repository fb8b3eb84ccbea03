"""Preparing TF-CoVR's clips from the FineGym and FineDiving downloads, and clip datasets for stage 1."""

from .finediving import prepare_finediving
from .finegym import prepare_finegym
from .jobs import FAILURES_FILE, ClipResult, RunSummary, read_id_list

__all__ = ["FAILURES_FILE", "ClipResult", "RunSummary", "prepare_finediving", "prepare_finegym", "read_id_list"]
