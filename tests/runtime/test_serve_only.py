"""SERVE_ONLY: a system runs only the components named, the bindings between them, their
ingress routes and store reads; the others' modules are not even imported (ComponentModules)."""

from __future__ import annotations

import sys

import pytest
from autocoder_runtime.component import Component
from autocoder_runtime.settings import ConfigError
from autocoder_runtime.system import ComponentModules
from rtkit import AUTH, demo, running, wait_until
from test_settings import run_cli


def test_only_the_named_components_run_and_messages_stop_at_the_cut(data, monkeypatch):
    monkeypatch.setenv("SERVE_ONLY", "api, work,items")
    system = demo()
    assert sorted(system.components) == ["api", "items", "work"]
    assert {(b.source, b.target) for b in system.spec.bindings} == {("api", "work"), ("work", "items")}
    assert [s.component for s in system.spec.stores] == ["items"]
    assert system.spec.order == ("api", "work", "items")
    with running(system) as client:
        accepted = client.post("/items", json={"id": "a"}, headers=AUTH)
        assert accepted.status_code == 202, accepted.text
        wait_until(lambda: client.get("/items/a", headers=AUTH).status_code == 200, what="items holds a")
        assert client.get("/bigs/a", headers=AUTH).status_code == 404  # not served
        metrics = client.get("/metrics", headers=AUTH).text
        assert 'component="items"' in metrics and 'component="bigs"' not in metrics


def test_unset_serves_everything(data):
    assert sorted(demo().components) == ["api", "bigs", "items", "work"]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("api,nope", "SERVE_ONLY names 'nope', not a component of demo; fix:"),
        ("api;work", "SERVE_ONLY='api;work' cannot be used; expected component names separated by commas"),
    ],
)
def test_an_unknown_or_malformed_name_is_one_line_and_exit_2(data, monkeypatch, capsys, value, says):
    monkeypatch.setenv("SERVE_ONLY", value)
    with pytest.raises(ConfigError):
        demo()
    code, output = run_cli(capsys, "demo", "serve", "--port", "1")
    assert code == 2 and says in output and "fix:" in output, output
    assert len(output.strip().splitlines()) == 1, output


def test_component_modules_import_each_module_when_asked_and_check_what_it_holds(tmp_path, monkeypatch):
    package = tmp_path / "lazy_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "good.py").write_text(
        "from autocoder_runtime.kinds import Sink\n\nclass Good(Sink):\n    pass\n\nCOMPONENT = Good\n"
    )
    (package / "broken.py").write_text("raise RuntimeError('imported')\n")
    (package / "wrong.py").write_text("COMPONENT = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    modules = ComponentModules("lazy_pkg", ["good", "broken", "wrong"])
    assert list(modules) == ["good", "broken", "wrong"] and len(modules) == 3
    assert "lazy_pkg.broken" not in sys.modules  # listed, never imported
    good = modules["good"]
    assert issubclass(good, Component) and modules["good"] is good
    with pytest.raises(KeyError):
        modules["other"]
    with pytest.raises(TypeError, match="lazy_pkg.wrong.COMPONENT is not a Component class"):
        modules["wrong"]
    with pytest.raises(RuntimeError, match="imported"):
        modules["broken"]
