"""Checks of a built run that need the built components: the training split can give a batch,
and the data fits the model (categorical ids within a bounded embedding table).

They run before anything on disk changes (:meth:`mtopt.train.trainer.Trainer.run`,
:func:`mtopt.train.build.build_components`); every error is an
:class:`~mtopt.errors.InputError` naming the recipe file, the field or the data file and column.
"""

from __future__ import annotations

from typing import Any

from mtopt.config import Recipe
from mtopt.errors import InputError

#: the largest embedding table a categorical field may ask for, unless ``data.max_vocab`` says
#: otherwise: ids must be < this (10 M rows ≈ 40 MB per embedding dimension in float32)
DEFAULT_MAX_VOCAB = 10_000_000
#: recipe fields of ``data`` that the composition root reads itself (not passed to the dataset)
ROOT_DATA_OPTIONS = ("max_vocab", "allow_leakage")


def max_vocab(recipe: Recipe, source: str = "recipe") -> int:
    """``data.max_vocab`` (default :data:`DEFAULT_MAX_VOCAB`), checked."""
    v = recipe.data.kwargs().get("max_vocab", DEFAULT_MAX_VOCAB)
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise InputError(f"{source}: data.max_vocab: a positive integer, got {v!r}")
    return v


def dataset_kwargs(recipe: Recipe) -> dict[str, Any]:
    """``data`` options handed to the dataset (those of :data:`ROOT_DATA_OPTIONS` removed)."""
    return {k: v for k, v in recipe.data.kwargs().items() if k not in ROOT_DATA_OPTIONS}


def check_vocab(dataset: Any, recipe: Recipe, source: str = "recipe") -> None:
    """Every categorical field's table size (largest id + 1) is at most ``data.max_vocab``."""
    bound = max_vocab(recipe, source)
    cards = list(getattr(dataset.schema, "cat_cardinalities", []) or [])
    cols = list(getattr(dataset, "cat_cols", []) or [])
    for j, card in enumerate(cards):
        if int(card) > bound:
            extra = getattr(dataset.schema, "extra", {}) or {}
            where = f"column {cols[j]}" if j < len(cols) else f"categorical field {j}"
            files = [str(extra[k]) for k in ("train_file", "test_file") if k in extra]
            if files:
                where = f"{' / '.join(files)}: {where}"
            raise InputError(
                f"{source}: data.max_vocab: {where}: ids up to {int(card) - 1} would need an "
                f"embedding table of {int(card)} rows > data.max_vocab = {bound}; map the ids "
                "to 0..k-1, or raise data.max_vocab"
            )


def check_train_split(dataset: Any, recipe: Recipe, source: str, world_size: int = 1) -> None:
    """The training split gives at least one batch (rows ≥ processes): an empty split is bad
    input, not a run of zero steps (or an endless loop)."""
    rows = dataset.num_rows("train")
    if rows is None:  # a stream that does not know its length: look at its first batch
        first = next(iter(dataset.batches("train", recipe.optimizer.batch_size)), None)
        rows = 0 if first is None else int(first["labels"].shape[0])
    if rows >= max(1, world_size):
        return
    kw = recipe.data.kwargs()
    extra = getattr(dataset.schema, "extra", {}) or {}
    if "n_train" in kw:
        field = "data.n_train"
    elif "train_file" in extra:
        field = f"data: {extra['train_file']}"
    else:
        field = "data"
    need = "at least one row" if world_size <= 1 else f"at least {world_size} rows (one a process)"
    raise InputError(
        f"{source}: {field}: the training split has {rows} row(s); training needs {need}"
    )
