"""Bit-for-bit resumable step bookkeeping shared by the loss- and gradient-level methods."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def numeric_info(info: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The plain-number entries of an aggregator's ``last_info`` (for ``StepInfo.extra``)."""
    out: dict[str, float] = {}
    for k, v in info.items():
        if isinstance(v, bool):
            out[prefix + k] = float(v)
        elif isinstance(v, (int, float)) and math.isfinite(float(v)):
            out[prefix + k] = float(v)
    return out


class StatefulStepMixin:
    """Shared by the gradient-level and loss-weighting base classes: the :class:`StepInfo`
    of a step and bit-for-bit resumability (optimiser state, step count, RNG state, plus a
    subclass's own state through ``_extra_state`` / ``_load_extra_state``).

    Expects ``self.opt`` (a torch optimiser), ``self.n_steps``, ``self.generator`` (a
    ``torch.Generator``) and ``self.has_weights``.
    """

    opt: Any
    n_steps: int
    generator: Any
    has_weights: bool

    def _info(
        self,
        ls: Sequence[Any],
        w: Sequence[float] | None,
        extra: dict[str, float],
        **kw: Any,
    ) -> Any:
        from mtopt.methods.base import StepInfo

        vals = [float(x.detach()) for x in ls]
        weights = [float(x) for x in w] if (self.has_weights and w is not None) else None
        return StepInfo(loss=float(sum(vals)), task_losses=vals, weights=weights, extra=extra, **kw)

    def state_dict(self) -> dict[str, Any]:
        """Optimiser state, step count, RNG state and subclass state."""
        return {
            "opt": self.opt.state_dict(),
            "n_steps": self.n_steps,
            "generator": self.generator.get_state(),
            "method": self._extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.opt.load_state_dict(state["opt"])
        self.n_steps = int(state["n_steps"])
        self.generator.set_state(state["generator"])
        self._load_extra_state(state.get("method", {}))

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        pass


__all__ = ["StatefulStepMixin", "numeric_info"]
