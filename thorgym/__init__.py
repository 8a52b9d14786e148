"""thorgym: Gymnasium environments and fast batched simulation for AI2-THOR research.

Importing ``thorgym`` is cheap: it imports neither torch nor ai2thor.
"""

__version__ = "0.1.0"
