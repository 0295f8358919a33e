"""The demo account the Mailchimp sandbox ships; a module of its own so the catalog needs no sandbox."""

DEMO_DATACENTER = "us21"
DEMO_API_KEY = f"5f3c0a8e9b1d4c7a2e6f8b0d1a3c5e7f-{DEMO_DATACENTER}"
DEMO_ACCOUNT_ID = "8d3a3db4d97663a9074efcc16"
