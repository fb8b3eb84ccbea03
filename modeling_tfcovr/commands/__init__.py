"""The command-line programs: `tfcovr <command>`, one module per command, each with `main(argv)`.

[`COMMANDS`] is the one registry of the commands. Everything else is derived from it: the `tfcovr` program
(`tfcovr --help` lists the commands, `tfcovr <command> --help` shows a command's options), the console scripts
of the installed package (`tfcovr` and the aliases `tfcovr-<command>`, see `setup.cfg` and [`console_scripts`]) and
the thin `scripts/<script>.py` entry points of a checkout (`sys.exit(run_command("<command>"))`). All of them run a
command through [`run`], which turns the project's errors and a user's mistakes (a missing file, a split that does
not exist) into one line on stderr and an exit status instead of a traceback.

Adding a command: write `modeling_tfcovr/commands/<module>.py` with `main(argv) -> int | object` building its parser
with [`command_parser`] (or [`run_training`] for a `Trainer` command), add one [`Command`] to [`COMMANDS`], its alias
line to `setup.cfg` (a test checks that the entry points equal [`console_scripts`]) and `scripts/<script>.py` (the
same lines as the others).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from transformers import HfArgumentParser

from ..errors import TFCoVRError, UntrustedFileError

EXIT_ERROR = 1
EXIT_UNTRUSTED = 2
"""Exit status when a file could only be read by unpickling it and the user did not pass `--trust-pickle`."""
EXIT_USAGE = 2
"""Exit status of a command line that does not parse (argparse's)."""


@dataclass(frozen=True)
class Command:
    """One command: its module in this package, its one-line description and its `scripts/` file."""

    module: str
    help: str
    script: str = ""

    @property
    def script_name(self) -> str:
        """The file name of its thin entry point in `scripts/`."""
        return f"{self.script or self.module}.py"


COMMANDS: dict[str, Command] = {
    "demo": Command("demo", "the main job: TF-CoVR end to end on the synthetic benchmark, with its report"),
    "app": Command("app", "web app: search a gallery of videos with a query clip and a modification text"),
    "build-synthetic": Command("build_synthetic", "render the synthetic gym: clips, triplets, clip tables and card"),
    "build-dataset": Command(
        "build_tfcovr", "convert the official TF-CoVR annotation CSVs into parquet splits", script="build_tfcovr"
    ),
    "import-release": Command("import_release", "import the TF-CoVR release folder (triplets and embeddings)"),
    "convert-embeddings": Command("convert_embeddings", "convert the official pickled embeddings to parquet"),
    "prepare-finegym": Command("prepare_finegym", "cut TF-CoVR's FineGym sub-action clips from the raw videos"),
    "prepare-finediving": Command("prepare_finediving", "encode TF-CoVR's FineDiving clips from its frame folders"),
    "build-clips-dataset": Command("build_clips_dataset", "build a stage-1 clips dataset from clips and label tables"),
    "train-classifier": Command("train_classifier", "stage 1: fine-tune the AIM video encoder on clip classification"),
    "extract-embeddings": Command("extract_embeddings", "embed a set of videos with a video encoder into parquet"),
    "train-retrieval": Command("train_retrieval", "stage 2: train the text projection and combiner with HN-NCE"),
    "evaluate": Command(
        "evaluate", "evaluate composed video retrieval on a triplets split, with baselines", script="evaluate_retrieval"
    ),
    "push-to-hub": Command("push_to_hub", "publish a model or dataset folder to the Hugging Face Hub"),
    "convert-aim": Command("convert_aim_checkpoint", "convert an AIM checkpoint to a transformers model folder"),
    "convert-openai-clip": Command("convert_openai_clip", "convert OpenAI CLIP weights to a transformers model folder"),
    "convert-checkpoint": Command("convert_tfcovr_checkpoint", "convert the official TF-CoVR stage-2 checkpoint"),
    "build-clip-tokenizer": Command("build_clip_tokenizer", "build OpenAI's CLIP tokenizer as a CLIPTokenizer folder"),
    "check-gpu": Command("check_gpu", "check the CUDA paths against the CPU path on tiny data, and the GPU timings"),
}
"""The commands, by their name on the command line (`tfcovr <name>`)."""

PROGRAM = "tfcovr"
_prog: str | None = None  # the program name shown in a command's usage while `run_command` runs it


def console_scripts() -> list[str]:
    """The `console_scripts` entry points of the package: `tfcovr` and the alias `tfcovr-<name>` of every command,
    all the same function, [`main`], which reads the command of an alias from the program's name."""
    return [f"{program} = {__name__}:main" for program in [PROGRAM, *(f"{PROGRAM}-{name}" for name in COMMANDS)]]


def load_command(name: str) -> ModuleType:
    """The module of command `name` (a key of [`COMMANDS`]), imported on first use."""
    if name not in COMMANDS:
        raise KeyError(f"unknown command {name!r}; available: {', '.join(COMMANDS)}")
    return importlib.import_module(f"{__name__}.{COMMANDS[name].module}")


class _OneLineErrors:
    """A command line that does not parse ends in one line, `<prog>: error: <message>` (argparse's message, without
    the usage, which `--help` prints: the training commands' usage alone is over a hundred lines)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


class CommandParser(_OneLineErrors, argparse.ArgumentParser):
    """An `ArgumentParser` that takes every `--long-option` also spelled with underscores (`--output_dir`).

    The documented spelling is the dashed one (the usage and `--help` show only it), as in the training commands,
    whose `HfArgumentParser` ([`training_parser`]) accepts both spellings too.
    """

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None):
        args = list(sys.argv[1:] if args is None else args)
        cut = args.index("--") if "--" in args else len(args)  # nothing after a bare "--" is an option
        return super().parse_known_args([*map(self._dashed, args[:cut]), *args[cut:]], namespace)

    def _dashed(self, arg: str) -> str:
        if not arg.startswith("--") or "_" not in arg:
            return arg
        option, sep, value = arg.partition("=")
        dashed = option.replace("_", "-")
        if option in self._option_string_actions or dashed not in self._option_string_actions:
            return arg
        return dashed + sep + value


def command_parser(description: str | None = None, **kwargs) -> CommandParser:
    """The argument parser of a command: [`CommandParser`] with the module docstring as its description, shown as
    written, and `tfcovr <command>` as its program name when run through `tfcovr`."""
    kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
    if _prog is not None:
        kwargs.setdefault("prog", _prog)
    return CommandParser(description=description, **kwargs)


class TrainingParser(_OneLineErrors, HfArgumentParser):
    """`HfArgumentParser` (every `TrainingArguments` option, `--output-dir` or `--output_dir`) with one-line errors."""


def training_parser(dataclass_types) -> TrainingParser:
    """The argument parser of a training command, over its argument dataclasses."""
    return TrainingParser(dataclass_types, **({"prog": _prog} if _prog is not None else {}))


def path_or_repo_id(text: str) -> str:
    """argparse type: a path on disk, else a valid Hub repository id (the usual mistake: a typo in a local path)."""
    from ..hub import check_repo_id, is_local

    if is_local(text):
        return text
    try:
        return check_repo_id(text)
    except FileNotFoundError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def existing_path(text: str) -> Path:
    """argparse type: a file or folder that exists."""
    if not Path(text).exists():
        raise argparse.ArgumentTypeError(f"{text!r} does not exist")
    return Path(text)


def positive_ints(text: str) -> list[int]:
    """argparse type: comma-separated positive integers (`5,10,25,50`)."""
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers such as 5,10,25,50, got {text!r}")
    return values


def report_error(error: BaseException) -> int:
    """Prints `error: <type>: <message>` (one line) on stderr and returns the exit status for it."""
    message = " ".join(str(error).split())
    print(f"error: {type(error).__name__}: {message}", file=sys.stderr)
    return EXIT_UNTRUSTED if isinstance(error, UntrustedFileError) else EXIT_ERROR


def run(main: Callable[[list[str] | None], object], argv: Sequence[str] | None = None) -> int:
    """Runs a command's `main` and returns its exit status.

    `main` returns an exit status (`int`) or a result (anything else means success). The project's errors
    (`TFCoVRError`) and the operating system's (`OSError`: a missing file or folder, a model folder
    `from_pretrained` cannot read, a permission) are reported by [`report_error`]; a command line that does not parse
    ends in argparse's message and its exit status 2; other exceptions are bugs and keep their traceback.
    """
    try:
        result = main(list(sys.argv[1:] if argv is None else argv))
    except (TFCoVRError, OSError) as error:
        return report_error(error)
    except SystemExit as exit_:  # argparse: --help (0) or a command line that does not parse (2, message printed)
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else report_error(RuntimeError(code)))
    return result if isinstance(result, int) else 0


def run_command(name: str, argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Runs command `name` of [`COMMANDS`] on `argv` (default: `sys.argv[1:]`) through [`run`]."""
    global _prog
    previous, _prog = _prog, prog
    try:
        return run(load_command(name).main, argv)
    finally:
        _prog = previous


