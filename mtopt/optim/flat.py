"""A flat view of a list of parameters: offsets, per-tensor views and segment ids.

PUB treats the shared parameters as one vector θ ∈ ℝᵈ (Algorithm 1 of Yuan et al., ICDM 2024 has
one α per step for *all* shared parameters). :class:`FlatLayout` maps between the user's tensors
and preallocated flat buffers (``[d]`` or ``[rows, d]``), so every piece of optimizer arithmetic
is a handful of large vectorised kernels rather than Python-level per-tensor work.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mtopt.errors import InputError


class FlatLayout:
    """Offsets of ``params`` in one flat vector of length ``d = Σ numel``.

    All tensors must share one dtype and one device (the flat buffers live there).
    """

    def __init__(self, params: Sequence[torch.Tensor], what: str = "shared_params") -> None:
        self.params = list(params)
        if not self.params:
            raise InputError(f"{what}: no parameters given; pass at least one tensor")
        dtypes = {p.dtype for p in self.params}
        devices = {p.device for p in self.params}
        if len(dtypes) != 1 or len(devices) != 1:
            raise InputError(
                f"{what}: all tensors must share one dtype and device "
                f"(got {sorted(map(str, dtypes))} on {sorted(map(str, devices))}); cast the model"
            )
        if not self.params[0].is_floating_point():
            raise InputError(
                f"{what}: parameters must be floating point, got {self.params[0].dtype}"
            )
        self.dtype: torch.dtype = self.params[0].dtype
        self.device: torch.device = self.params[0].device
        self.shapes = [tuple(p.shape) for p in self.params]
        self.numels = [p.numel() for p in self.params]
        self.offsets: list[int] = []
        off = 0
        for k in self.numels:
            self.offsets.append(off)
            off += k
        self.d = off
        self._segment_ids: torch.Tensor | None = None
        self._numels_t: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.params)

    def empty(self, *lead: int, dtype: torch.dtype | None = None) -> torch.Tensor:
        """An uninitialised buffer of shape ``(*lead, d)``."""
        return torch.empty(*lead, self.d, dtype=dtype or self.dtype, device=self.device)

    def views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Per-parameter views of ``flat`` (shape ``(*lead, d)`` → ``(*lead, *shape)`` each)."""
        lead = tuple(flat.shape[:-1])
        return [
            flat[..., o : o + k].view(*lead, *s)
            for o, k, s in zip(self.offsets, self.numels, self.shapes)
        ]

    def gather(self, tensors: Sequence[torch.Tensor | None], out: torch.Tensor) -> torch.Tensor:
        """Copy ``tensors`` (one per parameter, ``None`` meaning zeros) into the flat ``out``."""
        views = self.views(out)
        # sparse gradients (nn.Embedding(sparse=True)) are densified: D is dense anyway
        have = [
            (v, t.to_dense() if t.is_sparse else t) for v, t in zip(views, tensors) if t is not None
        ]
        if have:
            torch._foreach_copy_([v for v, _ in have], [t for _, t in have])
        for v, t in zip(views, tensors):
            if t is None:
                v.zero_()
        return out

    def flatten_params(self, out: torch.Tensor) -> torch.Tensor:
        """Copy the current parameter values into ``out`` (shape ``[d]``)."""
        torch._foreach_copy_(self.views(out), [p.detach() for p in self.params])
        return out

    @property
    def numels_tensor(self) -> torch.Tensor:
        """``LongTensor[len(params)]`` of sizes (for ``repeat_interleave``)."""
        if self._numels_t is None:
            self._numels_t = torch.tensor(self.numels, dtype=torch.long, device=self.device)
        return self._numels_t

    @property
    def segment_ids(self) -> torch.Tensor:
        """``LongTensor[d]``: index of the parameter each flat coordinate belongs to."""
        if self._segment_ids is None:
            self._segment_ids = torch.repeat_interleave(
                torch.arange(len(self.params), device=self.device), self.numels_tensor
            )
        return self._segment_ids

    def segment_amin(self, x: torch.Tensor) -> torch.Tensor:
        """Per-parameter minimum of ``x`` (shape ``(r, d)``) → shape ``(r, len(params))``."""
        r = x.shape[0]
        out = torch.full((r, len(self.params)), float("inf"), dtype=x.dtype, device=x.device)
        idx = self.segment_ids.unsqueeze(0).expand(r, -1)
        return out.scatter_reduce_(1, idx, x, reduce="amin", include_self=True)

    def expand_segments(self, per_param: torch.Tensor) -> torch.Tensor:
        """Broadcast per-parameter values ``(r, len(params))`` back to ``(r, d)``."""
        return torch.repeat_interleave(per_param, self.numels_tensor, dim=1)
