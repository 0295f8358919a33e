"""The cyclic collector's thresholds for bulk work: a pull's extraction and dlt's normalize workers.

Both allocate millions of short-lived containers while long-lived objects stay put; with the default thresholds
the collector runs every 700 allocations and walks the survivors again and again (in bench/pull.py, decoding a
page took 1.7x as long). Young objects are collected less often, and existing ones are frozen out of collection.
"""

BULK_THRESHOLDS = (100_000, 50, 50)
