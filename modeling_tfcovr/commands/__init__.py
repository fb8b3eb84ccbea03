"""The command-line programs: one module per command, each with `main(argv)`.

`scripts/<name>.py` and the console scripts of the installed package (`tfcovr-<name>`, see
`setup.cfg`, which call each module's `cli()`) both run them through [`run`], which turns the
project's errors into one line on stderr and an exit status instead of a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from ..errors import UntrustedFileError

EXIT_ERROR = 1
EXIT_UNTRUSTED = 2
"""Exit status when a file could only be read by unpickling it and the user did not pass `--trust-pickle`."""


def report_error(error: BaseException) -> int:
    """Prints `error: <type>: <message>` on stderr and returns the exit status for it."""
    print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
    return EXIT_UNTRUSTED if isinstance(error, UntrustedFileError) else EXIT_ERROR


def run(main: Callable[[list[str] | None], object], argv: Sequence[str] | None = None) -> int:
    """Runs a command's `main` and returns its exit status.

    `main` returns an exit status (`int`) or a result (anything else means success). The project's
    errors (`TFCoVRError`) and missing files are reported by [`report_error`]; other exceptions are
    bugs and keep their traceback.
    """
    from ..errors import TFCoVRError

    try:
        result = main(list(sys.argv[1:] if argv is None else argv))
    except (TFCoVRError, FileNotFoundError) as error:
        return report_error(error)
    return result if isinstance(result, int) else 0


__all__ = ["run", "report_error", "EXIT_ERROR", "EXIT_UNTRUSTED"]
