"""The `vrtx` command line: tenants, catalog, database and keys, with one-line errors and non-zero exits."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.helpers import head_revision
from vrtx_pipelines.cli.main import main
from vrtx_pipelines.config import reset_settings_cache
from vrtx_pipelines.credentials.vault import load_key_file

Runner = Callable[..., Result]
VRTX = str(Path(sys.executable).with_name("vrtx"))  # the console script a user runs


def cli_env(home: Path, db_url: str) -> dict[str, str]:
    """The environment of a user's shell: no test settings, only where the state lives."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VRTX_")}
    return {**env, "VRTX_HOME": str(home), "VRTX_DATABASE_URL": db_url}


@pytest.fixture
def run(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runner]:
    monkeypatch.setenv("VRTX_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VRTX_DATABASE_URL", db_url)
    monkeypatch.delenv("VRTX_VAULT_KEYS", raising=False)
    reset_settings_cache()

    def _run(*args: str) -> Result:
        reset_settings_cache()
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    yield _run
    reset_settings_cache()


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("db", "tenants", "integrations", "keys", "api", "dev"):
        assert command in result.output


def test_tenants_create_prints_the_token_once_and_list_shows_only_its_prefix(run: Runner) -> None:
    created = run("tenants", "create", "acme", "--name", "Acme Ltd")
    assert created.exit_code == 0
    token = created.output.split(": ")[-1].strip()
    assert token.startswith("vrtx_") and len(token) > 30
    listed = run("tenants", "list")
    assert "acme" in listed.output and "Acme Ltd" in listed.output
    assert token not in listed.output


def test_bad_input_is_one_line_on_stderr_and_a_non_zero_exit(run: Runner) -> None:
    assert run("tenants", "create", "acme").exit_code == 0
    duplicate = run("tenants", "create", "acme")
    assert duplicate.exit_code == 1
    assert duplicate.stderr.strip() == "error: tenant 'acme' already exists"
    invalid = run("tenants", "create", "Not Valid!")
    assert invalid.exit_code == 1
    assert invalid.stderr.startswith("error: a tenant id is")


def test_integrations_list_is_a_table_of_all_17_saying_what_can_be_connected(run: Runner) -> None:
    result = run("integrations", "list")
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert lines[0].split()[:3] == ["SLUG", "NAME", "CATEGORY"]
    assert len(lines) == 18
    stripe = next(line for line in lines if line.startswith("stripe"))
    sage = next(line for line in lines if line.startswith("sage"))
    assert " yes " in stripe and "not yet" in sage


def test_db_upgrade_and_downgrade(run: Runner) -> None:
    assert f"revision {head_revision()}" in run("db", "upgrade").output
    assert "revision base" in run("db", "downgrade", "--revision", "base").output
    assert f"revision {head_revision()}" in run("db", "upgrade").output


def test_keys_rotate_puts_a_new_key_first_and_keeps_secrets_readable(run: Runner, tmp_path: Path) -> None:
    assert run("keys", "rotate").exit_code == 0  # creates the development key, then rotates it
    key_file = tmp_path / "home" / "vault.keys"
    first = [k.kid for k in load_key_file(key_file)]
    rotated = run("keys", "rotate")
    assert rotated.exit_code == 0, rotated.output
    after = [k.kid for k in load_key_file(key_file)]
    assert after[1:] == first and after[0] not in first
    assert rotated.output.startswith(f"primary key {after[0]}: re-encrypted")


def test_keys_generate_prints_a_usable_key() -> None:
    from vrtx_pipelines.credentials.vault import parse_keys

    result = CliRunner().invoke(main, ["keys", "generate"])
    assert len(parse_keys(result.output.strip())) == 1


def test_a_command_prints_only_what_it_is_for_from_a_fresh_checkout(tmp_path: Path, empty_db_url: str) -> None:
    env = cli_env(tmp_path / "not-created-yet", empty_db_url)
    listed = subprocess.run([VRTX, "tenants", "list"], env=env, capture_output=True, text=True, timeout=120)
    # No alembic INFO lines, no library warnings: the table and nothing else.
    assert (listed.returncode, listed.stderr) == (0, "")
    assert listed.stdout.split() == ["TENANT", "NAME", "TOKEN", "STATE", "CREATED"]
    # This one loads Dagster, dlt and the OAuth client (Authlib used to warn about httpx on import) and runs the
    # pull, which fails for a tenant never connected: its one sentence goes below the (empty) progress bars.
    synced = subprocess.run([VRTX, "sync", "stripe", "--tenant", "demo"], env=env, capture_output=True, text=True)
    failed = "\nerror: the Stripe sync failed: Stripe is not connected for tenant demo (never connected)\n"
    assert (synced.returncode, synced.stdout, synced.stderr) == (1, "", failed)
