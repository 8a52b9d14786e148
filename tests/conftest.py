"""Test-wide settings: one intra-op thread per worker.

`pytest -n 2` already uses both cores; torch's OpenMP threads on top of that oversubscribe the
CPU and make small tensor ops wait on each other (seen: 20x slower steps).
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
