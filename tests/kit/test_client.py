"""ApiClient's rules and hooks against a scripted API over real loopback HTTP (time faked: nothing waits)."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import Request, Response
from fastapi.responses import JSONResponse

from providers.base import RateLimit
from providers.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from providers.kit.client import GIVE_UP_FAST, ApiClient, Call, ErrorWords, Retry, equal_jitter, header_int
from providers.kit.governor import DayBudgetExhausted, RateGovernor
from providers.kit.paginators import PageNumber
from providers.kit.redaction import redact
from tests.helpers import FakeTime
from tests.kit.apis import Served

Answer = Callable[[Request], Response]


def answer(status: int = 200, body: Any = None, headers: dict[str, str] | None = None) -> Answer:
    return lambda request: JSONResponse({} if body is None else body, status_code=status, headers=headers)


def scripted(served: Served, *answers: Answer) -> None:
    """The answers ``/scripted/...`` gives, in order; the last one repeats."""
    served.api.script = list(answers)


def calls(served: Served) -> int:
    return len([s for s in served.api.seen if s.path.startswith("/scripted")])


# --- hooks -------------------------------------------------------------------------------------------------------


class TenantClient(ApiClient):
    name = "Tenanted"
    tenant_noun = "organisation"

    def auth_headers(self, token: str | None) -> dict[str, str]:
        assert self.tenant_id is not None
        return {"Authorization": f"Bearer {token}", "tenant-id": self.tenant_id}


def test_every_call_sends_the_hooks_auth_headers_inside_a_governor_slot(served: Served) -> None:
    scripted(served, answer(body={"ok": True}))
    governor = RateGovernor((RateLimit(2, 60, "tenant"),), clock=served.time.clock, sleep=served.time.sleep)
    client = served.client(TenantClient, access_token=lambda: "tok-1", tenant_id="org-9", governor=governor)

    for _ in range(3):
        assert client.get("scripted/things") == {"ok": True}

    seen = served.api.seen[-1]
    assert seen.headers["authorization"] == "Bearer tok-1" and seen.headers["tenant-id"] == "org-9"
    assert seen.headers["accept"] == "application/json"
    assert governor.stats.calls == 3 and served.time.sleeps == [60.0]  # the third call waited for the window


def test_a_provider_with_tenants_refuses_a_call_before_one_is_chosen(served: Served) -> None:
    client = served.client(TenantClient, access_token=lambda: "tok")

    with pytest.raises(ProviderRejected, match="no organisation chosen"):
        client.get("scripted/x")

    assert calls(served) == 0


def test_one_refresh_on_401_then_the_call_is_replayed_and_the_new_token_kept(served: Served) -> None:
    scripted(served, lambda r: answer(200 if r.headers["authorization"] == "Bearer new" else 401)(r))
    refreshed: list[str] = []
    client = served.client(access_token=lambda: "old", on_unauthorized=lambda: refreshed.append("new") or "new")

    client.get("scripted/a")
    client.get("scripted/b")  # access_token() still says "old": the refreshed token is used, no second refresh

    assert refreshed == ["new"] and client.token_refreshes == 1
    assert [s.headers["authorization"] for s in served.api.seen] == ["Bearer old", "Bearer new", "Bearer new"]


def test_a_second_401_after_the_refresh_is_an_auth_error(served: Served) -> None:
    scripted(served, answer(401, {"title": "Unauthorized", "detail": "AuthenticationUnsuccessful"}))
    client = served.client(access_token=lambda: "bad", on_unauthorized=lambda: "still-bad")

    with pytest.raises(ProviderAuthError) as caught:
        client.get("scripted/a")

    assert caught.value.status == 401 and client.token_refreshes == 1 and calls(served) == 2
    assert caught.value.message == "Unauthorized: AuthenticationUnsuccessful"


def test_a_refusal_after_the_refresh_is_told_to_the_core_once_and_a_first_401_is_not(served: Served) -> None:
    told: list[str] = []
    scripted(served, answer(401), answer(200, {"ok": True}))
    client = served.client(access_token=lambda: "old", on_unauthorized=lambda: "new", on_refused=told.append)
    assert client.get("scripted/a") == {"ok": True}  # an expired token: refreshed, and nothing to tell
    assert told == []

    scripted(served, answer(401, {"title": "Unauthorized", "detail": "AuthenticationUnsuccessful"}))
    for path in ("scripted/b", "scripted/c"):
        with pytest.raises(ProviderAuthError):
            client.get(path)

    assert told == ["Unauthorized: AuthenticationUnsuccessful"]


def test_a_refusal_with_no_token_to_refresh_is_final_and_told_to_the_core(served: Served) -> None:
    """A key provider that refreshes nothing (Stripe): the first refusal is the last, and the core hears of it."""
    told: list[str] = []
    scripted(served, answer(401, {"error": {"message": "Invalid API Key provided"}}))
    client = served.client(on_refused=told.append)

    with pytest.raises(ProviderAuthError, match="Invalid API Key"):
        client.get("scripted/a")

    assert calls(served) == 1 and client.token_refreshes == 0 and told == ["Invalid API Key provided"]


class ForbiddenMeansRefused(ApiClient):
    def refuses_credentials(self, response: httpx.Response) -> bool:
        return response.status_code in (401, 403)


def test_a_provider_can_count_403_as_refused_credentials_even_for_a_write(served: Served) -> None:
    """Xero answers 403 for an organisation the grant no longer reaches: refresh, replay, then an auth error."""
    told: list[str] = []
    scripted(served, answer(403, {"Title": "Forbidden", "Detail": "AuthenticationUnsuccessful"}))
    client = served.client(
        ForbiddenMeansRefused, access_token=lambda: "tok", on_unauthorized=lambda: "fresh", on_refused=told.append
    )

    with pytest.raises(ProviderAuthError) as caught:
        client.write("PUT", "scripted/x", {"a": 1}, idempotency_key="k1")

    assert caught.value.status == 403 and client.token_refreshes == 1 and calls(served) == 2
    assert told == ["Forbidden: AuthenticationUnsuccessful"]


def test_a_429_storm_is_waited_out_through_the_governor_and_completes(served: Served) -> None:
    storm = answer(429, {"message": "slow down"}, {"Retry-After": "3"})
    scripted(served, storm, storm, storm, storm, storm, answer(body={"done": 1}))
    governor = RateGovernor(clock=served.time.clock, sleep=served.time.sleep)
    client = served.client(governor=governor)

    assert client.get("scripted/a") == {"done": 1}

    assert client.rate_limited == 5 == governor.stats.rate_limited and governor.stats.retry_after_waited_s == 15
    assert sum(served.time.sleeps) >= 15 and client.api_calls == 6


def test_endless_429s_give_up_after_the_retry_budget(served: Served) -> None:
    scripted(served, answer(429, headers={"Retry-After": "1"}))
    client = served.client(retry=Retry(max_rate_limit_waits=3))

    with pytest.raises(ProviderRateLimited, match="kept answering 429") as caught:
        client.get("scripted/a")

    assert client.rate_limited == 3 and calls(served) == 4 and caught.value.retry_after == 1


def test_a_429_asking_for_longer_than_the_patience_is_raised_with_its_retry_after(served: Served) -> None:
    scripted(served, answer(429, headers={"Retry-After": "3600"}))
    client = served.client()

    with pytest.raises(ProviderRateLimited, match="asked to wait 3600 s") as caught:
        client.get("scripted/a")

    assert caught.value.retry_after == 3600 and calls(served) == 1 and served.time.sleeps == []


class DayLimited(ApiClient):
    name = "Daily"

    def observe_limits(self, response: httpx.Response) -> None:
        self.governor.observe(day_remaining=header_int(response, "X-Day-Remaining"))
        if response.status_code == 429 and response.headers.get("X-Problem") == "day":
            raise DayBudgetExhausted("the day is spent")


def test_a_429_that_says_the_day_is_spent_is_raised_at_once(served: Served) -> None:
    scripted(served, answer(429, headers={"Retry-After": "7200", "X-Problem": "day"}))

    with pytest.raises(DayBudgetExhausted) as caught:
        served.client(DayLimited).get("scripted/a")

    assert caught.value.retry_after == 7200 and calls(served) == 1


def test_the_answer_that_spends_the_day_is_kept_and_the_next_call_refused_unsent(served: Served) -> None:
    scripted(served, answer(body={"last": True}, headers={"X-Day-Remaining": "0"}))
    client = served.client(DayLimited)

    assert client.get("scripted/a") == {"last": True}
    with pytest.raises(DayBudgetExhausted, match="Daily's daily API limit for this connection is spent"):
        client.get("scripted/b")

    assert calls(served) == 1


def test_5xx_reads_are_retried_with_jittered_exponential_backoff(served: Served) -> None:
    scripted(served, answer(503), answer(503), answer(503), answer(body={"ok": 1}))
    client = served.client(jitter=equal_jitter)

    assert client.get("scripted/a") == {"ok": 1}

    assert client.retries == 3 and len(served.time.sleeps) == 3
    for sleep, nominal in zip(served.time.sleeps, (0.5, 1.0, 2.0), strict=True):
        assert nominal / 2 <= sleep <= nominal


def test_equal_jitter_stays_between_half_and_the_whole_delay_and_varies() -> None:
    samples = [equal_jitter(8.0) for _ in range(2000)]

    assert all(4.0 <= s <= 8.0 for s in samples)
    assert len(set(samples)) > 1000 and min(samples) < 4.5 and max(samples) > 7.5


def test_persistent_5xx_becomes_unavailable_after_max_attempts(served: Served) -> None:
    scripted(served, answer(502, {"message": "bad gateway"}))
    client = served.client()

    with pytest.raises(ProviderUnavailable, match="bad gateway") as caught:
        client.get("scripted/a")

    assert caught.value.status == 502 and calls(served) == 4 and served.time.sleeps == [0.5, 1.0, 2.0]


class Told(ApiClient):
    """A provider that says itself whether a failed answer is worth retrying (Stripe-Should-Retry)."""

    def should_retry(self, response: httpx.Response) -> bool | None:
        told = response.headers.get("Should-Retry")
        return None if told is None else told == "true"


def test_a_provider_that_says_whether_to_retry_is_believed(served: Served) -> None:
    scripted(served, answer(409, {"message": "lock timeout"}, {"Should-Retry": "true"}), answer(body={"ok": 1}))
    assert served.client(Told).get("scripted/a") == {"ok": 1} and calls(served) == 2
    served.api.seen.clear()
    scripted(served, answer(503, {"message": "do not"}, {"Should-Retry": "false"}), answer(body={"ok": 1}))
    with pytest.raises(ProviderUnavailable, match="do not"):
        served.client(Told).get("scripted/b")
    assert calls(served) == 1


def test_a_429_the_provider_says_not_to_retry_is_raised_at_once_with_its_retry_after(served: Served) -> None:
    limited = answer(429, {"message": "too many"}, {"Should-Retry": "false", "Retry-After": "2"})
    scripted(served, limited, answer(body={"ok": 1}))

    with pytest.raises(ProviderRateLimited, match="too many") as caught:
        served.client(Told).get("scripted/a")

    assert caught.value.retry_after == 2 and calls(served) == 1 and served.time.sleeps == []


def test_a_write_without_an_idempotency_key_is_never_retried_on_5xx(served: Served) -> None:
    scripted(served, answer(503), answer(body={"created": 1}))
    client = served.client()

    with pytest.raises(ProviderUnavailable):
        client.write("POST", "scripted/things", {"name": "x"})

    assert calls(served) == 1 and client.retries == 0 and served.time.sleeps == []


def test_a_write_under_an_idempotency_key_is_retried_and_carries_the_key(served: Served) -> None:
    scripted(served, answer(503), answer(500), answer(201, {"created": 1}))
    client = served.client()

    assert client.write("PUT", "scripted/things", {"amount": Decimal("1.50")}, idempotency_key="k-1") == {"created": 1}

    sent = [s for s in served.api.seen if s.path == "/scripted/things"]
    assert [s.headers["idempotency-key"] for s in sent] == ["k-1"] * 3
    assert json.loads(sent[0].body) == {"amount": "1.50"} and sent[0].headers["content-type"] == "application/json"


class RequestIdClient(ApiClient):
    def with_idempotency_key(self, call: Call, key: str) -> None:
        call.params["requestid"] = key  # QuickBooks' place for it


def test_the_idempotency_key_goes_where_the_hook_puts_it(served: Served) -> None:
    scripted(served, answer(500), answer(body={"ok": 1}))

    served.client(RequestIdClient).write("POST", "scripted/invoice", {}, idempotency_key="req-7")

    assert [s.params for s in served.api.seen] == [{"requestid": "req-7"}] * 2
    assert "idempotency-key" not in served.api.seen[0].headers


def test_a_transport_failure_of_a_keyless_write_is_raised_at_once_and_a_reads_retried() -> None:
    attempts: list[str] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(request.method)
        raise httpx.ConnectError("connection refused", request=request)

    fake = FakeTime()
    client = ApiClient(
        httpx.Client(transport=httpx.MockTransport(refuse)),
        base_url="https://api.example.com/v1",
        governor=RateGovernor(clock=fake.clock, sleep=fake.sleep),
        sleep=fake.sleep,
        jitter=lambda delay: delay,
    )
    with pytest.raises(ProviderUnavailable, match="ConnectError"):
        client.write("POST", "things", {})
    with pytest.raises(ProviderUnavailable, match=r"Could not reach The provider \(GET /things\)"):
        client.get("things")

    assert attempts == ["POST"] + ["GET"] * 4 and fake.sleeps == [0.5, 1.0, 2.0]


@pytest.mark.parametrize(
    ("status", "write", "error"),
    [
        (400, False, ProviderError),
        (400, True, ProviderRejected),
        (403, False, ProviderAuthError),
        (403, True, ProviderRejected),
        (404, False, ProviderError),
        (409, True, ProviderRejected),
        (422, True, ProviderRejected),
        (401, True, ProviderAuthError),
    ],
)
def test_refusals_become_typed_errors_in_the_providers_own_words(
    served: Served, status: int, write: bool, error: type[ProviderError]
) -> None:
    body = {"error": {"type": "invalid_request_error", "message": "No such customer: 'cus_1'"}}
    scripted(served, answer(status, body))
    client = served.client()

    with pytest.raises(ProviderError) as caught:
        client.write("POST", "scripted/x", {}) if write else client.get("scripted/x")

    assert type(caught.value) is error and caught.value.status == status
    assert caught.value.message == "No such customer: 'cus_1'"
    assert caught.value.provider_code == "invalid_request_error"
    assert calls(served) == 1


class FieldErrors(ApiClient):
    def error_words(self, body: Any) -> ErrorWords:
        details = tuple(e["message"] for e in body.get("errors", []))
        return ErrorWords("; ".join(details), body.get("category"), details)


def test_a_hook_reads_field_level_messages_into_the_rejection(served: Served) -> None:
    body = {"category": "VALIDATION_ERROR", "errors": [{"message": "email is invalid"}, {"message": "name missing"}]}
    scripted(served, answer(400, body))

    with pytest.raises(ProviderRejected) as caught:
        served.client(FieldErrors).write("POST", "scripted/contacts", {})

    assert caught.value.details == ["email is invalid", "name missing"]
    assert caught.value.message == "email is invalid; name missing" and caught.value.provider_code == "VALIDATION_ERROR"


def test_a_short_text_body_is_the_message_and_a_long_one_is_not(served: Served) -> None:
    scripted(served, lambda r: Response("Organisation is not subscribed", status_code=400))
    with pytest.raises(ProviderRejected, match=r"^Organisation is not subscribed$"):
        served.client().write("POST", "scripted/x", {})

    scripted(served, lambda r: Response("<html>" + "x" * 500, status_code=400))
    with pytest.raises(ProviderError, match=r"^The provider answered HTTP 400 to GET /scripted/x\.$"):
        served.client().get("scripted/x")


class FaultIn200(ApiClient):
    def error_in_answer(self, body: Any, call: Call) -> ProviderError | None:
        fault = body.get("Fault") if isinstance(body, dict) else None
        if not fault:
            return None
        return ProviderRejected(fault["Error"][0]["Detail"], status=200, provider_code=fault["Error"][0]["code"])


def test_an_error_inside_an_http_200_is_raised_and_not_retried(served: Served) -> None:
    fault = {"Fault": {"Error": [{"Message": "Duplicate", "Detail": "Duplicate Name Exists Error", "code": "6240"}]}}
    scripted(served, answer(200, fault))

    with pytest.raises(ProviderRejected, match="Duplicate Name Exists Error") as caught:
        served.client(FaultIn200).write("POST", "scripted/customer", {}, idempotency_key="k")

    assert caught.value.provider_code == "6240" and calls(served) == 1


class ExactMoney(ApiClient):
    decodes = 0

    def decode(self, response: httpx.Response) -> Any:
        ExactMoney.decodes += 1
        return json.loads(response.content, parse_float=Decimal)


def test_each_answer_is_decoded_once_by_the_decode_hook(served: Served) -> None:
    served.api.add(7)
    ExactMoney.decodes = 0
    client = served.client(ExactMoney)

    pages = list(client.paginate("numbered", "Items", paginator=PageNumber(3, page_count="pagination.pageCount")))

    assert [len(p) for p in pages] == [3, 3, 1] and ExactMoney.decodes == 3
    assert pages[0][0]["amount"] == Decimal("1.5") and type(pages[0][0]["amount"]) is Decimal


def test_a_2xx_that_is_not_json_is_an_error(served: Served) -> None:
    scripted(served, lambda r: Response("<Response/>", status_code=200))

    with pytest.raises(ProviderError, match="answered GET /scripted/x without a JSON object"):
        served.client().get("scripted/x")


class KeyInUrl(ApiClient):
    name = "Keyed"

    def auth_headers(self, token: str | None) -> dict[str, str]:
        return {"X-Api-Key": self.credentials["api_key"]}


def test_secrets_never_reach_an_error_message(served: Served) -> None:
    secret = "sk_live_4f9a8b7c6d5e"
    echo = {"message": f"Key {secret} refused for https://api.example.com/v1/x?api_key={secret}&page=2"}
    scripted(served, answer(400, echo))
    client = served.client(KeyInUrl, credentials={"api_key": secret})

    with pytest.raises(ProviderError) as caught:
        client.get("scripted/x")

    assert secret not in caught.value.message and secret not in str(caught.value)
    assert caught.value.message == ("Key [redacted] refused for https://api.example.com/v1/x?api_key=[redacted]&page=2")


def test_httpx_words_are_redacted_too() -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect to {request.url}", request=request)

    client = ApiClient(
        httpx.Client(transport=httpx.MockTransport(fail)),
        base_url="https://user:hunter22@api.example.com/v1",
        governor=RateGovernor(),
        access_token=lambda: "eyJhbGciOi.token.value",
        retry=Retry(max_attempts=1),
    )

    with pytest.raises(ProviderUnavailable) as caught:
        client.get("things", params={"access_token": "eyJhbGciOi.token.value", "q": "1"})

    assert "hunter22" not in caught.value.message and "eyJhbGciOi" not in caught.value.message
    assert "access_token=[redacted]&q=1" in caught.value.message


def test_redact_masks_given_secrets_url_credentials_and_authorization_values() -> None:
    text = "Bearer abcdefghijkl at https://bob:pw1234@h.example/x?key=zzz9&sig=abc&page=2 with s3cr3t-value"

    assert redact(text, ["s3cr3t-value", "ab", None]) == (
        "Bearer [redacted] at https://[redacted]@h.example/x?key=[redacted]&sig=[redacted]&page=2 with [redacted]"
    )


def test_a_next_page_on_another_host_is_never_called(served: Served) -> None:
    client = served.client(access_token=lambda: "tok")

    with pytest.raises(ProviderError, match="another host"):
        client.get("https://evil.example/steal")

    assert served.api.seen == []


def test_giving_up_fast_means_one_retry_and_no_429_waits(served: Served) -> None:
    scripted(served, answer(503))
    fast = served.client(retry=GIVE_UP_FAST)
    with pytest.raises(ProviderUnavailable):
        fast.get("scripted/a")
    assert calls(served) == 2 and served.time.sleeps == [0.2]

    scripted(served, answer(429, headers={"Retry-After": "1"}))
    with pytest.raises(ProviderRateLimited):
        fast.get("scripted/b")
    assert calls(served) == 3 and fast.rate_limited == 0


def test_stats_hold_every_counter_and_pages_per_stream(served: Served) -> None:
    served.api.add(5)
    scripted(served, answer(503), answer(body={}))
    client = served.client()

    list(client.paginate("numbered", "Items", paginator=PageNumber(2), stream="items"))
    client.get("scripted/a")

    assert client.stats == {
        "api_calls": 5,
        "pages": {"items": 3},
        "rate_limited": 0,
        "retries": 1,
        "token_refreshes": 0,
        "full_listings": {},
    }


def test_default_params_go_with_every_call_and_the_tenant_fills_the_base_url(served: Served) -> None:
    class Versioned(ApiClient):
        default_params = {"minorversion": "75"}

    scripted(served, answer(body={}))
    client = served.client(Versioned, base_url=f"{served.base_url}/scripted/company/{{tenant_id}}", tenant_id="12 3")

    client.get("thing", params={"a": "1"})

    (seen,) = served.api.asked("/scripted/company/12 3/thing")
    assert seen.params == {"minorversion": "75", "a": "1"}
