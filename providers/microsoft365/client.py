"""Microsoft Graph v1.0 client for one connection (one user's mailbox): the kit's ``ApiClient``.

API docs: https://learn.microsoft.com/en-us/graph/api/overview; errors: https://learn.microsoft.com/en-us/graph/errors
(``{"error": {"code", "message", "innerError"}}``, which the kit's default ``error_words`` reads); throttling:
https://learn.microsoft.com/en-us/graph/throttling (429 and 503 with ``Retry-After``, which the kit honours; Outlook
serves 4 calls per mailbox at once, the governor's cap: ``PullSpec.max_concurrent_calls``).
- Paths are the signed-in user's (``me``): a delegated token reaches only its own mailbox.
- Every call asks for immutable ids (an Outlook item keeps its id when it moves folder: delta removals and pushes
  name the same message) and event times in UTC.
"""

from __future__ import annotations

from providers.kit.client import ApiClient

GRAPH_BASE = "https://graph.microsoft.com/v1.0"
# https://learn.microsoft.com/en-us/graph/outlook-immutable-id, https://learn.microsoft.com/en-us/graph/api/
# user-list-calendarview#request-headers (Prefer: outlook.timezone)
PREFER = 'IdType="ImmutableId", outlook.timezone="UTC"'


class GraphClient(ApiClient):
    name = "Microsoft Graph"
    api_base_url = GRAPH_BASE
    default_headers = {"Accept": "application/json", "Prefer": PREFER}


def prefer(*preferences: str) -> dict[str, str]:
    """A call's ``Prefer`` header: the client's preferences and ``preferences`` (a call's headers replace the
    client's, so they are sent together)."""
    return {"Prefer": ", ".join((PREFER, *preferences))}
