"""Rules track every package module their script imports, directly or through other modules."""

from __future__ import annotations

from pathlib import Path

from seq2seq.dependencies import package_modules, source_fingerprint

WORKFLOW = Path(__file__).resolve().parents[1] / "workflow"


def _names(paths: list[str]) -> set[str]:
    return {Path(p).stem for p in paths}


def test_transitive_absolute_and_relative_imports(tmp_path: Path) -> None:
    package = tmp_path / "seq2seq"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from .b import thing\nimport json\n")
    (package / "b.py").write_text("from . import c\n")
    (package / "c.py").write_text("x = 1\n")
    (package / "unused.py").write_text("from .a import thing\n")
    script = tmp_path / "script.py"
    script.write_text("import sys\nif True:\n    from seq2seq.a import thing\n")
    assert _names(package_modules(script, package)) == {"__init__", "a", "b", "c"}
    (tmp_path / "plain.py").write_text("import os\n")
    assert package_modules(tmp_path / "plain.py", package) == []


def test_the_train_rule_tracks_the_model_and_its_dropout_but_not_the_plots() -> None:
    modules = _names(package_modules(WORKFLOW / "scripts" / "train.py", WORKFLOW / "seq2seq"))
    assert {"training", "model", "attention", "dropout", "batching", "checkpoint", "vocab"} <= modules
    assert "plots" not in modules and "benchmark" not in modules


def test_source_fingerprint_follows_the_imported_code_only(tmp_path: Path) -> None:
    package = tmp_path / "seq2seq"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from .b import thing\n")
    (package / "b.py").write_text("thing = 1\n")
    (package / "other.py").write_text("x = 1\n")
    first = source_fingerprint(package / "a.py")
    assert source_fingerprint(package / "a.py") == first
    (package / "other.py").write_text("x = 2\n")
    assert source_fingerprint(package / "a.py") == first
    (package / "b.py").write_text("thing = 2\n")
    assert source_fingerprint(package / "a.py") != first
