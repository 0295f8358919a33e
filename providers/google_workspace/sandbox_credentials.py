"""The Google sandbox's demo app, mailbox and people: `vrtx dev` connects with these, tests and the bench use them."""

from __future__ import annotations

DEMO_CLIENT_ID = "vrtx-demo.apps.googleusercontent.com"
DEMO_CLIENT_SECRET = "GOCSPX-vrtx-demo-sandbox-secret"  # noqa: S105 -- the sandbox's own demo app
DEMO_APP_NAME = "VRTX CRM (sandbox)"
DEMO_MAILBOX = "alex.morgan@vrtx-demo.example"
DEMO_PROJECT = "vrtx-demo"
DEMO_TOPIC = f"projects/{DEMO_PROJECT}/topics/gmail-push"
DEMO_PUSH_SERVICE_ACCOUNT = f"gmail-push@{DEMO_PROJECT}.iam.gserviceaccount.com"
DEMO_SUBSCRIPTION = f"projects/{DEMO_PROJECT}/subscriptions/vrtx-gmail-push"
# The audience the demo push subscription names in its tokens (Pub/Sub's default is the endpoint URL).
DEMO_PUSH_AUDIENCE = "https://vrtx-demo.example/api/v1/webhooks/google_workspace"

# The people the demo mailbox writes with: the CRM's demo contacts (name, address as the CRM holds it).
DEMO_CONTACTS: tuple[tuple[str, str], ...] = (
    ("Olivia Smith", "olivia.smith@northwind.example"),
    ("Liam Johnson", "liam.johnson@contoso.example"),
    ("Emma Williams", "emma.williams@gmail.com"),
    ("Noah Brown", "noah.brown@fabrikam.example"),
    ("Ava Jones", "ava.jones@tailspin.example"),
    ("Oliver Garcia", "oliver.garcia@gmail.com"),
    ("Sophia Miller", "sophia.miller@adventure-works.example"),
    ("Elijah Davis", "elijah.davis@litware.example"),
    ("Isabella Rodriguez", "isabella.rodriguez@proseware.example"),
    ("James Martinez", "james.martinez@wingtip.example"),
    ("Mia Hernandez", "mia.hernandez@gmail.com"),
    ("Lucas Lopez", "lucas.lopez@woodgrove.example"),
    ("Charlotte Gonzalez", "charlotte.gonzalez@fourthcoffee.example"),
    ("Benjamin Wilson", "benjamin.wilson@alpineski.example"),
    ("Amelia Anderson", "amelia.anderson@blueyonder.example"),
    ("Henry Thomas", "henry.thomas@coho.example"),
    ("Harper Taylor", "harper.taylor@lucerne.example"),
    ("Theodore Moore", "theodore.moore@margies.example"),
    ("Evelyn Jackson", "evelyn.jackson@gmail.com"),
    ("Jack Martin", "jack.martin@relecloud.example"),
)
# How some of them really write: the same mailboxes under other spellings (case, +tags, Gmail's ignored dots).
ALIAS_SPELLINGS: dict[str, str] = {
    "emma.williams@gmail.com": "Emma.Williams+crm@GMAIL.com",
    "oliver.garcia@gmail.com": "olivergarcia@googlemail.com",
    "liam.johnson@contoso.example": "Liam.Johnson@Contoso.example",
    "mia.hernandez@gmail.com": "m.i.a.hernandez@gmail.com",
}
