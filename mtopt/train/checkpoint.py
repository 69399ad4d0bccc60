"""Checkpoints that load without executing pickles, written atomically.

A checkpoint is a ``torch.save`` of nested containers (dict, list, tuple, set) of tensors and
primitives (str, int, float, bool, None), loaded with ``torch.load(weights_only=True)`` so that a
file from elsewhere cannot run code. Values outside that set which state dicts commonly hold are
encoded reversibly by :func:`encode` (numpy arrays and scalars become tagged tensors / Python
numbers and come back as numpy); anything else is refused at save time with an error naming the
path of the offending value, rather than producing a file that cannot be loaded.

Writes go to a temporary file in the same folder, fsync'ed and renamed (:mod:`mtopt.io`), so a
``kill -9`` leaves either the previous checkpoint or the new one, never half a file.
"""

from __future__ import annotations

import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mtopt.errors import InputError, RunError
from mtopt.io import atomic_write

_NUMPY_TAG = "__mtopt_numpy__"
_NUMPY_SCALAR_TAG = "__mtopt_numpy_scalar__"
_PRIMITIVES = (str, int, float, bool, type(None))


def encode(obj: Any, path: str = "state") -> Any:
    """Make ``obj`` loadable with ``weights_only=True`` (reversibly, see :func:`decode`)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone() if obj.requires_grad else obj
    if isinstance(obj, _PRIMITIVES):
        return obj
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            raise RunError(f"checkpoint: {path}: numpy object arrays cannot be stored safely")
        return {_NUMPY_TAG: torch.from_numpy(np.ascontiguousarray(obj).copy())}
    if isinstance(obj, np.generic):
        return {_NUMPY_SCALAR_TAG: obj.item(), "dtype": str(obj.dtype)}
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise RunError(f"checkpoint: {path}: key {k!r} is not a str or int")
            out[k] = encode(v, f"{path}.{k}")
        return out
    if isinstance(obj, list):
        return [encode(v, f"{path}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, tuple):
        return tuple(encode(v, f"{path}[{i}]") for i, v in enumerate(obj))
    if isinstance(obj, (set, frozenset)):
        return {encode(v, f"{path}{{}}") for v in obj}
    raise RunError(
        f"checkpoint: {path}: a {type(obj).__name__} cannot be stored in a weights-only "
        "checkpoint; a state_dict must hold only tensors, numbers, strings and containers"
    )


def decode(obj: Any) -> Any:
    """Inverse of :func:`encode`."""
    if isinstance(obj, dict):
        if _NUMPY_TAG in obj and len(obj) == 1:
            return obj[_NUMPY_TAG].numpy().copy()
        if _NUMPY_SCALAR_TAG in obj and len(obj) == 2:
            return np.dtype(obj["dtype"]).type(obj[_NUMPY_SCALAR_TAG])
        return {k: decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(decode(v) for v in obj)
    return obj


class _Writes:
    """A file object that remembers the first :class:`OSError` of its writes (torch wraps it
    into a ``RuntimeError`` that hides the errno: disk full, file too large)."""

    def __init__(self, fh: Any) -> None:
        self.fh = fh
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self.fh.write(data)
        except OSError as exc:
            self.error = self.error or exc
            raise

    def flush(self) -> None:
        self.fh.flush()


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Encode ``state`` and write it atomically to ``path`` (an :class:`OSError` naming
    ``path`` when the disk refuses; the previous file is then left as it was)."""
    payload = encode(state)

    def write(fh: Any) -> None:
        w = _Writes(fh)
        try:
            torch.save(payload, w)
        except RuntimeError:
            if w.error is not None:
                raise OSError(w.error.errno, w.error.strerror, str(path)) from None
            raise

    try:
        return atomic_write(path, write, mode="wb")
    except OSError as exc:
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise


#: the keys of a training checkpoint (``last.pt``) the trainer reads
CHECKPOINT_KEYS = ("format", "recipe", "model", "method", "rng", "position", "trainer")


def _why_unreadable(exc: BaseException) -> str:
    """A short reason, in our words (never torch's advice to load with ``weights_only=False``)."""
    text = str(exc)
    if "Weights only load failed" in text or isinstance(exc, pickle.UnpicklingError):
        return (
            "it holds objects that a safe (weights-only) load refuses: not written by mtopt, "
            "or altered"
        )
    if isinstance(exc, EOFError) or "unexpected EOF" in text or "truncated" in text.lower():
        return "the file is truncated"
    if "zip archive" in text or "central directory" in text or "invalid load key" in text:
        return "the file is damaged or not a torch checkpoint"
    return "the file is damaged or not a torch checkpoint"


def _legacy(p: Path) -> bool:
    """Whether ``p`` is in torch's pre-1.6 format (a bare pickle, not a zip archive)."""
    import zipfile

    try:
        with open(p, "rb") as fh:
            head = fh.read(2)
        return head == b"\x80\x02" and not zipfile.is_zipfile(p)
    except OSError:
        return False


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (no pickle code is executed)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such checkpoint")
    try:
        raw = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # every failure of a foreign / damaged file is bad input
        why = "torch's legacy (non-zip) format" if _legacy(p) else _why_unreadable(exc)
        raise InputError(
            f"{p}: not a readable mtopt checkpoint ({why}); delete it or resume from another run"
        ) from None
    if not isinstance(raw, dict):
        raise InputError(f"{p}: not an mtopt checkpoint (expected a dict)")
    return decode(raw)


def check_training_checkpoint(ckpt: dict[str, Any], path: str | Path, fmt: str) -> None:
    """``ckpt`` is a complete training checkpoint of format ``fmt``."""
    if ckpt.get("format") != fmt:
        raise InputError(f"{path}: not an mtopt training checkpoint")
    missing = [k for k in CHECKPOINT_KEYS if k not in ckpt]
    if missing or not isinstance(ckpt.get("recipe"), dict):
        raise InputError(
            f"{path}: an incomplete mtopt checkpoint (missing {', '.join(missing) or 'recipe'}); "
            "delete it or resume from another run"
        )


# --------------------------------------------------------------------------------------------
# random number generators


def get_rng_state() -> dict[str, Any]:
    """The states of Python's, numpy's and torch's global generators (CPU and CUDA)."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "name": np_state[0],
            "keys": np_state[1],
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`get_rng_state` returned."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state(
        (
            n["name"],
            np.asarray(n["keys"], dtype=np.uint32),
            n["pos"],
            n["has_gauss"],
            n["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
