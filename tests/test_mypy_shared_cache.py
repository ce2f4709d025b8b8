"""The type tier's machine-wide mypy cache (validate/types.py): the first project publishes its
cache, a later project starts from a copy, and a module of the same name with other content is
still checked (mypy validates what it reuses)."""

from __future__ import annotations

from pathlib import Path

from autocoder.validate.types import shared_cache, typecheck

PYPROJECT = "[tool.mypy]\ndisallow_untyped_defs = true\n"


def _project(root: Path, body: str) -> Path:
    src = root / "src"
    (src / "mini").mkdir(parents=True)
    (src / "tests").mkdir()
    (src / "pyproject.toml").write_text(PYPROJECT)
    (src / "mini" / "__init__.py").write_text("")
    (src / "mini" / "logic.py").write_text(body)
    (src / "tests" / "__init__.py").write_text("")
    return src


def test_the_first_project_publishes_and_the_next_reuses_without_missing_its_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOCODER_MYPY_CACHE", str(tmp_path / "shared"))
    shared = shared_cache()
    assert shared is not None and shared.parent.parent == tmp_path / "shared"
    good = _project(tmp_path / "a", "import json\n\n\ndef f(x: int) -> str:\n    return json.dumps(x)\n")
    assert typecheck(good, "mini", tmp_path / "a" / "cache") == []
    assert shared.is_dir()  # published
    bad = _project(tmp_path / "b", "import json\n\n\ndef f(x: int) -> int:\n    return json.dumps(x)\n")
    findings = typecheck(bad, "mini", tmp_path / "b" / "cache")
    assert (tmp_path / "b" / "cache").is_dir()
    where = [(f.path, f.line, f.rule) for f in findings]
    assert where == [("generated/src/mini/logic.py", 5, "return-value")]


def test_off_means_off(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOCODER_MYPY_CACHE", "off")
    assert shared_cache() is None
