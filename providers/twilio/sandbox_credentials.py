"""The demo account the Twilio sandbox ships; a module of its own so the catalog needs no sandbox."""

DEMO_ACCOUNT_SID = "AC5ef8732a3c49700934481addd5ce1659"
DEMO_AUTH_TOKEN = "2fd8e8b1a45c4c1f9a3e0b7d6c5a4f31"  # noqa: S105 -- a sandbox-only demo token
