"""Backbone checkpoints: ``save_backbone`` / ``load_backbone`` round trip.

A checkpoint is a plain dict readable with ``torch.load(weights_only=True)``::

    {"format": "thorgym.backbone/1", "name": "espnetv2_s1.0", "num_classes": 0,
     "build_kwargs": {...}, "state_dict": {...}}

Writes are atomic (:func:`save_torch_atomic`: temporary file in the same folder, fsync, then
``os.replace``), so a crash never leaves a truncated checkpoint under the final name.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch
from torch import nn

from thorgym.atomic import atomic_writer

from .base import ImageBackbone
from .registry import build_backbone, get_spec

CKPT_FORMAT = "thorgym.backbone/1"


def _unwrap(model: nn.Module) -> nn.Module:
    # torch.compile wraps the module; checkpoints hold the original's keys.
    return getattr(model, "_orig_mod", model)


def save_torch_atomic(obj: object, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` atomically; returns the path written.

    The object is serialised into a temporary file in the same folder, flushed and fsynced, then
    moved over ``path`` with ``os.replace``: readers see the old file or the complete new one,
    never a partial write, and a crash leaves no truncated file under the final name (the
    temporary file is removed on any error). Parent folders are created; the file gets the
    usual umask-based permissions.

    The object is serialised in memory first: torch's zip writer, when a write to the file
    fails (a full disk), raises an unrelated ``RuntimeError`` from its cleanup that hides the
    ``OSError``; writing finished bytes keeps the real error (ENOSPC, naming the file).
    """
    buf = io.BytesIO()
    torch.save(obj, buf)
    with atomic_writer(path) as f:
        f.write(buf.getbuffer())
    return Path(path)


def save_backbone(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write ``model`` (an :class:`ImageBackbone` from ``build_backbone``) to ``path`` atomically.

    Returns the path written. Parent folders are created.
    """
    return save_torch_atomic(backbone_payload(model, CKPT_FORMAT, "save_backbone"), path)


def backbone_payload(model: nn.Module, fmt: str, caller: str) -> dict:
    """The checkpoint dict of a registry backbone: format, name, head size, build arguments and
    the state dict on CPU (``caller`` names the function in the error for other modules)."""
    model = _unwrap(model)
    if not isinstance(model, ImageBackbone) or not model.name:
        raise TypeError(f"{caller} expects a module built by build_backbone(name, ...)")
    return {
        "format": fmt,
        "name": model.name,
        "num_classes": model.num_classes,
        "build_kwargs": dict(model.build_kwargs),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }


def read_backbone_checkpoint(path: str | os.PathLike) -> dict:
    """Load and validate a checkpoint dict (CPU tensors). Clear errors for every failure:

    FileNotFoundError if missing; ValueError if unreadable/corrupt or not a thorgym backbone
    checkpoint. A directory stands for its ``backbone.pt`` (what ``thorgym pretrain --out DIR``
    writes), so a pretraining run directory can be passed as is.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / "backbone.pt").is_file():
            raise FileNotFoundError(
                f"{path} is a directory without backbone.pt; pass a checkpoint file or the --out "
                "directory of a finished `thorgym pretrain` run"
            )
        path = path / "backbone.pt"
    if not path.is_file():
        raise FileNotFoundError(
            f"backbone checkpoint not found: {path} (write one with `thorgym pretrain --backbone NAME "
            "--out DIR`, then pass DIR or DIR/backbone.pt)"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated file, not a torch file, unsafe pickle, ...
        raise ValueError(f"could not read backbone checkpoint {path}: {e}") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != CKPT_FORMAT:
        raise ValueError(
            f"{path} is not a thorgym backbone checkpoint (expected format {CKPT_FORMAT!r}; "
            "write one with thorgym.agents.backbones.save_backbone)"
        )
    for key, typ in (
        ("name", str),
        ("num_classes", int),
        ("build_kwargs", dict),
        ("state_dict", dict),
    ):
        if not isinstance(ckpt.get(key), typ):
            raise ValueError(f"backbone checkpoint {path} has no valid {key!r} entry")
    return ckpt


def load_backbone_state(model: nn.Module, path: str | os.PathLike) -> None:
    """Load the weights of checkpoint ``path`` into an existing ``model`` (in place).

    The checkpoint must be of the same backbone name. A classification checkpoint loads into a
    feature model (``num_classes=0``): its ``head.*`` weights are dropped. Any other key or
    shape mismatch raises ValueError listing the offending keys.
    """
    model = _unwrap(model)
    if not isinstance(model, ImageBackbone):
        raise TypeError("load_backbone_state expects a module built by build_backbone")
    ckpt = read_backbone_checkpoint(path)
    if ckpt["name"] != model.name:
        raise ValueError(
            f"backbone checkpoint {path} holds {ckpt['name']!r}, but the model is {model.name!r}"
        )
    state = ckpt["state_dict"]
    if model.num_classes == 0:
        state = {k: v for k, v in state.items() if not k.startswith("head.")}
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad_shape = sorted(
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    )
    if missing or unexpected or bad_shape:
        raise ValueError(
            f"backbone checkpoint {path} does not match {model.name!r}: "
            f"missing={missing[:5]}{'...' if len(missing) > 5 else ''} "
            f"unexpected={unexpected[:5]}{'...' if len(unexpected) > 5 else ''} "
            f"shape={bad_shape[:5]}"
        )
    model.load_state_dict(state)


def load_backbone(
    name: str, path: str | os.PathLike, num_classes: int | None = None
) -> ImageBackbone:
    """Build backbone ``name`` and load checkpoint ``path`` into it (on CPU, in eval mode).

    ``num_classes`` defaults to the checkpoint's; pass 0 to get a feature model from a
    classification checkpoint. ValueError if the checkpoint holds another backbone.
    """
    get_spec(name)  # unknown name → ValueError listing valid names
    ckpt = read_backbone_checkpoint(path)
    if ckpt["name"] != name:
        raise ValueError(f"backbone checkpoint {path} holds {ckpt['name']!r}, not {name!r}")
    n = ckpt["num_classes"] if num_classes is None else num_classes
    model = build_backbone(name, n, **ckpt["build_kwargs"])
    load_backbone_state(model, path)
    return model.eval()


# Backbones thorgym pretrained itself and ships (no model hub): name -> checkpoint in the package.
# Made by `thorgym pretrain --backbone cnn_small --size 64 --epochs 10` (metrics in the .json beside).
SHIPPED = {"cnn_small": Path(__file__).parent / "weights" / "cnn_small_presence64.pt"}


def shipped_checkpoint(name: str) -> Path | None:
    """The package's own pretrained checkpoint of a backbone, if thorgym ships one."""
    p = SHIPPED.get(name)
    return p if p is not None and p.is_file() else None
