"""Benchmark: what opening a Dagster instance costs on the app database as the tenants' warehouse schemas grow.

Dagster's tables share the PostgreSQL database with every tenant's dataset (a schema and its staging schema each).
Every run worker, daemon and webserver process opens an instance; each of its three storages, with Dagster's default
``should_autocreate_tables: true``, lists every table of the database to see whether its own exist. The platform's
instance file (dagster_home/postgres/dagster.yaml) turns that off and `vrtx` creates the tables once.

Set-up: a fresh database with Dagster's tables; then, in steps, tenants added as two schemas of eight keyed tables
each (a Xero dataset's contacts, invoices, line items, payments, items, accounts, tax rates and dlt's state; the
real ones also hold dlt's version and load tables). Prints, at each step, the relations in the database and the
time to open an instance and read one run, median and p90 of ``--opens`` opens: with Dagster's default (the
baseline) and with the platform's instance file, in the same run.
Run with `bench/run instance_open [--tenants 1000]` (starts a throwaway PostgreSQL), or set VRTX_BENCH_POSTGRES_URL.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import psycopg2
from benchlib import ROOT, fresh_database, percentile
from dagster import DagsterInstance
from sqlalchemy.engine import make_url

TABLES = ("contacts", "invoices", "invoices__line_items", "payments", "items", "accounts", "tax_rates", "_dlt_state")


def instance_file(folder: Path, *, autocreate: bool) -> Path:
    text = (ROOT / "dagster_home" / "postgres" / "dagster.yaml").read_text()
    assert "should_autocreate_tables: false" in text, "the platform's instance file no longer sets the flag"
    if autocreate:
        text = text.replace("should_autocreate_tables: false", "should_autocreate_tables: true")
    (folder / "dagster.yaml").write_text(text)
    return folder


def add_tenants(url: str, start: int, end: int) -> int:
    """Tenants start..end-1 as their two schemas; returns the relations the database now holds."""
    parts = make_url(url)
    conn = psycopg2.connect(
        host=parts.host, port=parts.port, user=parts.username, password=parts.password, dbname=parts.database
    )
    conn.autocommit = True
    with conn.cursor() as cur:
        for n in range(start, end):
            for schema in (f"xero_t{n:05d}", f"xero_t{n:05d}_staging"):
                statements = [f'CREATE SCHEMA "{schema}"'] + [
                    f'CREATE TABLE "{schema}"."{table}" (id text PRIMARY KEY, data jsonb)' for table in TABLES
                ]
                cur.execute(";".join(statements))
        cur.execute("SELECT count(*) FROM pg_class")
        relations = int(cur.fetchone()[0])
    conn.close()
    return relations


def open_times(folder: Path, opens: int) -> list[float]:
    times = []
    for _ in range(opens):
        started = time.perf_counter()
        with DagsterInstance.from_config(str(folder)) as instance:
            instance.get_runs(limit=1)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000, help="tenants at the last step")
    parser.add_argument("--steps", type=int, default=3, help="steps from 0 tenants to --tenants")
    parser.add_argument("--opens", type=int, default=20, help="instance opens measured per step and setting")
    args = parser.parse_args()
    admin_url = os.environ.get("VRTX_BENCH_POSTGRES_URL") or os.environ["VRTX_TEST_POSTGRES_URL"]
    url = make_url(fresh_database(admin_url)).set(drivername="postgresql+psycopg2")
    os.environ["VRTX_DAGSTER_POSTGRES_URL"] = url.render_as_string(hide_password=False)
    with tempfile.TemporaryDirectory() as default_dir, tempfile.TemporaryDirectory() as platform_dir:
        default = instance_file(Path(default_dir), autocreate=True)
        platform = instance_file(Path(platform_dir), autocreate=False)
        open_times(default, 1)  # creates Dagster's tables, as `vrtx` does once
        print(f"== Opening a Dagster instance on the app database (PostgreSQL), {args.opens} opens per figure")
        print("tenants | relations | Dagster's default: median / p90 | platform's instance file: median / p90")
        done = 0
        for step in range(args.steps + 1):
            target = args.tenants * step // args.steps
            relations = add_tenants(os.environ["VRTX_DAGSTER_POSTGRES_URL"], done, target)
            done = target
            figures = []
            for folder in (default, platform):
                times = open_times(folder, args.opens)
                figures.append(f"{statistics.median(times) * 1000:7.1f} / {percentile(times, 90) * 1000:7.1f} ms")
            print(f"{target:7,} | {relations:9,} | {figures[0]:>31} | {figures[1]:>38}")


if __name__ == "__main__":
    main()
