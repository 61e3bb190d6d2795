"""MAE pretraining and fine-tuning core (needs the ``train`` extra: torch, torchvision, timm).

Importing this package does not import torch; modules that need it import it themselves and the
``scaling train`` commands turn a missing install into a one-line hint.
"""

from __future__ import annotations

from importlib.util import find_spec

INSTALL_HINT = "install the training extra: pip install 'humanlike-scaling[train]'"


def torch_available() -> bool:
    """Whether torch can be imported, without importing it."""
    try:
        return find_spec("torch") is not None
    except (ImportError, ValueError):  # an import hook that refuses torch, or a broken half-install
        return False
