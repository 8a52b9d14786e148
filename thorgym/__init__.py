"""thorgym: Gymnasium environments and fast batched simulation for AI2-THOR research.

Importing ``thorgym`` is cheap: it imports neither torch nor ai2thor. It registers the
Gymnasium environments of :mod:`thorgym.registration` (e.g. ``thorgym/ObjectNav-v0``).
"""

from .registration import register_envs as _register_envs

__version__ = "0.1.0"

_register_envs()
