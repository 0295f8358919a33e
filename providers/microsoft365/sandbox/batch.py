"""Graph's JSON batching (https://learn.microsoft.com/en-us/graph/json-batching): ``POST /v1.0/$batch`` with up to
20 requests, each answered as if called alone (same gate: authentication, scopes, throttling, faults), with the
batch's own ``Authorization``; the answer lists each request's id, status, headers and body.

Deviations: requests run one after another, in order (Graph may run them in any order, Outlook at most 4 at once);
``dependsOn`` is accepted but changes nothing, since the order is kept anyway; a batch without a token has each of
its requests refused (Graph refuses the batch itself).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response

from providers.microsoft365.sandbox.errors import MAX_REQUEST, TOO_LARGE, GraphError

MAX_REQUESTS = 20
METHODS = frozenset({"GET", "POST", "PATCH", "PUT", "DELETE"})


def _invalid(message: str) -> GraphError:
    return GraphError(400, "BadRequest", message)


def _requests(body: Any) -> list[dict[str, Any]]:
    found = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(found, list) or not found:
        raise _invalid("Invalid batch payload format.")
    if len(found) > MAX_REQUESTS:
        raise _invalid(f"The number of batch requests exceeds the limit of {MAX_REQUESTS}.")
    ids: set[str] = set()
    for item in found:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
            raise _invalid("Each batch request needs an id.")
        if item["id"] in ids:
            raise _invalid(f"Batch request ids must be unique: '{item['id']}' is repeated.")
        ids.add(item["id"])
        url, method = item.get("url"), str(item.get("method") or "").upper()
        if method not in METHODS or not isinstance(url, str) or "://" in url or not url.strip("/"):
            raise _invalid(f"Batch request '{item['id']}' needs a method and a relative url.")
    return found


def register_batch_route(app: FastAPI, error: Callable[[Request, GraphError], Response], json_type: str) -> None:
    # https://learn.microsoft.com/en-us/graph/json-batching
    @app.post("/v1.0/$batch")
    async def batch(request: Request) -> Response:
        raw = await request.body()
        if len(raw) > MAX_REQUEST:
            return error(request, TOO_LARGE)
        try:
            items = _requests(json.loads(raw) if raw.strip() else None)
        except ValueError:
            return error(request, _invalid("Invalid batch payload format."))
        except GraphError as refused:
            return error(request, refused)
        outer = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "client-request-id")}
        answers = []
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=str(request.base_url)) as inner:
            for item in items:
                headers = {**{str(k): str(v) for k, v in (item.get("headers") or {}).items()}, **outer}
                body = item.get("body")
                answer = await inner.request(
                    str(item["method"]).upper(), "/v1.0/" + str(item["url"]).lstrip("/"), headers=headers,
                    content=json.dumps(body).encode() if body is not None else None,
                )  # fmt: skip
                kept = {
                    k: v
                    for k, v in answer.headers.items()
                    if k.lower() in ("content-type", "retry-after", "location", "preference-applied")
                }
                parsed = answer.json() if answer.content else None
                answers.append({"id": item["id"], "status": answer.status_code, "headers": kept, "body": parsed})
        payload = json.dumps({"responses": answers}).encode()
        return Response(payload, status_code=200, media_type=json_type)
