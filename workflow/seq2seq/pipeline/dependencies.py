"""Which files of the package a script or module runs, so that a rule reruns when any of them changes, and a
fingerprint of that code (what a training resume must match).

Imports are read from the source (``ast``), not executed: ``import seq2seq.x``, ``from seq2seq.x import y``,
``from . import y``, ``from ..models import z``, into modules (``x.py``) and sub-packages (``models/``, whose
``__init__.py`` runs first) at any depth. Imports inside functions count too (they run when the function does).
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path
from typing import Iterator

PACKAGE_NAME = "seq2seq"


def module_file(name: str, package_dir: Path) -> Path | None:
    """The file of the dotted module ``name`` (``seq2seq.models.gru``) in ``package_dir``: ``models/gru.py`` or
    ``models/gru/__init__.py``; None when the package has no such module (a class imported from a module)."""
    parts = name.split(".")[1:]
    base = package_dir.joinpath(*parts) if parts else package_dir
    for candidate in (base.with_suffix(".py") if parts else None, base / "__init__.py"):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def module_name(path: Path, package_dir: Path) -> str | None:
    """The dotted name of a file inside ``package_dir`` (``models/__init__.py`` -> ``seq2seq.models``); None for a
    file outside it (a Snakemake script)."""
    try:
        parts = list(path.resolve().relative_to(package_dir.resolve()).with_suffix("").parts)
    except ValueError:
        return None
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE_NAME, *parts])


def _statements(body: list[ast.AST]) -> Iterator[ast.AST]:
    """Every statement in ``body`` and, at any depth, in the statement blocks inside them (functions, classes,
    branches, loops, ``with``, ``try`` and its handlers, ``match`` cases). Imports are statements, so this finds
    them all without visiting the expressions, which are most of a module's nodes (``ast.walk`` visits 12 times
    as many in this package; the pipeline reads the imports of every stage at each Snakemake start)."""
    for node in body:  # statements, and the except handlers and match cases that hold statement blocks
        yield node
        for block in ("body", "orelse", "finalbody", "handlers", "cases"):
            yield from _statements(getattr(node, block, ()))


@functools.lru_cache(maxsize=512)
def _imported_names(source: str, filename: str, this_module: str | None, is_package: bool) -> frozenset[str]:
    """Dotted names that ``source`` imports from this package, each with the names of the sub-packages it runs
    on the way (``seq2seq.models.gru`` runs ``seq2seq.models`` first). Cached on the source text: Snakemake
    parses the workflow, and so this, once per rule and per run."""
    tree = ast.parse(source, filename=filename)
    names: set[str] = set()
    for node in _statements(tree.body):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names if alias.name.split(".")[0] == PACKAGE_NAME)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            elif this_module is None:
                continue  # a relative import outside the package: not ours
            else:
                package = this_module.split(".") if is_package else this_module.split(".")[:-1]
                base = ".".join(package[: len(package) - (node.level - 1)] + ([node.module] if node.module else []))
            if base.split(".")[0] != PACKAGE_NAME:
                continue
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
    with_parents = set()
    for name in names:
        parts = name.split(".")
        with_parents.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return frozenset(with_parents)


def _imported_files(path: Path, package_dir: Path) -> set[Path]:
    name = module_name(path, package_dir)
    names = _imported_names(path.read_text(encoding="utf-8"), str(path), name, path.name == "__init__.py")
    return {file for file in (module_file(n, package_dir) for n in names) if file is not None}


def package_modules(script: str | Path, package_dir: str | Path) -> list[str]:
    """Files of ``package_dir`` that ``script`` imports, directly or through other files of the package (sorted
    paths, each package's ``__init__.py`` included when one of its modules is), without ``script`` itself."""
    package_dir = Path(package_dir)
    script = Path(script)
    seen: set[Path] = set()
    pending = list(_imported_files(script, package_dir))
    while pending:
        file = pending.pop()
        if file not in seen:
            seen.add(file)
            pending.extend(_imported_files(file, package_dir) - seen)
    seen.discard(script)
    return sorted(str(file) for file in seen)


def source_fingerprint(module_file: str | Path, package_dir: str | Path | None = None) -> str:
    """sha256 over the source of a package module and of every package file it imports, directly or not:
    changes whenever the code that the module runs changes. ``package_dir``: the package's folder (default: the
    folder of this package)."""
    module_file = Path(module_file)
    package_dir = Path(package_dir) if package_dir is not None else Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in [str(module_file), *package_modules(module_file, package_dir)]:
        relative = Path(path).resolve().relative_to(package_dir.resolve()).as_posix()
        digest.update(relative.encode() + b"\0" + Path(path).read_bytes() + b"\0")
    return digest.hexdigest()
