"""`python -m modeling_tfcovr.commands <command> [options]`: the `tfcovr` program without the console script."""

import sys

from . import main

sys.exit(main())
