"""shared_server.prestart launches the path tests' server early only once every module it
would serve is generated: a component test that runs while a generator is still pending (a
`doit -n 2` build from scratch) leaves the launch to a later test task."""

from __future__ import annotations

import uuid
from pathlib import Path

from autocoder.validate import shared_server


def test_no_early_server_while_a_module_it_would_serve_is_missing(tmp_path: Path):
    components = tmp_path / "generated" / "src" / "shop" / "components"
    components.mkdir(parents=True)
    (components / "a.py").write_text("")
    build = uuid.uuid4().hex
    asked: list[int] = []

    def wanted() -> list[str]:
        asked.append(1)
        return ["a", "b"]

    shared_server.prestart(tmp_path, "shop", build, wanted)
    shared_server.prestart(tmp_path, "shop", build, wanted)
    state = tmp_path / shared_server.STATE
    assert asked == [1, 1]  # asked again: not taken for "nothing wanted"
    assert not (state / "state.json").exists() and not (state / "starts.log").exists()
