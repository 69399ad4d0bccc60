"""The one place where the trainer probes optional hooks of its components.

A method declares ``needs_closure = True`` to get ``closure=fn`` in ``step``; a dataset declares
``supports_rank_shard = True`` when it has per-process readers (``data.shard: rank``). Components
that predate these declarations may lack the attributes, hence ``getattr`` with a default.
"""

from __future__ import annotations

from typing import Any


def needs_closure(method: Any) -> bool:
    """Whether ``method.step`` takes ``closure=`` (a re-evaluation of the per-task losses)."""
    return bool(getattr(method, "needs_closure", False))


def supports_rank_shard(dataset: Any) -> bool:
    """Whether ``dataset.batches`` reads per-process shares (``rank=`` / ``world_size=``)."""
    return bool(getattr(dataset, "supports_rank_shard", False))
