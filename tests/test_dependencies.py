"""Rules track every package module their stage runs, directly or through other modules and sub-packages."""

from __future__ import annotations

import ast
from pathlib import Path

from seq2seq.pipeline.dependencies import _imported_names, module_file, module_name, package_modules, source_fingerprint
from seq2seq.stages import STAGES

WORKFLOW = Path(__file__).resolve().parents[1] / "workflow"
PACKAGE = WORKFLOW / "seq2seq"


def _names(paths: list[str]) -> set[str]:
    return {Path(p).stem for p in paths}


def _relative(paths) -> set[str]:
    """Package files as paths relative to the package (``models/gru.py``)."""
    return {Path(p).resolve().relative_to(PACKAGE.resolve()).as_posix() for p in paths}


def stage_sources(stage: str) -> set[str]:
    """What workflow/rules/common.smk's package_sources(stage) gives a rule as code inputs: the stage's module,
    what it imports, and what the one job script (scripts/stage.py) imports."""
    stage_file = PACKAGE / f"{STAGES[stage].module}.py"
    runner = WORKFLOW / "scripts" / "stage.py"
    return _relative({str(stage_file), *package_modules(stage_file, PACKAGE), *package_modules(runner, PACKAGE)})


def _package(folder: Path, modules: dict[str, str]) -> Path:
    """A fake ``seq2seq`` package in ``folder``: an empty __init__.py and the given module sources."""
    package = folder / "seq2seq"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, source in modules.items():
        (package / f"{name}.py").write_text(source)
    return package


def test_transitive_absolute_and_relative_imports(tmp_path: Path) -> None:
    package = _package(tmp_path, {"a": "from .b import thing\nimport json\n", "b": "from . import c\n",
                                  "c": "x = 1\n", "unused": "from .a import thing\n"})
    script = tmp_path / "script.py"
    script.write_text("import sys\nif True:\n    from seq2seq.a import thing\n")
    assert _names(package_modules(script, package)) == {"__init__", "a", "b", "c"}
    (tmp_path / "plain.py").write_text("import os\n")
    assert package_modules(tmp_path / "plain.py", package) == []


def test_the_train_rule_tracks_the_model_and_its_settings_but_not_the_plots() -> None:
    modules = stage_sources("train")
    assert {"training.py", "models/__init__.py", "models/gru.py", "models/gru_config.py", "models/base.py",
            "attention.py", "batching.py", "checkpoint.py", "vocab.py", "settings.py"} <= modules
    assert not modules & {"plots.py", "figures.py", "evaluation.py", "summary.py", "cli.py"}


def test_editing_the_model_reruns_train_and_evaluate_but_not_the_data_stages() -> None:
    """The scan follows sub-packages: models/gru.py is code of the stages that build a model, and only theirs."""
    for stage in ("train", "evaluate", "figures"):
        assert {"models/gru.py", "attention.py"} <= stage_sources(stage), stage
    for stage in ("download", "prepare", "vocab", "explorer", "summary"):
        assert not any(name.startswith("models/") or name == "attention.py" for name in stage_sources(stage)), stage


def test_imports_in_every_kind_of_block_are_found(tmp_path: Path) -> None:
    """Imports inside functions, classes, branches, loops, ``with``, ``try`` (body, handlers, else, finally) and
    ``match`` cases run when their block does: each counts (the scan reads statements, not expressions)."""
    blocks = {
        "in_function": "def f():\n    from .{m} import x\n",
        "in_method": "class C:\n    def f(self):\n        if True:\n            import seq2seq.{m}\n",
        "in_else": "if False:\n    pass\nelse:\n    from . import {m}\n",
        "in_loop": "for _ in ():\n    pass\nelse:\n    while False:\n        from .{m} import x\n",
        "in_with": "import contextlib\nwith contextlib.suppress(Exception):\n    from .{m} import x\n",
        "in_handler": "try:\n    pass\nexcept ImportError:\n    from .{m} import x\n",
        "in_try_else": "try:\n    pass\nexcept ImportError:\n    pass\nelse:\n    from .{m} import x\n",
        "in_finally": "try:\n    pass\nfinally:\n    from .{m} import x\n",
        "in_match": "match 1:\n    case 1:\n        from .{m} import x\n    case _:\n        pass\n",
        "in_async": "async def f():\n    async with g():\n        from .{m} import x\n",
    }
    modules = {f"{name}_target": "x = 1\n" for name in blocks}
    modules.update({name: source.format(m=f"{name}_target") for name, source in blocks.items()})
    package = _package(tmp_path, modules)
    script = tmp_path / "script.py"
    script.write_text("".join(f"import seq2seq.{name}\n" for name in blocks))
    assert _names(package_modules(script, package)) == {"__init__", *modules}
    for name in blocks:
        source = (package / f"{name}.py").read_text()
        assert f"seq2seq.{name}_target" in _imported_names(source, name, f"seq2seq.{name}", False), name


