"""How a pull runs dlt fast: uncompressed intermediate files of a bounded size, normalize workers forked from a
warm fork server, and a garbage collector tuned for bulk work while the pull lasts.

dlt reads these settings from the environment when each of its steps starts; importing this module sets the
defaults, and a pull sets the rest around its run (``environment``).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Iterator
from contextlib import contextmanager

from vrtx_pipelines.pull.bulk_gc import BULK_THRESHOLDS

# dlt's intermediate files live a few seconds on local disk: compressing them cost more than a tenth of a
# pull's time (measured with bench/pull.py), and saves nothing that matters.
os.environ.setdefault("DATA_WRITER__DISABLE_COMPRESSION", "true")
# Files of at most this many rows: a large pull's rows can then be normalised by several processes and loaded
# by several COPYs at once (see normalize_workers).
os.environ.setdefault("DATA_WRITER__FILE_MAX_ITEMS", "5000")


def normalize_workers(first_sync: bool) -> int:
    """Processes for dlt's normalize step, its slowest on a large pull: one per core for a first (full) sync;
    incremental syncs normalise in process, where starting workers would cost more than their few rows."""
    configured = os.environ.get("VRTX_NORMALIZE_WORKERS")
    if configured and configured.isdigit() and int(configured) > 0:
        return int(configured)
    return max(1, min(os.cpu_count() or 1, 4)) if first_sync else 1


def normalize_environment(first_sync: bool) -> dict[str, str]:
    """dlt's normalize settings for a pull: its workers, and where they start from.

    Inside a Dagster run dlt would spawn each worker (forking a process that has threads is unsafe), and a spawned
    worker spends half a second importing dlt. Forked from a fork server instead (single-threaded, so forking it
    is safe), workers start with dlt imported and the collector tuned (``vrtx_pipelines.pull.normalize_workers``):
    normalize 11.8 -> 9.0-9.6 s in bench/pull.py.
    """
    settings = {"NORMALIZE__WORKERS": str(normalize_workers(first_sync))}
    if "forkserver" in multiprocessing.get_all_start_methods():
        # Read when the server starts (at the first pull of the process), which is also when it loads the module.
        multiprocessing.set_forkserver_preload(["vrtx_pipelines.pull.normalize_workers"])
        settings["NORMALIZE__START_METHOD"] = "forkserver"
    return settings


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """dlt reads its configuration from the environment when each step starts."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def fewer_collections() -> Iterator[None]:
    """For the pull only, the collector is tuned for bulk work (``vrtx_pipelines.pull.bulk_gc``): the objects that exist
    before it are frozen out of collection and young ones are collected less often."""
    previous = gc.get_threshold()
    frozen_before = gc.get_freeze_count() > 0  # a serving process froze its startup objects: leave them so
    gc.freeze()
    gc.set_threshold(*BULK_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        if not frozen_before:
            gc.unfreeze()
