"""Serving a sandbox: its app loaded from the provider's import string, on loopback from a background thread.

app = load_sandbox(PROVIDER)            # PROVIDER.sandbox == "providers.xero.sandbox:create_app"
with ServedApp(app) as served:          # a real HTTP server on 127.0.0.1, on a free port
    httpx.get(served.base_url + "/connections")
"""

from __future__ import annotations

import importlib
import socket
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

import uvicorn

if TYPE_CHECKING:
    from providers.base import Provider


def load_sandbox(provider: Provider) -> Any:
    """The provider's sandbox, a fresh ASGI app: ``Provider.sandbox`` names its factory as ``"module:callable"``
    so that importing a provider imports neither its sandbox nor the web framework."""
    if provider.sandbox is None:
        raise ValueError(f"{provider.slug} ships no sandbox")
    module_name, _, factory_name = provider.sandbox.partition(":")
    if not module_name or not factory_name:
        raise ValueError(f"{provider.slug}: sandbox {provider.sandbox!r} is not 'module:factory'")
    factory = getattr(importlib.import_module(module_name), factory_name)
    return factory()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class ServedApp:
    """``with ServedApp(app) as served: httpx.get(served.base_url + "/...")`` -- a real HTTP server."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.app = app
        self.host = host
        self.port = port or free_port(host)
        config = uvicorn.Config(app, host=host, port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"served-app:{self.port}", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> ServedApp:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"could not start a server on {self.base_url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> ServedApp:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
