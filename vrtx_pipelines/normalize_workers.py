"""Loaded once by the fork server that dlt's normalize workers are forked from.

Workers then start with dlt already imported (a spawned worker imported it afresh), and the cyclic collector
leaves the imported objects alone and runs less often: normalising allocates millions of short-lived rows, and
with the default thresholds the collector walked the survivors again and again (as in a pull's extraction).
"""

import gc

import dlt.normalize.worker  # noqa: F401 -- the import is the point

gc.freeze()
gc.set_threshold(100_000, 50, 50)
