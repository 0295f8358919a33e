"""The demo accounts, keys and Connect app the Stripe sandbox ships; a module of its own so the catalog needs no
sandbox."""

DEMO_ACCOUNT_ID = "acct_1VrtxDemo00000001"  # the demo platform: its keys connect with a key, its app through OAuth
DEMO_SECRET_KEY = "sk_test_51VrtxDemo00000001SandboxKey4242"  # noqa: S105 -- a sandbox-only demo key
DEMO_RESTRICTED_KEY = "rk_test_51VrtxDemo00000001SandboxRestricted7"
DEMO_CONNECT_CLIENT_ID = "ca_VrtxDemoConnect0000000000000001"  # the platform's Connect application
DEMO_CONNECTED_ACCOUNT_ID = "acct_1VrtxHarbour000002"  # an account the demo user connects through OAuth
DEMO_USER_EMAIL = "owner@demo-coffee.example"
