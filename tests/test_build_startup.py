"""What `autocoder build` does before doit runs its first task stays cheap and changes nothing:
doit's plugin lookups are answered from one read of the installed entry points (cli.py)."""

from __future__ import annotations

from importlib.metadata import entry_points

import doit.plugin

from autocoder import cli


def test_one_read_of_the_entry_points_answers_every_doit_lookup(monkeypatch):
    monkeypatch.setattr(doit.plugin, "entry_points_impl", doit.plugin.entry_points_impl)
    options = cli._doit_options()  # installs the one-read lookup, as `autocoder build` does
    assert doit.plugin.entry_points_impl is cli._entry_points_impl
    assert options == cli._doit_options()
    assert "-n" in options["run"] and "--reporter" in options["run"]
    lookup = doit.plugin.entry_points_impl()
    groups = set(entry_points().groups)
    assert {"console_scripts", "pytest11"} <= groups
    for group in sorted(groups | {"doit.COMMAND", "doit.BACKEND", "doit.REPORTER", "doit.LOADER"}):
        assert list(lookup(group=group)) == list(entry_points(group=group)), group
