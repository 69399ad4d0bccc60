"""The divergence policy of a run (a mixin of :class:`~mtopt.train.trainer.Trainer`; see
docs/errors.md): a non-finite task loss (before the step), a non-finite joint loss, or a joint
loss above :data:`DIVERGENCE_FACTOR` × max(|the run's first joint loss|, 1) stops the run with a
:class:`~mtopt.errors.RunError` (exit 1) that says truthfully whether a checkpoint was kept."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from mtopt.errors import RunError

#: a joint loss above this factor × max(|the run's first joint loss|, 1) counts as divergence
DIVERGENCE_FACTOR = 1e6


class Divergence:
    """Trainer methods that stop a diverging run."""

    tasks: list[str]
    step: int
    epoch: int
    batch_in_epoch: int
    first_loss: float | None
    _kept: Callable[[], str]

    def _check_losses(self, losses: list[torch.Tensor]) -> None:
        vals = torch.stack([x.detach().float() for x in losses])
        if bool(torch.isfinite(vals).all()):
            return
        bad = [
            f"{t}={float(v)}" for t, v in zip(self.tasks, vals.cpu()) if not math.isfinite(float(v))
        ]
        raise RunError(
            f"step {self.step + 1} (epoch {self.epoch + 1}, batch {self.batch_in_epoch + 1}): "
            f"non-finite loss ({', '.join(bad)}); training stopped before this step; "
            f"{self._kept()} (lower optimizer.lr, or check the data and the method)"
        )

    def _check_divergence(self, loss: float) -> None:
        """The divergence policy (docs/errors.md): a non-finite joint loss, or one above
        :data:`DIVERGENCE_FACTOR` × max(|first joint loss|, 1), stops the run (exit 1)."""
        where = f"step {self.step} (epoch {self.epoch + 1})"
        if not math.isfinite(loss):
            raise RunError(
                f"{where}: the method's joint loss is {loss}; training stopped; {self._kept()} "
                "(lower optimizer.lr, or check the data and the method)"
            )
        if self.first_loss is None:
            self.first_loss = abs(loss)
            return
        limit = DIVERGENCE_FACTOR * max(self.first_loss, 1.0)
        if abs(loss) > limit:
            raise RunError(
                f"{where}: training diverged: the joint loss {loss:.3g} exceeds "
                f"{DIVERGENCE_FACTOR:.0e} × its first value ({self.first_loss:.3g}); training "
                f"stopped; {self._kept()} (lower optimizer.lr)"
            )
