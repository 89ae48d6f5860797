"""Which package modules a script uses, so that a rule reruns when any of them changes."""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

PACKAGE_NAME = "seq2seq"


def _imported_modules(path: Path, package_dir: Path) -> set[str]:
    """Names of this package's modules imported by the Python file ``path`` (absolute or relative imports)."""
    inside_package = path.resolve().parent == package_dir.resolve()
    names = _imported_names(path.read_text(encoding="utf-8"), str(path), inside_package)
    return {name for name in names if (package_dir / f"{name}.py").is_file()}


@functools.lru_cache(maxsize=256)
def _imported_names(source: str, filename: str, inside_package: bool) -> frozenset[str]:
    """Candidate module names of this package that ``source`` imports. Cached on the source text: Snakemake
    parses the workflow, and so this, once per rule and per run (parsing every module each time took ~1 s)."""
    tree = ast.parse(source, filename=filename)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == PACKAGE_NAME and len(parts) > 1:
                    names.add(parts[1])
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module and node.module.split(".")[0] == PACKAGE_NAME:
                parts = node.module.split(".")
                names.update([parts[1]] if len(parts) > 1 else [alias.name for alias in node.names])
            elif node.level == 1 and inside_package:
                names.update([node.module.split(".")[0]] if node.module else [alias.name for alias in node.names])
    return frozenset(names)


def package_modules(script: str | Path, package_dir: str | Path) -> list[str]:
    """Files of ``package_dir`` that ``script`` imports, directly or through other modules of the package
    (sorted paths, the package's ``__init__.py`` included when anything is)."""
    package_dir = Path(package_dir)
    seen: set[str] = set()
    pending = list(_imported_modules(Path(script), package_dir))
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending.extend(_imported_modules(package_dir / f"{name}.py", package_dir) - seen)
    files = [package_dir / f"{name}.py" for name in sorted(seen)]
    if files and (package_dir / "__init__.py").is_file():
        files.insert(0, package_dir / "__init__.py")
    return [str(f) for f in files]


def source_fingerprint(module_file: str | Path) -> str:
    """sha256 over the source of a package module and of every package module it imports, directly or not:
    changes whenever the code that the module runs changes."""
    module_file = Path(module_file)
    digest = hashlib.sha256()
    for path in [str(module_file), *package_modules(module_file, module_file.parent)]:
        digest.update(Path(path).name.encode() + b"\0" + Path(path).read_bytes() + b"\0")
    return digest.hexdigest()
