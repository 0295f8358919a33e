"""Microsoft Graph v1.0 client for one connection (one user's mailbox): the kit's ``ApiClient``.

API docs: https://learn.microsoft.com/en-us/graph/api/overview; errors: https://learn.microsoft.com/en-us/graph/errors
(``{"error": {"code", "message", "innerError"}}``, which the kit's default ``error_words`` reads); throttling:
https://learn.microsoft.com/en-us/graph/throttling (429 with ``Retry-After``, which the kit honours).
- Paths are the signed-in user's (``me``): a delegated token reaches only its own mailbox.
"""

from __future__ import annotations

from providers.kit.client import ApiClient

GRAPH_BASE = "https://graph.microsoft.com/v1.0"


class GraphClient(ApiClient):
    name = "Microsoft Graph"
    api_base_url = GRAPH_BASE
