"""Settings an operator gets wrong (a typo in QUEUE_SIZE, a negative drain deadline, a DATA_DIR
that cannot be created, PostgreSQL without DATABASE_URL) stop `python -m <system>` with one line
naming the variable and the fix, exit 2, and no traceback; before, some started a system that
did something else than asked (a NaN lease) and the others died in uvicorn's startup with a
traceback."""

from __future__ import annotations

import pytest
from autocoder_runtime import settings
from autocoder_runtime.cli import main
from autocoder_runtime.settings import ConfigError, env_int, env_seconds
from rtkit import BUILDERS, run_demo


@pytest.mark.parametrize("raw", ["abc", "0", "-3", "1e3", "1.5", "9" * 30, "11"])
def test_a_whole_number_out_of_its_range_or_not_a_number_is_refused(monkeypatch, raw):
    monkeypatch.setenv("SOME_SIZE", raw)
    with pytest.raises(
        ConfigError, match=r"SOME_SIZE='.*' cannot be used; expected a whole number from 1 to 10"
    ):
        env_int("SOME_SIZE", 5, 1, 10)


@pytest.mark.parametrize("raw", ["nan", "inf", "-1", "x", "3601"])
def test_seconds_not_finite_or_out_of_range_are_refused(monkeypatch, raw):
    monkeypatch.setenv("SOME_S", raw)
    with pytest.raises(ConfigError, match="SOME_S="):
        env_seconds("SOME_S", 10.0, 0.0, 3600.0)


def test_unset_or_empty_is_the_default_and_good_values_are_read(monkeypatch):
    monkeypatch.delenv("SOME_SIZE", raising=False)
    assert env_int("SOME_SIZE", 5, 1, 10) == 5
    monkeypatch.setenv("SOME_SIZE", " ")
    assert env_int("SOME_SIZE", 5, 1, 10) == 5
    monkeypatch.setenv("SOME_SIZE", "+10")
    assert env_int("SOME_SIZE", 5, 1, 10) == 10
    monkeypatch.setenv("DRAIN_TIMEOUT_S", "0.5")
    assert settings.drain_timeout_s() == 0.5


def run_cli(capsys, name: str, *argv: str) -> tuple[int, str]:
    """`python -m <name> argv` in this process (as a generated __main__ calls it)."""
    code = main(BUILDERS[name], list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"QUEUE_SIZE": "abc"}, "QUEUE_SIZE='abc' cannot be used; expected a whole number from 1"),
        ({"INBOX_LIMIT": "-1"}, "INBOX_LIMIT='-1' cannot be used"),
        ({"MAX_IN_FLIGHT": "1e9"}, "MAX_IN_FLIGHT='1e9' cannot be used"),
        ({"INBOX_LEASE_S": "nan"}, "INBOX_LEASE_S='nan' cannot be used; expected a number of seconds"),
        ({"DRAIN_TIMEOUT_S": "-1"}, "DRAIN_TIMEOUT_S='-1' cannot be used"),
        ({"SQLITE_SYNCHRONOUS": "OFF"}, "SQLITE_SYNCHRONOUS='OFF' is not one of FULL, NORMAL, EXTRA"),
        (
            {"DATA_DIR": "/proc/no-such-dir"},
            "cannot open the SQLite database under DATA_DIR='/proc/no-such-dir'",
        ),
    ],
)
def test_serve_with_a_setting_it_cannot_use_is_one_line_and_exit_2(data, monkeypatch, capsys, env, says):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, output = run_cli(capsys, "demo", "serve", "--port", "1")  # never reached: it fails first
    assert code == 2 and says in output and "fix:" in output, output
    assert len(output.strip().splitlines()) == 1, output


def test_the_dead_letter_commands_refuse_the_same_way(data, monkeypatch, capsys):
    monkeypatch.setenv("DATA_DIR", "/proc/no-such-dir")
    for command in ("dead-letters", "replay"):
        code, output = run_cli(capsys, "demo", command)
        assert code == 2 and "cannot open the SQLite database" in output, output


def test_a_real_process_prints_no_traceback(tmp_path):
    done = run_demo(tmp_path, "serve", QUEUE_SIZE="x")
    assert done.returncode == 2 and done.stderr.startswith("error: QUEUE_SIZE='x' cannot be used")
    assert "Traceback" not in done.stderr + done.stdout


def test_postgres_without_or_with_an_unreachable_database_url(data, monkeypatch, capsys):
    """The DSN is never printed: it may hold a password."""
    pytest.importorskip("psycopg")
    for extra, says in (
        ({}, "DATABASE_URL is not set; expected the DSN"),
        (
            {"DATABASE_URL": "postgresql://app:hunter2@127.0.0.1:1/app?connect_timeout=5"},
            "cannot open the PostgreSQL database at DATABASE_URL: OperationalError",
        ),
    ):
        for key, value in extra.items():
            monkeypatch.setenv(key, value)
        code, output = run_cli(capsys, "demo_postgres", "serve")
        assert code == 2 and says in output and "hunter2" not in output, output
