"""The sandbox kit: what every provider's sandbox needs and no provider should write again.

A provider's sandbox (``providers/<slug>/sandbox``) is assembled from these parts plus its own data, wire shapes
and quirks; each part takes the provider's specifics as hooks or declarations and is tested on its own
(``tests/sandbox_kit/``). Importing this package is cheap: each part is a module, imported where it is used.

- ``oauth``, ``oauth_http``: an OAuth 2.0 authorization server (PKCE, client authentication, lifetimes, rotation
  with a grace window or none, revocation, forced expiry) and its authorize/consent/token/revocation endpoints.
- ``gate``: admitting an API call (caller, tenant, scope, checks, faults, quotas) with rate-limit headers.
- ``metering``: quotas per rolling window, per tenant or app, calls in flight; call stats.
- ``faults``: the fault knobs (429 storms, failing pages and writes, lost answers, latency, token expiry).
- ``store``: records generated on demand plus changes, ordered and windowed by change time; unique indexes.
- ``listing``, ``filters``: list endpoints declared per resource; filter and order expressions in a dialect.
- ``writes``, ``idempotency``: reading write bodies, batches, merging; Idempotency-Key replay.
- ``webhooks``: subscriptions and a background sender, with the provider's payload and signer.
- ``data``, ``pools``, ``books``, ``clock``: deterministic ids, names and books; the sandbox clock.
- ``sandbox``, ``edge``, ``wire``, ``serve``: the state every sandbox holds, request ids, request and response
  helpers, and serving an app (``load_sandbox`` reads ``Provider.sandbox``) on loopback.
"""
