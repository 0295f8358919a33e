"""Stripe's wire format, as the sandbox reads and writes it: ids, form-encoded parameters with bracket nesting,
``expand[]``, list objects and the error object.

- Ids are ``<prefix>_<base62>``: the kit's ``IdCodec`` UUID of the record's index, written in base 62, so an id
  finds its record without a lookup table and ids of different accounts or objects never collide.
- Parameters (query or ``application/x-www-form-urlencoded`` body) nest with brackets: ``metadata[order]=7``,
  ``line_items[0][price]=price_1``, ``expand[]=customer`` (the official SDKs send indexed lists, ``expand[0]``;
  curl users send ``[]``); ``decode_params`` turns them into dicts and lists.
- Errors (https://docs.stripe.com/api/errors): ``{"error": {"type", "code", "param", "message", "doc_url",
  "request_log_url"}}`` with the HTTP status Stripe uses for each.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from providers.sandbox_kit.data import IdCodec, stable_key

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_DIGIT = {ch: n for n, ch in enumerate(_BASE62)}
_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")
API_VERSION = "2026-10-28.endive"  # what stripe-python 16.1.0 pins (reference section 3, "Auth / tenancy")
VERSION_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")


class StripeIds:
    """``<prefix>_<22 base-62 digits>`` for index ``n`` of one object type of one account, and back."""

    def __init__(self, seed: int, account: str, prefix: str) -> None:
        self.prefix = prefix
        self._codec = IdCodec(stable_key("stripe-sandbox-ids", seed, account, prefix))

    def encode(self, index: int) -> str:
        number, digits = uuid.UUID(self._codec.encode(index)).int, []
        while number:
            number, digit = divmod(number, 62)
            digits.append(_BASE62[digit])
        return f"{self.prefix}_{''.join(reversed(digits)):0>22}"

    def decode(self, value: str) -> int | None:
        head, _, tail = value.partition("_")
        if head != self.prefix or not tail or len(tail) > 22 or any(ch not in _DIGIT for ch in tail):
            return None
        number = 0
        for ch in tail:
            number = number * 62 + _DIGIT[ch]
        if number >= 1 << 128:
            return None
        return self._codec.decode(str(uuid.UUID(int=number)))


class ParamError(ValueError):
    """A parameter Stripe would refuse; ``param`` is its name as sent."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def decode_params(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Bracket-nested parameters as nested dicts; ``[]`` and numeric indices make lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        found = _KEY.match(key)
        if found is None:
            raise ParamError(f"Invalid parameter name: {key}", key)
        path = [found.group(1), *_PART.findall(found.group(2))]
        _place(root, path, value, key)
    return {name: _listed(value) for name, value in root.items()}


def _place(node: dict[str, Any], path: list[str], value: str, key: str) -> None:
    head, rest = path[0], path[1:]
    if not rest:
        if isinstance(node.get(head), dict):
            raise ParamError(f"Invalid {key}: must be an object", key)
        node[head] = value
        return
    child = node.setdefault(head, {})
    if not isinstance(child, dict):
        raise ParamError(f"Invalid {key}: cannot be both a value and an object", key)
    if rest[0] == "":  # a[]=x: appended, in order
        rest = [str(sum(1 for k in child if k.startswith("\0"))), *rest[1:]]
        rest[0] = "\0" + rest[0].zfill(6)
    _place(child, rest, value, key)


def _listed(value: Any) -> Any:
    """Objects whose keys are all indices (``a[0]``, ``a[]``) become lists, in index order."""
    if not isinstance(value, dict):
        return value
    items = {k: _listed(v) for k, v in value.items()}
    if items and all(k.lstrip("\0").isdigit() for k in items):
        return [items[k] for k in sorted(items, key=lambda k: int(k.lstrip("\0")))]
    return items


def form(body: bytes) -> dict[str, Any]:
    return decode_params(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


def query(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    return decode_params(pairs)


def expansions(params: Mapping[str, Any]) -> list[str]:
    value = params.get("expand", [])
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def integer(params: Mapping[str, Any], name: str, *, low: int | None = None, high: int | None = None) -> int | None:
    """An integer parameter, None when absent; Stripe's words when it is not one or out of range."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or not re.fullmatch(r"-?\d+", raw):
        raise ParamError(f"Invalid integer: {raw}", name)
    number = int(raw)
    if low is not None and number < low:
        raise ParamError(f"This value must be greater than or equal to {low}.", name)
    if high is not None and number > high:
        raise ParamError(f"This value must be less than or equal to {high}.", name)
    return number


def boolean(params: Mapping[str, Any], name: str) -> bool | None:
    raw = params.get(name)
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise ParamError(f"Invalid boolean: {raw}", name)
    return bool(raw == "true")


def metadata(current: Mapping[str, Any], sent: Any, param: str = "metadata") -> dict[str, Any]:
    """Metadata merged as Stripe merges it: keys set, ``key=""`` unsets one, ``metadata=""`` clears all."""
    if sent is None:
        return dict(current)
    if sent == "":
        return {}
    if not isinstance(sent, dict):
        raise ParamError("Invalid object", param)
    merged = dict(current)
    for key, value in sent.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = str(value)
    return merged


@dataclass(frozen=True)
class StripeError(Exception):
    """An error answer: HTTP ``status`` and the error object's fields."""

    status: int
    type: str
    message: str
    code: str | None = None
    param: str | None = None
    extra: Mapping[str, Any] | None = None

    def body(self, request_id: str) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.type}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            error["param"] = self.param
        error["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}?t=0"
        return {"error": {**error, **(self.extra or {})}}


def missing(kind: str, object_id: str, param: str = "id") -> StripeError:
    return StripeError(404, "invalid_request_error", f"No such {kind}: '{object_id}'", "resource_missing", param)


def invalid(message: str, param: str | None = None, code: str | None = None) -> StripeError:
    return StripeError(400, "invalid_request_error", message, code or ("parameter_invalid" if param else None), param)


def state_error(message: str) -> StripeError:
    return StripeError(400, "invalid_request_error", message, "invoice_not_editable")


def list_object(url: str, data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}
