"""The checkpoint contract of :class:`~mtopt.optim.multitask.MultiTaskUpdate` (PUB, AdaTask):
``state_dict`` holds everything needed to resume bit for bit (hyperparameters, the base rule's
flat moments, row-wise tables, UMM state, the task-parameter optimizer, counters and the
balance's α and schedule under ``"extra"``); ``load_state_dict`` refuses a checkpoint of
another class, base rule, UMMs or parameter sizes. A mixin: it reads the optimizer's buffers."""

from __future__ import annotations

import copy
from typing import Any

import torch

from mtopt.errors import InputError
from mtopt.optim.diagnostics import LastStep


def check_state_dict(
    sd: Any,
    cls: str,
    base: str,
    per_task: bool,
    param_groups: list[dict[str, Any]],
    moments: dict[str, torch.Tensor],
    umms: list[str],
) -> None:
    """Refuse an optimizer checkpoint of another class, base rule, UMMs or parameter sizes."""
    if not isinstance(sd, dict) or sd.get("format") != "mtopt.optim":
        raise InputError("state_dict: not an mtopt optimizer checkpoint")
    if sd.get("class") != cls or sd.get("base") != base:
        raise InputError(
            f"state_dict: saved by {sd.get('class')}(base={sd.get('base')!r}), "
            f"cannot load into {cls}(base={base!r})"
        )
    if bool(sd.get("per_task_moments")) != per_task:
        raise InputError("state_dict: per-task moments (AdaTask) differ from this optimizer")
    groups = sd["param_groups"]
    if len(groups) != len(param_groups) or any(
        g["num_params"] != len(mine["params"]) for g, mine in zip(groups, param_groups)
    ):
        raise InputError("state_dict: parameter groups do not match this optimizer's")
    saved = sd["shared"]["moments"]
    if set(saved) != set(moments):
        raise InputError("state_dict: moment names differ (another base rule?)")
    for k, buf in moments.items():
        src = saved[k]
        if tuple(src.shape) != tuple(buf.shape):
            raise InputError(f"state_dict: moment {k!r} has shape {tuple(src.shape)}")
    names = [u["name"] for u in sd["umm"]]
    if names != umms:
        raise InputError(f"state_dict: UMMs {names} differ from {umms}")


class Checkpointing:
    """``state_dict`` / ``load_state_dict`` of a :class:`MultiTaskUpdate` (see the module)."""

    _rule: Any
    _per_task: bool
    _moments: dict[str, torch.Tensor]
    _tables: Any
    _umms: list[Any]
    _umm_state: list[dict[str, Any]]
    _task_opt: torch.optim.Optimizer | None
    _t: int
    _calls: int
    param_groups: list[dict[str, Any]]
    stats: dict[str, int]
    last: LastStep

    def _extra_state(self) -> dict[str, Any]:
        """The balance's part of the checkpoint (key ``"extra"``)."""
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        """Everything needed to resume bit for bit: hyperparameters, moments, counters, α."""
        return {
            "format": "mtopt.optim",
            "version": 1,
            "class": type(self).__name__,
            "base": self._rule.name,
            "per_task_moments": self._per_task,
            "param_groups": [
                {**{k: v for k, v in g.items() if k != "params"}, "num_params": len(g["params"])}
                for g in self.param_groups
            ],
            "shared": {
                "t": self._t,
                "calls": self._calls,
                "moments": {k: v.detach().clone() for k, v in self._moments.items()},
                "rows": self._tables.state_dict(),
            },
            "umm": [
                {"name": u.name, "state": dict(s)} for u, s in zip(self._umms, self._umm_state)
            ],
            # deep copies: torch's state_dict aliases live tensors, a checkpoint must not
            "task_optimizer": (
                None if self._task_opt is None else copy.deepcopy(self._task_opt.state_dict())
            ),
            "stats": self.stats,
            "extra": self._extra_state(),
        }

    def _check_state_dict(self, sd: Any) -> None:
        check_state_dict(
            sd, type(self).__name__, self._rule.name, self._per_task, self.param_groups,
            self._moments, [u.name for u in self._umms],
        )  # fmt: skip

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # type: ignore[override]
        """Restore from :meth:`state_dict` (same class, base rule, UMMs and parameter sizes)."""
        sd = state_dict
        self._check_state_dict(sd)
        saved = sd["shared"]["moments"]
        for k, buf in self._moments.items():
            buf.copy_(saved[k])
        for g, mine in zip(sd["param_groups"], self.param_groups):
            mine.update({k: v for k, v in g.items() if k != "num_params"})
        self._tables.load_state_dict(sd["shared"].get("rows", []))
        self._t = int(sd["shared"]["t"])
        self._calls = int(sd["shared"]["calls"])
        self._umm_state = [dict(u["state"]) for u in sd["umm"]]
        if (sd["task_optimizer"] is None) != (self._task_opt is None):
            raise InputError("state_dict: task-specific parameters differ")
        if self._task_opt is not None:
            self._task_opt.load_state_dict(copy.deepcopy(sd["task_optimizer"]))
        self.stats = dict(sd["stats"])
        self.last = LastStep(step=self._calls)
        self._load_extra_state(sd["extra"])
