"""Under pytest-xdist every worker is its own process: one torch thread each avoids
oversubscribing the cores (2 workers x 2 threads on a 2-core machine is much slower)."""

import os

import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
