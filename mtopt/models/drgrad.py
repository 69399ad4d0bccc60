"""DRGrad's split-tower backbone with a PPNet-style personalised gate.

Liu, Miao & Xia, "Direct Routing Gradient (DRGrad): A Personalized Information Surgery for
Multi-Task Learning (MTL) Recommendations", AAAI 2025 (arXiv:2510.09643), Figure 2. Only the
abstract and the figure captions are available to us; every design choice below and where it
comes from (caption, the authors' TensorFlow code, or our interpretation) is listed in
``docs/drgrad.md``.

Structure (Figure 2, "Split-MMoE")::

    x = [field embeddings ‖ dense]                     shared
    E_k = expert_k(x), k = 1..K                        shared
    v_s = Σ_k softmax(G_s(x))_k E_k                    shared gate G_s
    v_1 = Σ_k softmax(G_1(x))_k E_k                    primary task's dedicated gate G_1
    logit_primary = μ′·T1′(v_1) + μ″·T1″(v_s)          T1′, T1″: primary task's split tower
    logit_j       = T_j(v_s)        (j ≠ primary)      auxiliary towers share v_s with T1″

μ′, μ″ are a buffer (not trained by back-propagation) written by the DRGrad method's updater
network; they are 1 by default, so with any other method the backbone is the plain split tower
``T1′(v_1) + T1″(v_s)``. All towers have the same architecture, so their parameters are aligned
tensor by tensor (what the router needs).

The personalised gate G_p (PPNet, Chang et al., "PEPNet", KDD 2023, "Gate NU") scales every
hidden layer of every tower by ``2·sigmoid(MLP([e_user ‖ stop_grad(v)]))``; its last layer is
zero-initialised so the gate starts as the identity. It exists only when the schema has users
(``schema.n_users > 0``); without a user field the gate is disabled and the model is the plain
split tower.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from mtopt.data.base import Schema
from mtopt.errors import InputError
from mtopt.models.base import MultiTaskModel

#: router scopes: which tower tensors the router edits
SCOPES = ("first", "all")


class PersonalGate(nn.Module):
    """PPNet gate unit: ``2·sigmoid(W₂ relu(W₁ p + b₁) + b₂)`` with ``W₂ = b₂ = 0`` at init.

    Chang et al., "PEPNet: Parameter and Embedding Personalized Network for Infusing with
    Personalized Prior Information", KDD 2023 (Gate NU, γ = 2); used as DRGrad's G_p (Fig. 2).
    """

    def __init__(self, d_in: int, hidden: int, width: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(d_in, hidden)
        self.out = nn.Linear(hidden, width)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        """Per-sample multiplicative gate ``Tensor[B, width]`` in (0, 2)."""
        return 2.0 * torch.sigmoid(self.out(torch.relu(self.hidden(p))))


class Tower(nn.Module):
    """A task tower ``d_in → hidden… → 1`` (ReLU), optionally PPNet-gated after each hidden layer.

    ``layers`` are the tensors the DRGrad router may edit (``route_parameters``); the gates are
    not routed.
    """

    def __init__(
        self, d_in: int, hidden: Sequence[int], user_dim: int = 0, gate_hidden: int = 16
    ) -> None:
        super().__init__()
        dims = [d_in, *hidden, 1]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.gates: nn.ModuleList | None = None
        if user_dim > 0:
            self.gates = nn.ModuleList(
                PersonalGate(user_dim + d_in, gate_hidden, w) for w in hidden
            )

    def forward(self, v: torch.Tensor, user_emb: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``Tensor[B]`` of input ``v``; ``user_emb`` is required iff the tower is gated."""
        h = v
        p = None
        if self.gates is not None:
            assert user_emb is not None
            # PPNet: the gate reads the personal embedding and the stop-gradient general input
            p = torch.cat([user_emb, v.detach()], dim=1)
        for k, layer in enumerate(self.layers[:-1]):
            h = torch.relu(layer(h))
            if self.gates is not None:
                h = h * self.gates[k](p)
        return self.layers[-1](h).squeeze(-1)

    def route_parameters(self, scope: str = "first") -> list[nn.Parameter]:
        """Tensors the router edits: the first layer's weight (``first``, as the authors' code
        edits the first tower kernel) or every tower layer's weight and bias (``all``)."""
        if scope == "first":
            return [self.layers[0].weight]
        if scope == "all":
            return [p for layer in self.layers for p in layer.parameters()]
        raise InputError(f"method.scope: unknown scope {scope!r} (known: {', '.join(SCOPES)})")


def _unpack(z: torch.Tensor, widths: Sequence[int]) -> list[torch.Tensor]:
    out, k = [], 0
    for w in widths:
        out.append(z[:, k : k + w])
        k += w
    return out


