"""Rules track every package module their script imports, directly or through other modules."""

from __future__ import annotations

from pathlib import Path

from seq2seq.dependencies import package_modules, source_fingerprint

WORKFLOW = Path(__file__).resolve().parents[1] / "workflow"


def _names(paths: list[str]) -> set[str]:
    return {Path(p).stem for p in paths}


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
    modules = _names(package_modules(WORKFLOW / "scripts" / "train.py", WORKFLOW / "seq2seq"))
    assert {"training", "model", "attention", "batching", "checkpoint", "vocab", "settings"} <= modules
    assert not modules & {"plots", "figures", "evaluation", "summary", "cli"}


def test_source_fingerprint_follows_the_imported_code_only(tmp_path: Path) -> None:
    package = _package(tmp_path, {"a": "from .b import thing\n", "b": "thing = 1\n", "other": "x = 1\n"})
    first = source_fingerprint(package / "a.py")
    assert source_fingerprint(package / "a.py") == first
    (package / "other.py").write_text("x = 2\n")
    assert source_fingerprint(package / "a.py") == first
    (package / "b.py").write_text("thing = 2\n")
    assert source_fingerprint(package / "a.py") != first


def test_the_package_has_no_import_circle() -> None:
    """Modules import each other one way (plots draws, figures and translate_command use it; checkpoint owns the
    format training writes), so the dependency graph the imports show is the real one."""
    from seq2seq.dependencies import _imported_modules

    package = WORKFLOW / "seq2seq"
    graph = {path.stem: _imported_modules(path, package) - {"__init__"} for path in package.glob("*.py")}
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
    assert {"plots", "translate", "training", "checkpoint"} <= set(graph)
    assert "translate" not in graph["plots"] and "training" not in graph["checkpoint"]
