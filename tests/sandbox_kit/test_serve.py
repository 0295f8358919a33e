"""Loading a provider's sandbox from its import string, serving it on loopback, and what importing a provider costs."""

from __future__ import annotations

import dataclasses
import pkgutil
import subprocess
import sys

import httpx
import pytest

import providers
from providers.sandbox_kit.serve import ServedApp, free_port, load_sandbox
from providers.stripe import PROVIDER as STRIPE
from providers.xero import PROVIDER as XERO

PROVIDER_PACKAGES = sorted(
    name for _, name, is_package in pkgutil.iter_modules(providers.__path__) if is_package and name[0] != "_"
)
_IMPORT_CHECK = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(f"providers.{name}")
    loaded = [m for m in ("fastapi", "starlette", f"providers.{name}.sandbox") if m in sys.modules]
    if loaded:
        sys.exit(f"importing providers.{name} imported {', '.join(loaded)}")
"""


def test_importing_a_provider_imports_neither_its_sandbox_nor_the_web_framework() -> None:
    providers_only = [name for name in PROVIDER_PACKAGES if name != "sandbox_kit"]
    assert {"xero", "stripe", "twilio", "mailchimp"} <= set(providers_only)
    # One interpreter, one provider at a time: the first that drags FastAPI (or its sandbox) in is named.
    done = subprocess.run([sys.executable, "-c", _IMPORT_CHECK, *providers_only], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_load_sandbox_builds_a_fresh_app_from_the_providers_import_string() -> None:
    assert XERO.sandbox == "providers.xero.sandbox:create_app"
    first, second = load_sandbox(XERO), load_sandbox(XERO)
    assert first is not second and first.state.xero is not second.state.xero
    with ServedApp(load_sandbox(STRIPE)) as served:
        assert httpx.get(f"{served.base_url}/v1/account").status_code == 401  # Stripe's answer to no key


@pytest.mark.parametrize("sandbox", [None, "providers.xero.sandbox", ":create_app"])
def test_load_sandbox_refuses_a_provider_without_a_usable_import_string(sandbox: str | None) -> None:
    with pytest.raises(ValueError, match="xero"):
        load_sandbox(dataclasses.replace(XERO, sandbox=sandbox))


def test_served_app_answers_on_the_port_it_was_given_and_stops() -> None:
    port = free_port()

    async def hello(scope: dict[str, object], receive: object, send: object) -> None:
        assert callable(send)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"hello"})

    with ServedApp(hello, port=port) as served:
        assert served.base_url == f"http://127.0.0.1:{port}"
        assert httpx.get(served.base_url).text == "hello"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}", timeout=2)
