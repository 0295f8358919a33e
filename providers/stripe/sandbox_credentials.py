"""The demo account and keys the Stripe sandbox ships; a module of its own so the catalog needs no sandbox."""

DEMO_ACCOUNT_ID = "acct_1VrtxDemo00000001"
DEMO_SECRET_KEY = "sk_test_51VrtxDemo00000001SandboxKey4242"  # noqa: S105 -- a sandbox-only demo key
DEMO_RESTRICTED_KEY = "rk_test_51VrtxDemo00000001SandboxRestricted7"
