#!/usr/bin/env python
"""Evaluate composed video retrieval on a triplets split: TF-CoVR and the baselines that show what
composition adds (text only, query video only, average of both).

The command is `modeling_tfcovr.commands.evaluate` (installed as `tfcovr-evaluate`); `--help` lists
its options.
"""

import os
import sys

# `python scripts/<any script>.py` puts scripts/ first on sys.path, where this file would stand in for the `evaluate`
# library that the metric needs. Take the folder off the path, and if this file was imported under the library's
# name, hand the import over to the library (the import system returns what sys.modules holds after this runs).
_SCRIPTS = os.path.dirname(os.path.realpath(__file__))
sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.curdir) != _SCRIPTS]
if __name__ == "evaluate":
    del sys.modules[__name__]
    import evaluate  # noqa: F401  (the library: it replaces this module in sys.modules)
else:
    from modeling_tfcovr.commands import run
    from modeling_tfcovr.commands.evaluate import main

    if __name__ == "__main__":
        sys.exit(run(main))
