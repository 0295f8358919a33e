"""The Microsoft 365 sandbox's demo app, organisation and mailbox: `vrtx dev` connects with these, tests use them."""

from __future__ import annotations

# An app registration as Entra ID names it: the application (client) id is a GUID, secrets carry a "~".
DEMO_CLIENT_ID = "5f0c7a3e-1b2d-4c6e-9a8b-7d3f2e1c0b9a"
DEMO_CLIENT_SECRET = "vrtx~demo.Sandbox-Secret_8Q"  # noqa: S105 -- the sandbox's own demo app
DEMO_APP_NAME = "VRTX CRM (sandbox)"
# The demo organisation (a Microsoft Entra tenant) and its one user's mailbox.
DEMO_TENANT_ID = "7c1e4f2a-9b3d-4e8f-a6c5-2d1b0e9f8a7c"
DEMO_TENANT_DOMAIN = "vrtxdemo.onmicrosoft.com"
DEMO_DISPLAY_NAME = "Jordan Lee"
# Graph answers `mail` as the mailbox was created (mixed case); VRTX keeps it lower-cased as the external id.
DEMO_MAILBOX = "Jordan.Lee@vrtx-demo.example"
DEMO_USER_PRINCIPAL_NAME = f"jordan.lee@{DEMO_TENANT_DOMAIN}"
