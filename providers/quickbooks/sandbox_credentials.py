"""The demo app, user and company the QuickBooks sandbox ships, so `vrtx dev` connects with no Intuit account.

A module of its own: the provider's catalog entry names these without importing the sandbox.
"""

DEMO_CLIENT_ID = "ABvrtxSandboxDemoClient0QuickBooks0000000000000000"
DEMO_CLIENT_SECRET = "vrtx-sandbox-demo-secret-qbo-7Rf2kL9mQ4xW8zT1"  # noqa: S105 -- a sandbox-only demo app
DEMO_APP_NAME = "VRTX Integrations"
DEMO_USER_EMAIL = "demo.user@vrtx.example"
DEMO_COMPANY = "Sandbox Company_US_1"
