"""What a running ``vrtx dev`` serves, written where every other ``vrtx`` command of the same ``VRTX_HOME`` reads it.

Only ``vrtx dev``'s own processes were told the sandboxes' URLs, so ``vrtx sync`` from a second shell called the
real providers. Now ``vrtx dev`` records its URLs (and the sandboxes' demo OAuth apps, which are public fixtures
of the sandboxes, not secrets) in ``$VRTX_HOME/dev-platform.json`` while it runs and removes the file when it
stops; a command fills in whatever its environment does not say from it. A file left by a platform that died
(its pid is gone) is ignored.
"""

from __future__ import annotations

import json
import os
from collections.abc import MutableMapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE_FILE = "dev-platform.json"
BASE_URLS_ENV = "VRTX_PROVIDER_BASE_URLS"
OAUTH_CLIENTS_ENV = "VRTX_OAUTH_CLIENTS"


@dataclass(frozen=True)
class DevPlatform:
    pid: int
    api_url: str
    dagster_url: str
    provider_base_urls: dict[str, str] = field(default_factory=dict)
    # Only the sandboxes' demo apps: a real app configured in VRTX_OAUTH_CLIENTS is never written here.
    oauth_clients: dict[str, dict[str, str]] = field(default_factory=dict)


def state_path(home: Path) -> Path:
    return home / STATE_FILE


def write_state(home: Path, platform: DevPlatform) -> Path:
    """Write the file atomically (readers never see half of it), readable by this user only."""
    path = state_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{platform.pid}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(asdict(platform), out, indent=2)
    temporary.replace(path)
    return path


def remove_state(home: Path, pid: int) -> None:
    """Remove the file if it is still this platform's (a newer one may have replaced it)."""
    current = _load(state_path(home))
    if current is not None and current.pid == pid:
        state_path(home).unlink(missing_ok=True)


def running_platform(home: Path) -> DevPlatform | None:
    """The platform the file describes, if its process is still alive."""
    platform = _load(state_path(home))
    return platform if platform is not None and _alive(platform.pid) else None


def apply_to_environment(home: Path, environ: MutableMapping[str, str]) -> DevPlatform | None:
    """Fill in, from the running platform, the settings ``environ`` leaves unset; returns the platform used.

    An explicit VRTX_PROVIDER_BASE_URLS means the caller points elsewhere: then no sandbox (and no sandbox app)
    is taken from the file. Configured OAuth apps win over the sandboxes' demo apps."""
    platform = running_platform(home)
    if platform is None:
        return None
    if BASE_URLS_ENV not in environ:
        environ[BASE_URLS_ENV] = json.dumps(platform.provider_base_urls)
        configured = _json_object(environ.get(OAUTH_CLIENTS_ENV, ""))
        environ[OAUTH_CLIENTS_ENV] = json.dumps({**platform.oauth_clients, **configured})
    environ.setdefault("VRTX_PUBLIC_URL", platform.api_url)
    environ.setdefault("VRTX_DAGSTER_URL", platform.dagster_url)
    return platform


def _load(path: Path) -> DevPlatform | None:
    try:
        data = json.loads(path.read_text())
        return DevPlatform(
            pid=int(data["pid"]),
            api_url=str(data["api_url"]),
            dagster_url=str(data["dagster_url"]),
            provider_base_urls={str(k): str(v) for k, v in data.get("provider_base_urls", {}).items()},
            oauth_clients={
                str(slug): {str(k): str(v) for k, v in app.items()}
                for slug, app in data.get("oauth_clients", {}).items()
            },
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # absent, or not a file this module wrote: as if no platform ran


def _alive(pid: int) -> bool:
    """Whether ``pid`` is still a ``vrtx`` process of this user (a pid can be reused after a crash)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or now another user's process
        return False
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (macOS): the pid is all there is to go on
    # Empty while the process is still being exec'd (or a zombie): nothing to tell it by, so trust the pid.
    return not command or b"vrtx" in command


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text) if text.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
