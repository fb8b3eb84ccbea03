"""The package's layers (README, "Architecture"): the library never imports the programs built on it (the commands,
the demo, the web app), and the models, processors, ingest path, index and pipeline import none of the data,
training, conversion or metric code. Read from every `import` statement of the package, without importing it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "modeling_tfcovr"

PROGRAMS = {"commands", "demo", "app"}
"""Top-level parts of the package that are programs: only programs may import them."""

CORE = {
    "configuration_tfcovr", "modeling_tfcovr", "loss_tfcovr", "modeling_zero_shot", "video_io",
    "video_processing_tfcovr", "processing_tfcovr", "tokenization_openai_clip", "tokenization_utils",
    "text_normalization", "video_embedding", "gallery_store", "searchers", "retrieval_index", "pipeline_tfcovr",
}  # fmt: skip
"""The modelling path (what `save_pretrained` copies as remote code): models, processors, ingest, index, pipeline."""

CORE_MAY_IMPORT = CORE | {"errors", "io_utils", "eval_mode"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_parts(path: Path) -> set[str]:
    """The top-level parts of the package (`modeling_tfcovr.<part>`) that `path` imports, absolutely or relatively."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    parts: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [module] if module.count(".") >= 1 else [f"{module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            continue
        parts.update(target.split(".")[1] for target in targets if target.startswith("modeling_tfcovr."))
    return parts


MODULES = sorted(PACKAGE.rglob("*.py"))


def own_part(path: Path) -> str:
    return module_name(path).split(".")[1] if module_name(path).count(".") else ""


def test_the_scan_sees_relative_and_absolute_imports(tmp_path):
    """The import reader itself, on the shapes the package uses."""
    assert imported_parts(PACKAGE / "searchers.py") == {"gallery_store", "io_utils"}
    assert "commands" in imported_parts(PACKAGE / "commands" / "__main__.py")
    assert {"modeling_tfcovr", "pipeline_tfcovr"} <= imported_parts(PACKAGE / "app.py")


@pytest.mark.parametrize("path", [p for p in MODULES if own_part(p) not in PROGRAMS], ids=module_name)
def test_the_library_imports_no_program(path):
    assert not imported_parts(path) & PROGRAMS, f"{module_name(path)} imports {sorted(imported_parts(path) & PROGRAMS)}"


@pytest.mark.parametrize("path", [p for p in MODULES if own_part(p) in CORE], ids=module_name)
def test_the_modelling_path_imports_only_itself(path):
    outside = imported_parts(path) - CORE_MAY_IMPORT
    assert not outside, f"{module_name(path)} imports {sorted(outside)} (data, training or programs)"