def build_main_parser() -> argparse.ArgumentParser:
    """The parser of `tfcovr` itself, for its usage and `--help`: the commands with their descriptions."""
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="TF-CoVR: composed video retrieval for temporally fine-grained videos. "
        f"Run `{PROGRAM} <command> --help` for a command's options.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="<command>", title="commands")
    for name, command in COMMANDS.items():
        subparsers.add_parser(name, help=command.help, add_help=False)
    return parser


def run_training(dataclass_types, train: Callable[..., dict], argv: Sequence[str] | None) -> dict:
    """A training command: parses `argv` into the argument dataclasses, trains, prints and returns the metrics."""
    metrics = train(*training_parser(dataclass_types).parse_args_into_dataclasses(args=argv))
    print(json.dumps(metrics, indent=2))
    return metrics


def main(argv: Sequence[str] | None = None) -> int:
    """`tfcovr <command> [options]`: runs one command of [`COMMANDS`]; `tfcovr --help` lists them. Run as an alias
    `tfcovr-<command>` (a console script), it runs that command."""
    if argv is None:
        alias = Path(sys.argv[0]).name.removesuffix(".exe")
        if alias.startswith(f"{PROGRAM}-") and alias[len(PROGRAM) + 1 :] in COMMANDS:
            return run_command(alias[len(PROGRAM) + 1 :], sys.argv[1:], prog=alias)
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_main_parser()
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help(sys.stdout if argv else sys.stderr)
        return 0 if argv else EXIT_USAGE
    name = argv[0].replace("_", "-")
    if name not in COMMANDS:
        print(f"error: unknown command {argv[0]!r}; available: {', '.join(COMMANDS)}", file=sys.stderr)
        return EXIT_USAGE
    return run_command(name, argv[1:], prog=f"{PROGRAM} {name}")


__all__ = [
    "COMMANDS",
    "Command",
    "CommandParser",
    "EXIT_ERROR",
    "EXIT_UNTRUSTED",
    "EXIT_USAGE",
    "TrainingParser",
    "command_parser",
    "console_scripts",
    "existing_path",
    "load_command",
    "main",
    "path_or_repo_id",
    "positive_ints",
    "report_error",
    "run",
    "run_command",
    "run_training",
    "training_parser",
]
