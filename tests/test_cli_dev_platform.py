"""`vrtx` commands from a second shell find the running `vrtx dev` platform's sandboxes by themselves, and a
provider that cannot be reached is one line on stderr, not a traceback (the real console script, in a subprocess).

The whole `vrtx dev` round trip is in tests/test_dev.py; here a stand-in process holds the recorded pid."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from providers.sandbox_kit.serve import ServedApp, free_port
from providers.xero.sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, XeroSandbox
from tests.helpers import make_tenant
from tests.xero.conftest import (  # the Xero sandbox fixtures, for tests outside tests/xero
    base_urls,  # noqa: F401
    connect_xero,
    oauth_clients,  # noqa: F401
    xero,  # noqa: F401
)
from vrtx_pipelines.cli.devstate import DevPlatform, apply_to_environment, remove_state, state_path, write_state
from vrtx_pipelines.config import Settings
from vrtx_pipelines.platform import prepare_database

VRTX = str(Path(sys.executable).with_name("vrtx"))
PROGRESS_BAR = re.compile(r"\d+/\d+ \[|it/s\]|\?it/s")
XERO_APP = {"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}


@pytest.fixture
def stand_in() -> Iterator[subprocess.Popen[bytes]]:
    """A live process whose command line names vrtx, as `vrtx dev`'s does."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "vrtx-dev-stand-in"])
    yield process
    process.kill()
    process.wait()


def shell_env(settings: Settings) -> dict[str, str]:
    """A second shell in the same checkout: it knows where the state is, nothing about sandboxes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VRTX_")}
    state = {"VRTX_HOME": str(settings.home), "VRTX_DATABASE_URL": settings.sqlalchemy_url}
    return {**env, **state, "VRTX_VAULT_KEYS": settings.vault_keys or ""}


def platform(pid: int, xero_url: str) -> DevPlatform:
    return DevPlatform(
        pid=pid,
        api_url="http://127.0.0.1:18123",
        dagster_url="http://127.0.0.1:13123",
        provider_base_urls={"xero": xero_url},
        oauth_clients={"xero": XERO_APP},
    )


def test_the_running_platform_fills_in_only_what_the_environment_leaves_unset(
    tmp_path: Path, stand_in: subprocess.Popen[bytes]
) -> None:
    write_state(tmp_path, platform(stand_in.pid, "http://127.0.0.1:19999"))
    assert oct(state_path(tmp_path).stat().st_mode & 0o777) == "0o600"
    environ: dict[str, str] = {"VRTX_OAUTH_CLIENTS": json.dumps({"stripe": {"client_id": "mine"}})}
    assert apply_to_environment(tmp_path, environ) is not None
    assert json.loads(environ["VRTX_PROVIDER_BASE_URLS"]) == {"xero": "http://127.0.0.1:19999"}
    assert json.loads(environ["VRTX_OAUTH_CLIENTS"]) == {"xero": XERO_APP, "stripe": {"client_id": "mine"}}
    assert (environ["VRTX_PUBLIC_URL"], environ["VRTX_DAGSTER_URL"]) == (
        "http://127.0.0.1:18123",
        "http://127.0.0.1:13123",
    )
    # Pointed elsewhere on purpose: no sandbox and no sandbox app is slipped in.
    explicit = {"VRTX_PROVIDER_BASE_URLS": "{}", "VRTX_PUBLIC_URL": "https://crm.example"}
    apply_to_environment(tmp_path, explicit)
    assert explicit["VRTX_PROVIDER_BASE_URLS"] == "{}" and "VRTX_OAUTH_CLIENTS" not in explicit
    assert explicit["VRTX_PUBLIC_URL"] == "https://crm.example"


def test_a_file_left_by_a_platform_that_died_is_ignored_and_only_its_owner_removes_it(
    tmp_path: Path, stand_in: subprocess.Popen[bytes]
) -> None:
    write_state(tmp_path, platform(stand_in.pid, "http://127.0.0.1:19999"))
    remove_state(tmp_path, stand_in.pid + 1)  # another platform's exit leaves this one's file alone
    assert state_path(tmp_path).exists()
    stand_in.kill()
    stand_in.wait()
    environ: dict[str, str] = {}
    assert apply_to_environment(tmp_path, environ) is None and environ == {}
    # A pid reused by some other process of ours is not the platform either.
    write_state(tmp_path, platform(os.getpid(), "http://127.0.0.1:19999"))
    if b"vrtx" not in Path(f"/proc/{os.getpid()}/cmdline").read_bytes():
        assert apply_to_environment(tmp_path, environ) is None
    state_path(tmp_path).write_text("{not json")
    assert apply_to_environment(tmp_path, environ) is None


def test_vrtx_sync_from_a_second_shell_pulls_from_the_platforms_sandbox(
    settings: Settings,
    xero: tuple[XeroSandbox, ServedApp, str],  # noqa: F811
    stand_in: subprocess.Popen[bytes],
) -> None:
    prepare_database(settings)
    make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    write_state(settings.home, platform(stand_in.pid, xero[1].base_url))
    synced = subprocess.run(
        [VRTX, "sync", "xero", "--tenant", "acme", "--entity", "invoices"],
        env=shell_env(settings),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert synced.returncode == 0, synced.stderr
    table = synced.stdout.strip().splitlines()
    assert table[0].split()[:3] == ["ENTITY", "ROWS", "LOADED"]
    assert table[1].split()[:2] == ["invoices", "120"]
    assert "Traceback" not in synced.stderr and " DEBUG " not in synced.stderr


def test_a_provider_that_cannot_be_reached_is_one_line_on_stderr_and_a_non_zero_exit(
    settings: Settings,
    xero: tuple[XeroSandbox, ServedApp, str],  # noqa: F811
) -> None:
    prepare_database(settings)
    make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    env = {**shell_env(settings), "VRTX_PROVIDER_BASE_URLS": json.dumps({"xero": f"http://127.0.0.1:{free_port()}"})}
    env["VRTX_OAUTH_CLIENTS"] = json.dumps({"xero": XERO_APP})
    synced = subprocess.run(
        [VRTX, "sync", "xero", "--tenant", "acme", "--entity", "contacts"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert synced.returncode == 1 and synced.stdout == ""
    # Apart from dlt's progress bars (carriage returns, no newlines), exactly one line.
    lines = [line for line in synced.stderr.splitlines() if line.strip() and not PROGRESS_BAR.search(line)]
    assert len(lines) == 1, synced.stderr
    assert lines[0].startswith("error: the Xero sync failed: Could not reach Xero (GET /Contacts): ConnectError")
