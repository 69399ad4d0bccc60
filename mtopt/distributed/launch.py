"""Joining the process group from the environment torchrun sets (``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``; see :mod:`mtopt.distributed`)."""

from __future__ import annotations

import datetime
import os

import torch

from mtopt.distributed.context import DEFAULT_TIMEOUT, DistContext
from mtopt.errors import InputError, RunError


def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (1 when unset)."""
    raw = os.environ.get("WORLD_SIZE", "1")
    try:
        return int(raw)
    except ValueError:
        raise InputError(f"WORLD_SIZE={raw!r}: expected an integer (set by torchrun)") from None


def setup(device: str = "cpu", timeout: float = DEFAULT_TIMEOUT) -> DistContext:
    """A :class:`DistContext` from the environment; initialises the process group if needed.

    ``WORLD_SIZE`` unset or 1: single process (nothing initialised). Otherwise gloo on CPU,
    nccl on CUDA (each process on ``cuda:LOCAL_RANK``), with ``timeout`` seconds per collective.
    """
    import torch.distributed as dist

    world = env_world_size()
    if world <= 1 and not dist.is_initialized():
        return DistContext(timeout=timeout)
    if dist.is_initialized():
        return DistContext(
            rank=dist.get_rank(),
            world_size=dist.get_world_size(),
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
            backend=str(dist.get_backend()),
            timeout=timeout,
        )
    for key in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        if key not in os.environ:
            raise InputError(
                f"WORLD_SIZE={world} but {key} is not set; launch with torchrun "
                "--nproc-per-node N -m mtopt train RECIPE"
            )
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device == "cuda" else "gloo"
    if device == "cuda":
        torch.cuda.set_device(local_rank)
    try:
        dist.init_process_group(
            backend,
            rank=rank,
            world_size=world,
            timeout=datetime.timedelta(seconds=timeout),
        )
    except (RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunError(
            f"rank {rank}/{world}: could not join the process group ({backend}, "
            f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')}) within "
            f"{timeout:g} s: {first[:200]}"
        ) from None
    return DistContext(
        rank=rank,
        world_size=world,
        local_rank=local_rank,
        backend=backend,
        timeout=timeout,
        owns_group=True,
    )
