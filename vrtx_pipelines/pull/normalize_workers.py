"""Loaded once by the fork server that dlt's normalize workers are forked from.

Workers then start with dlt already imported (a spawned worker imported it afresh), with what it loaded frozen
out of collection and the collector tuned for bulk work (``vrtx_pipelines.pull.bulk_gc``).
"""

import gc

import dlt.normalize.worker  # noqa: F401 -- the import is the point

from vrtx_pipelines.pull.bulk_gc import BULK_THRESHOLDS

gc.freeze()
gc.set_threshold(*BULK_THRESHOLDS)