def _mlp(d_in: int, dims: Sequence[int]) -> nn.Sequential:
    mods: list[nn.Module] = []
    for d in dims:
        mods += [nn.Linear(d_in, d), nn.ReLU()]
        d_in = d
    return nn.Sequential(*mods)


class DRGradModel(MultiTaskModel):
    """DRGrad's split-tower Split-MMoE backbone with a PPNet gate.

    Liu, Miao & Xia, AAAI 2025, Figure 2; see the module docstring and ``docs/drgrad.md``.

    Args:
        schema: the dataset schema; ``schema.n_users > 0`` enables the personalised gate.
        embed_dim: size of each categorical field's embedding.
        n_experts: number of shared experts K.
        expert_hidden: hidden sizes of each expert MLP.
        expert_dim: output size of each expert (= size of v_1 and v_s).
        tower_dims: hidden sizes of every tower (all towers identical, hence aligned).
        primary: the primary task (index or name) whose tower is split into T1′ and T1″.
        ppnet: ``None`` = gate iff the schema has users; ``True`` requires users; ``False`` off.
        user_dim: size of the user embedding fed to the gate.
        gate_hidden: hidden size of each gate unit.
    """

    def __init__(
        self,
        schema: Schema,
        *,
        embed_dim: int = 8,
        n_experts: int = 4,
        expert_hidden: Sequence[int] = (64,),
        expert_dim: int = 32,
        tower_dims: Sequence[int] = (32,),
        primary: int | str = 0,
        ppnet: bool | None = None,
        user_dim: int = 8,
        gate_hidden: int = 16,
    ) -> None:
        super().__init__()
        self.task_names = list(schema.task_names)
        self.n_tasks = len(self.task_names)
        if self.n_tasks < 2:
            raise InputError(
                f"model.name: drgrad needs at least 2 tasks (a primary and an auxiliary one); "
                f"the dataset has {self.n_tasks}"
            )
        for field, value in (
            ("embed_dim", embed_dim),
            ("n_experts", n_experts),
            ("expert_dim", expert_dim),
            ("user_dim", user_dim),
            ("gate_hidden", gate_hidden),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"model.{field}: must be a positive integer, got {value!r}")
        for field, dims in (("expert_hidden", expert_hidden), ("tower_dims", tower_dims)):
            if isinstance(dims, (str, bytes)) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in dims
            ):
                raise InputError(
                    f"model.{field}: must be a list of positive integers, got {dims!r}"
                )
        if not tower_dims and ppnet:
            raise InputError("model.ppnet: the gate needs at least one tower_dims layer")
        self.primary = self._resolve_primary(primary)
        self.aux_tasks = [i for i in range(self.n_tasks) if i != self.primary]

        n_users = int(schema.n_users or 0)
        if ppnet and n_users <= 0:
            raise InputError(
                "model.ppnet: the personalised gate needs a dataset with a user field "
                "(schema.n_users > 0); set model.ppnet: false or use such a dataset"
            )
        self.use_ppnet = bool(n_users > 0 and ppnet is not False and len(tower_dims) > 0)
        self.n_users = n_users

        self.embeddings = nn.ModuleList(
            nn.Embedding(int(c), embed_dim) for c in schema.cat_cardinalities
        )
        self.n_dense = int(schema.n_dense)
        d_x = embed_dim * len(self.embeddings) + self.n_dense
        if d_x == 0:
            raise InputError("dataset: drgrad needs at least one categorical or dense feature")
        self.experts = nn.ModuleList(
            _mlp(d_x, [*expert_hidden, expert_dim]) for _ in range(n_experts)
        )
        self.gate_shared = nn.Linear(d_x, n_experts)  # G for v_s (shared by T1″ and T_j)
        self.gate_primary = nn.Linear(d_x, n_experts)  # G for v_1 (primary task only)

        ud = user_dim if self.use_ppnet else 0
        self.user_embedding = nn.Embedding(n_users, user_dim) if self.use_ppnet else None
        self.tower_prime = Tower(expert_dim, tower_dims, ud, gate_hidden)  # T1′(v_1)
        self.tower_second = Tower(expert_dim, tower_dims, ud, gate_hidden)  # T1″(v_s)
        self.aux_towers = nn.ModuleList(
            Tower(expert_dim, tower_dims, ud, gate_hidden) for _ in self.aux_tasks
        )
        # μ′, μ″: written by the DRGrad updater, 1 by default (plain split tower)
        self.register_buffer("mu", torch.ones(2))

    def _resolve_primary(self, primary: int | str) -> int:
        if isinstance(primary, str):
            if primary not in self.task_names:
                raise InputError(
                    f"model.primary: unknown task {primary!r} (tasks: {', '.join(self.task_names)})"
                )
            return self.task_names.index(primary)
        if isinstance(primary, bool) or not isinstance(primary, int):
            raise InputError(f"model.primary: a task index or name, got {primary!r}")
        if not 0 <= primary < self.n_tasks:
            raise InputError(f"model.primary: index {primary} out of range [0, {self.n_tasks})")
        return primary

    def __getstate__(self) -> dict[str, Any]:
        # ``representation`` holds the last forward's graph: drop it so the model can be
        # deep-copied and pickled after a forward pass
        state = self.__dict__.copy()
        state["representation"] = None
        return state

    # -- forward ---------------------------------------------------------------------------
    def _inputs(self, batch: dict) -> torch.Tensor:
        parts = []
        if self.embeddings:
            cat = batch["cat"]
            parts += [emb(cat[:, j]) for j, emb in enumerate(self.embeddings)]
        if self.n_dense:
            parts.append(batch["dense"].to(torch.float32))
        return torch.cat(parts, dim=1)

    def _user(self, batch: dict) -> torch.Tensor | None:
        if self.user_embedding is None:
            return None
        if "user" not in batch:
            raise InputError(
                "batch field 'user': the drgrad model was built with a personalised gate "
                "(schema.n_users > 0) but the batch has no user ids; set model.ppnet: false"
            )
        return self.user_embedding(batch["user"])

    def branches(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(T1′(v_1), T1″(v_s), aux logits [B, n−1])`` before the μ aggregation."""
        x = self._inputs(batch)
        experts = torch.stack([e(x) for e in self.experts], dim=1)  # [B, K, d]
        a_s = torch.softmax(self.gate_shared(x), dim=1)
        u = self._user(batch)
        # pack everything computed from shared parameters only into one tensor z, so that every
        # loss depends on the shared parameters only through ``representation`` (MGDA-UB)
        B, K, d = experts.shape
        parts = [experts.reshape(B, K * d), a_s, x] + ([u] if u is not None else [])
        z = torch.cat(parts, dim=1)
        self.representation = z
        experts, a_s, x, u_z = _unpack(z, [K * d, K, x.shape[1], 0 if u is None else u.shape[1]])
        experts = experts.reshape(B, K, d)
        u = u_z if u is not None else None
        v_s = torch.einsum("bk,bkd->bd", a_s, experts)
        v_1 = torch.einsum("bk,bkd->bd", torch.softmax(self.gate_primary(x), dim=1), experts)
        t_prime = self.tower_prime(v_1, u)
        t_second = self.tower_second(v_s, u)
        aux = torch.stack([t(v_s, u) for t in self.aux_towers], dim=1)
        return t_prime, t_second, aux

    def forward(self, batch: dict) -> torch.Tensor:
        """Per-task logits ``Tensor[B, n_tasks]`` in ``schema.task_names`` order."""
        t_prime, t_second, aux = self.branches(batch)
        primary = self.mu[0] * t_prime + self.mu[1] * t_second
        cols = list(aux.unbind(dim=1))
        cols.insert(self.primary, primary)
        return torch.stack(cols, dim=1)

    # -- split -----------------------------------------------------------------------------
    def shared_parameters(self) -> list[nn.Parameter]:
        """Embeddings, experts, the shared gate G_s and the user embedding."""
        mods: list[nn.Module] = [self.embeddings, self.experts, self.gate_shared]
        if self.user_embedding is not None:
            mods.append(self.user_embedding)
        return [p for m in mods for p in m.parameters()]

    def task_parameters(self, i: int) -> list[nn.Parameter]:
        """Primary: G_1, T1′, T1″ (with their gates); auxiliary task: its tower (with gates)."""
        if i == self.primary:
            mods: list[nn.Module] = [self.gate_primary, self.tower_prime, self.tower_second]
            return [p for m in mods for p in m.parameters()]
        return list(self.aux_towers[self.aux_tasks.index(i)].parameters())

    def aux_tower(self, i: int) -> Tower:
        """The tower of auxiliary task ``i`` (a task index, not the primary)."""
        return self.aux_towers[self.aux_tasks.index(i)]


def build(
    schema: Schema,
    *,
    embed_dim: int = 8,
    n_experts: int = 4,
    expert_hidden: Sequence[int] = (64,),
    expert_dim: int = 32,
    tower_dims: Sequence[int] = (32,),
    primary: int | str = 0,
    ppnet: bool | None = None,
    user_dim: int = 8,
    gate_hidden: int = 16,
) -> DRGradModel:
    """Registered factory of backbone ``drgrad`` (the options of :class:`DRGradModel`)."""
    return DRGradModel(
        schema,
        embed_dim=embed_dim,
        n_experts=n_experts,
        expert_hidden=tuple(expert_hidden) if isinstance(expert_hidden, list) else expert_hidden,
        expert_dim=expert_dim,
        tower_dims=tuple(tower_dims) if isinstance(tower_dims, list) else tower_dims,
        primary=primary,
        ppnet=ppnet,
        user_dim=user_dim,
        gate_hidden=gate_hidden,
    )
