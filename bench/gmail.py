"""Benchmark: the first sync of a 50,000-message Gmail mailbox into PostgreSQL, against a raw httpx baseline in the
same run.

Prints:
1. the platform's messages/s: the real Dagster asset (OAuth consent through the sandbox, ``messages.list`` pages of
   500 ids per synced label, ``messages.get`` for each, eight in flight, dlt into PostgreSQL, canonical records);
2. the baseline's: httpx making the same calls (same pages, same eight gets in flight), the same rows by COPY into
   one table; and their ratio (target: platform >= 0.5 x baseline).

The sandbox (quotas off: the bench measures the pipeline, not Google's limits) runs in its own process. Run with
`bench/run gmail [--messages N]` (starts a throwaway PostgreSQL), or set VRTX_BENCH_POSTGRES_URL.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
import psycopg2
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchlib import Platform  # noqa: E402 -- after the path is set
from pull import fresh_database  # noqa: E402

SLUG = "google_workspace"
SERVE = "import sys; sys.path.insert(0, 'bench'); from gmail import serve_sandbox; serve_sandbox(int(sys.argv[1]))"
REDIRECT = "http://127.0.0.1:9/callback"


def serve_sandbox(messages: int) -> None:
    from providers.google_workspace.sandbox import GoogleKnobs, GoogleSandbox, create_app
    from providers.google_workspace.sandbox_credentials import DEMO_MAILBOX
    from providers.sandbox_kit.serve import ServedApp

    sandbox = GoogleSandbox(seed=1)
    sandbox.add_mailbox(DEMO_MAILBOX, messages=messages, days=80, events=0)
    served = ServedApp(create_app(sandbox, knobs=GoogleKnobs(enforce_quotas=False))).start()
    print(json.dumps({"base_url": served.base_url}), flush=True)
    for _ in sys.stdin:
        pass


def platform_sync(base_url: str, admin_url: str, home: Path) -> dict[str, Any]:
    from dagster._core.test_utils import instance_for_test

    from vrtx_pipelines.cli.sync import sync_now
    from vrtx_pipelines.warehouse import pipeline_for

    platform = Platform(admin_url, home, base_url, {"VRTX_PACING": "headers"}, slug=SLUG)
    platform.connect_tenant("bench")
    with instance_for_test() as instance:
        started = time.perf_counter()
        rows = sync_now(platform.settings, SLUG, "bench", ["messages"], instance=instance)
        elapsed = time.perf_counter() - started
    with pipeline_for(platform.settings, SLUG, "bench").sql_client() as client:
        loaded = int(client.execute_sql("SELECT COUNT(*) FROM messages")[0][0])
    return {"elapsed_s": elapsed, "rows": rows, "warehouse_rows": loaded}


def access_token(base_url: str) -> str:
    """The OAuth dance as an app does it (authorize with PKCE, the consent page's form, the code exchange)."""
    from providers.google_workspace.sandbox_credentials import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
    from vrtx_pipelines.connect.consent import _ConsentForm

    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {"client_id": DEMO_CLIENT_ID, "redirect_uri": REDIRECT, "response_type": "code",
             "scope": "https://www.googleapis.com/auth/gmail.readonly", "access_type": "offline",
             "code_challenge": challenge, "code_challenge_method": "S256"}  # fmt: skip
    page = httpx.get(f"{base_url}/o/oauth2/v2/auth?{urlencode(query)}")
    form = _ConsentForm()
    form.feed(page.text)
    answer = httpx.post(
        urljoin(str(page.url), str(form.action)),
        content=urlencode([*form.fields, ("decision", "allow")]),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
    token = httpx.post(f"{base_url}/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET, "code_verifier": verifier,
    }).json()  # fmt: skip
    return str(token["access_token"])


def baseline(base_url: str, database_url: str, window_start: int) -> dict[str, Any]:
    from providers.google_workspace.source import message_row

    url = make_url(database_url)
    conn = psycopg2.connect(host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database)
    with conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE raw_messages (id text PRIMARY KEY, thread_id text, subject text, row jsonb)")
    token = access_token(base_url)
    started = time.perf_counter()
    gmail = f"{base_url}/gmail/v1/users/me"
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        ids: list[str] = []
        for label in ("INBOX", "SENT"):
            params: dict[str, Any] = {"q": f"after:{window_start}", "labelIds": label, "maxResults": 500}
            while True:
                page = client.get(f"{gmail}/messages", params=params).json()
                ids += [ref["id"] for ref in page.get("messages", [])]
                if not page.get("nextPageToken"):
                    break
                params["pageToken"] = page["nextPageToken"]

        def one(message_id: str) -> dict[str, Any]:
            found = client.get(f"{gmail}/messages/{message_id}", params={"format": "full"}).json()
            return message_row(found, "bench")

        with ThreadPoolExecutor(max_workers=8) as pool:
            rows = list(pool.map(one, dict.fromkeys(ids)))
    buffer = io.StringIO()
    for row in rows:
        line = json.dumps(row, default=str).replace("\\", "\\\\")
        buffer.write(f"{row['id']}\t{row['thread_id']}\t{(row['subject'] or '').replace(chr(9), ' ')}\t{line}\n")
    buffer.seek(0)
    with conn, conn.cursor() as cur:
        cur.copy_expert("COPY raw_messages (id, thread_id, subject, row) FROM STDIN", buffer)
    conn.close()
    return {"elapsed_s": time.perf_counter() - started, "rows": len(rows)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=50_000)
    args = parser.parse_args()
    admin_url = os.environ["VRTX_BENCH_POSTGRES_URL"]
    sandbox = subprocess.Popen([sys.executable, "-c", SERVE, str(args.messages)], cwd=ROOT, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert sandbox.stdout is not None
        base_url = json.loads(sandbox.stdout.readline())["base_url"]
        print(f"first sync of a {args.messages:,}-message Gmail mailbox (INBOX and SENT, 90-day window)", flush=True)
        raw = baseline(base_url, fresh_database(admin_url), int(time.time()) - 90 * 86_400)
        print(f"  raw httpx + COPY baseline: {raw['rows']:,} messages in {raw['elapsed_s']:.1f} s "
              f"({raw['rows'] / raw['elapsed_s']:,.0f} messages/s)", flush=True)  # fmt: skip
        with tempfile.TemporaryDirectory() as home:
            platform = platform_sync(base_url, admin_url, Path(home))
        per_s = platform["warehouse_rows"] / platform["elapsed_s"]
        print(f"  platform (Dagster asset, dlt, canonical records): {platform['warehouse_rows']:,} messages in "
              f"{platform['elapsed_s']:.1f} s ({per_s:,.0f} messages/s)")  # fmt: skip
        ratio = per_s / (raw["rows"] / raw["elapsed_s"])
        verdict = "meets" if ratio >= 0.5 else "misses"
        print(f"  ratio platform/baseline: {ratio:.2f} ({verdict} the 0.5 target)")
    finally:
        sandbox.terminate()
        sandbox.wait()


if __name__ == "__main__":
    main()
