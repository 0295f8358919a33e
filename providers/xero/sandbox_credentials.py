"""The demo app, user and organisation the Xero sandbox ships, so `vrtx dev` connects with no Xero account.

A module of its own: the provider's catalog entry names these without importing the sandbox.
"""

DEMO_CLIENT_ID = "8D1F2C3B4A5E6F708192A3B4C5D6E7F8"
DEMO_CLIENT_SECRET = "vrtx-sandbox-demo-secret-Xk3vQ9pL2mN7rT5wZ8yB4cD6"  # noqa: S105 -- a sandbox-only demo app
DEMO_APP_NAME = "VRTX Integrations"
DEMO_USER_EMAIL = "demo.user@vrtx.example"
DEMO_ORGANISATION = "Demo Company (Global)"