def test_sub_package_imports_at_any_depth(tmp_path: Path) -> None:
    """``from .sub.x import y``, ``from ..z import w`` and ``import seq2seq.sub.x``: each sub-package's
    __init__.py comes with its modules."""
    package = _package(tmp_path, {"top": "from .sub.x import y\n", "z": "w = 1\n", "unused": "v = 1\n"})
    (package / "sub").mkdir()
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "x.py").write_text("from ..z import w\ny = w\n")
    script = tmp_path / "script.py"
    script.write_text("import seq2seq.top\n")
    found = {Path(p).relative_to(package).as_posix() for p in package_modules(script, package)}
    assert found == {"__init__.py", "top.py", "sub/__init__.py", "sub/x.py", "z.py"}


def test_source_fingerprint_follows_the_imported_code_only(tmp_path: Path) -> None:
    package = _package(tmp_path, {"a": "from .b import thing\n", "b": "thing = 1\n", "other": "x = 1\n"})
    first = source_fingerprint(package / "a.py", package)
    assert source_fingerprint(package / "a.py", package) == first
    (package / "other.py").write_text("x = 2\n")
    assert source_fingerprint(package / "a.py", package) == first
    (package / "b.py").write_text("thing = 2\n")
    assert source_fingerprint(package / "a.py", package) != first


def _runs_on_import(nodes: list[ast.stmt]) -> list[ast.stmt]:
    """The import statements among ``nodes`` that run when the module is imported: at module level, in ``try``
    and ``if`` blocks, but not under ``if TYPE_CHECKING:`` (type hints only) nor inside functions (they run when
    the function does: the GRU config builds its model so, to stay torch-free)."""
    found: list[ast.stmt] = []
    for node in nodes:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If):
            if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                found += _runs_on_import(node.body)
            found += _runs_on_import(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, *(h.body for h in node.handlers), node.orelse, node.finalbody):
                found += _runs_on_import(block)
        elif isinstance(node, (ast.With, ast.ClassDef)):
            found += _runs_on_import(node.body)
    return found


def _module_level_imports(path: Path) -> set[str]:
    """Package files (relative to the package) that importing ``path`` imports, without the packages it is part
    of (their __init__.py runs before it, whatever it imports)."""
    imports = ast.Module(body=_runs_on_import(ast.parse(path.read_text(encoding="utf-8")).body), type_ignores=[])
    name = module_name(path, PACKAGE)
    names = _imported_names(ast.unparse(imports), str(path), name, path.name == "__init__.py")
    own = path.resolve().relative_to(PACKAGE.resolve())
    containing = {(parent / "__init__.py").as_posix() for parent in own.parents}
    files = _relative(file for file in (module_file(n, PACKAGE) for n in names) if file is not None)
    return files - containing - {own.as_posix()}


def test_the_package_has_no_import_circle() -> None:
    """Modules import each other one way (plots draws, figures and translate_command use it; checkpoint owns the
    format training writes; the models import the attention variants, never the other way), so the dependency
    graph the imports show is the real one. Imports for type hints and inside functions do not count."""
    package = PACKAGE
    graph = {path.resolve().relative_to(package.resolve()).with_suffix("").as_posix():
             {name.removesuffix(".py") for name in _module_level_imports(path)} for path in package.rglob("*.py")}
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for imported in sorted(graph.get(module, ())):
            assert state.get(imported) != "open", "import circle: " + " -> ".join([*trail, module, imported])
            if imported not in state:
                visit(imported, [*trail, module])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    assert {"plots", "translate", "training", "checkpoint", "models/gru", "attention"} <= set(graph)
    assert "translate" not in graph["plots"] and "training" not in graph["checkpoint"]
    assert "attention" in graph["models/gru"] and not any(name.startswith("models") for name in graph["attention"])
