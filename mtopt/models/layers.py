"""Building blocks of the backbones: field embeddings + dense input, MLPs, expert groups, gates,
towers, and the packing of a shared representation.

All layers are float32 and initialised from torch's global generator, so a caller's
``torch.manual_seed`` makes a model reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from mtopt.data.base import Schema
from mtopt.errors import InputError

#: the input layer's options (:class:`InputLayer`; every built-in backbone takes them)
INPUT_OPTIONS = ("embed_dim", "dense_dim", "embed_user", "embed_init_std")
#: options of every built-in backbone with a shared part and towers
COMMON_OPTIONS = (*INPUT_OPTIONS, "tower_dims", "dropout", "esmm", "pack_representation")


def check_options(kind: str, name: str, given: dict[str, Any], known: Sequence[str]) -> None:
    """Reject unknown ``model.*`` options, naming the field and the known ones."""
    names = ", ".join(sorted(known))
    for key in given:
        if key not in known:
            raise InputError(f"model.{key}: unknown option for {kind} {name!r} (known: {names})")


def positive_int(field: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int ``>= minimum``, else :class:`InputError` naming ``model.<field>``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or int(value) != value
        or value < minimum
    ):
        raise InputError(f"model.{field}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def int_list(field: str, value: Any, allow_empty: bool = True) -> list[int]:
    """A list of positive ints (a single int is a one-element list)."""
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        value = [value]  # a single value (positive_int says what is wrong with it)
    values = list(value)
    if not values and not allow_empty:
        raise InputError(f"model.{field}: expected at least one width")
    return [positive_int(field, v) for v in values]


class InputLayer(nn.Module):
    """Field embeddings + dense input → one flat vector per row (the shared input).

    - every categorical field ``j`` has its own ``embed_dim``-wide table (stored as one table
      with per-field offsets, so one gather serves all fields);
    - the ``F`` dense features go through ``Linear(F, dense_dim)`` (``dense_dim=None``: equal
      to ``embed_dim`` when the schema has categorical fields, else ``0``; ``dense_dim=0``:
      the raw features are passed through unprojected);
    - with ``schema.n_users > 0`` and ``embed_user`` the user id is one more embedded field.

    Output width :attr:`out_dim`. Embeddings start as ``N(0, embed_init_std²)``.
    """

    def __init__(
        self,
        schema: Schema,
        embed_dim: int = 16,
        dense_dim: int | None = None,
        embed_user: bool = True,
        embed_init_std: float = 0.05,
    ) -> None:
        super().__init__()
        self.embed_dim = positive_int("embed_dim", embed_dim)
        self.n_fields = len(schema.cat_cardinalities)
        self.n_dense = int(schema.n_dense)
        cards = [int(c) for c in schema.cat_cardinalities]
        if any(c < 1 for c in cards):
            raise InputError(f"schema: categorical cardinalities must be >= 1, got {cards}")
        self.embedding: nn.Embedding | None = None
        if cards:
            self.embedding = nn.Embedding(sum(cards), self.embed_dim)
            nn.init.normal_(self.embedding.weight, std=embed_init_std)
            offsets = torch.tensor([0] + cards[:-1], dtype=torch.long).cumsum(0)
            self.register_buffer("offsets", offsets, persistent=False)
        if dense_dim is None:
            dense_dim = self.embed_dim if cards else 0
        self.dense_dim = positive_int("dense_dim", dense_dim, minimum=0)
        self.dense: nn.Linear | None = None
        if self.n_dense and self.dense_dim:
            self.dense = nn.Linear(self.n_dense, self.dense_dim)
        dense_out = (self.dense_dim if self.dense_dim else self.n_dense) if self.n_dense else 0
        self.user: nn.Embedding | None = None
        if schema.n_users > 0 and embed_user:
            self.user = nn.Embedding(int(schema.n_users), self.embed_dim)
            nn.init.normal_(self.user.weight, std=embed_init_std)
        self.out_dim = (
            self.n_fields * self.embed_dim + dense_out + (self.embed_dim if self.user else 0)
        )
        if self.out_dim == 0:
            raise InputError("schema: the dataset has no input features")

    def forward(self, batch: dict) -> torch.Tensor:
        pieces = []
        if self.embedding is not None:
            cat = batch["cat"]
            pieces.append(self.embedding(cat + self.offsets).flatten(1))
        if self.n_dense:
            dense = batch["dense"]
            pieces.append(self.dense(dense) if self.dense is not None else dense)
        if self.user is not None:
            if "user" not in batch:
                raise InputError(
                    "batch: the schema declares n_users > 0 but the batch has no 'user'"
                )
            pieces.append(self.user(batch["user"]))
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=1)


class MLP(nn.Sequential):
    """``Linear → ReLU (→ Dropout)`` for each width in ``dims`` (no output layer)."""

    def __init__(self, in_dim: int, dims: Sequence[int], dropout: float = 0.0) -> None:
        layers: list[nn.Module] = []
        for width in dims:
            layers += [nn.Linear(in_dim, width), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            in_dim = width
        super().__init__(*layers)
        self.out_dim = in_dim


class Tower(nn.Module):
    """A task tower: :class:`MLP` over ``dims`` and a final ``Linear(·, 1)`` → logits ``[B]``."""

    def __init__(self, in_dim: int, dims: Sequence[int], dropout: float = 0.0) -> None:
        super().__init__()
        self.mlp = MLP(in_dim, dims, dropout)
        self.out = nn.Linear(self.mlp.out_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.mlp(x)).squeeze(-1)


class ExpertGroup(nn.Module):
    """``n`` single-layer experts ``ReLU(W_k x + b_k)`` reading the same input, computed as one
    ``Linear(in, n·out)``; output ``[B, n, out]`` (PUB paper §VI-A2: single-layer experts)."""

    def __init__(self, in_dim: int, n: int, out_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.n, self.out_dim = n, out_dim
        self.linear = nn.Linear(in_dim, n * out_dim)
        self.dropout = nn.Dropout(dropout) if dropout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.linear(x)).view(x.shape[0], self.n, self.out_dim)
        return self.dropout(h) if self.dropout is not None else h


class Gate(nn.Module):
    """A softmax gate over ``n`` experts: ``softmax(W x + b)`` → ``[B, n]``."""

    def __init__(self, in_dim: int, n: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.linear(x), dim=-1)


def mix(weights: torch.Tensor, *groups: torch.Tensor) -> torch.Tensor:
    """``Σ_k weights[:, k] · experts[:, k, :]`` with the experts given as consecutive groups
    ``[B, n_g, H]`` (no concatenation copy); ``weights`` is ``[B, Σ n_g]``."""
    out = None
    start = 0
    for g in groups:
        w = weights[:, start : start + g.shape[1]].unsqueeze(-1)
        term = (w * g).sum(dim=1)
        out = term if out is None else out + term
        start += g.shape[1]
    assert out is not None and start == weights.shape[1]
    return out


class Route:
    """Where :func:`pack`'s heads send their gradient: through ``z`` (``via_z``, set once
    ``z`` has been handed out, e.g. read as ``model.representation``) or straight to the parts."""

    __slots__ = ("via_z",)

    def __init__(self) -> None:
        self.via_z = False


class _Unpack(torch.autograd.Function):
    """The heads' inputs as aliases of the (contiguous) parts, with ``z`` as an input.

    Backward: while nobody holds ``z`` (``route.via_z`` false) the heads' gradients go to the
    parts directly; otherwise to ``z`` as one concatenation, from where ``cat``'s backward
    slices them back to the parts. The parts receive the same values either way (a copy is
    no arithmetic), so only the cost differs: the direct route assembles no full-width ``∂z``
    in each backward pass (docs/pub.md, "Per-step cost")."""

    @staticmethod
    def forward(z: torch.Tensor, route: Route, *parts: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(p.view_as(p) for p in parts)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        ctx.route = inputs[1]

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        if ctx.route.via_z:
            dz = torch.cat([g.reshape(g.shape[0], -1) for g in grads], dim=1)
            return (dz, None, *(None for _ in grads))
        return (None, None, *grads)


def pack(
    parts: Sequence[torch.Tensor], route: Route | None = None
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Concatenate ``parts`` (each ``[B, …]``) into one ``[B, D]`` tensor ``z`` and return the
    tensors the heads read, with the original shapes. Every path from the shared parameters to
    the task outputs goes through ``z``, so that ``∂L_i/∂z`` is a complete shared-representation
    gradient (MGDA-UB, Sener & Koltun, NeurIPS 2018, §3.3).

    Without ``route`` the heads read views of ``z``. With a :class:`Route` they read aliases of
    the parts (:class:`_Unpack`) whose gradient goes through ``z`` only once ``route.via_z`` is
    set — bit for bit the same gradients, without a full-width ``∂z`` per backward pass."""
    if len(parts) == 1 and parts[0].dim() == 2:
        return parts[0], [parts[0]]
    flat = [p.reshape(p.shape[0], -1) for p in parts]
    z = torch.cat(flat, dim=1)
    if route is not None:
        return z, list(_Unpack.apply(z, route, *parts))
    # one split (not many slices): its backward assembles ∂z with a single concatenation
    pieces = torch.split(z, [f.shape[1] for f in flat], dim=1)
    return z, [piece.view(p.shape) for piece, p in zip(pieces, parts)]
