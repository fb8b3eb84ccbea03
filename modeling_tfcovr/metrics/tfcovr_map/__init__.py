"""The TF-CoVR mAP@K `evaluate` metric module.

`tfcovr_map.py` in this folder is the module that `evaluate.load(<this folder>)` loads; the folder's `README.md` is
its metric card. Import the plain functions from `modeling_tfcovr.metrics` (this package stays empty so that
importing it does not import `evaluate`).
"""
