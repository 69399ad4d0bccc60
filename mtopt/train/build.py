"""The composition root of a run: recipe -> dataset, model (on its device) and method.

Names are resolved once, by :func:`mtopt.train.components.resolve_components`; the components
are then built from the resolved objects (and an α solver or UMM named in the recipe reaches the
method as an object, not a name).

:func:`build_components` is what ``mtopt train`` (through :class:`~mtopt.train.trainer.Trainer`),
``mtopt sweep`` and the bench scripts call to turn a validated recipe into the three components;
:func:`embedding_kwargs` adds the method options of ``method.embeddings``.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from mtopt.config import Recipe
from mtopt.errors import InputError, RunError
from mtopt.train.checkpoint import seed_everything
from mtopt.train.components import resolve_components
from mtopt.train.validate import check_vocab, dataset_kwargs

_SECTIONS = ("data.", "model.", "method.", "optimizer.", "train.", "output.")


def build_components(
    recipe: Recipe, device: str = "cpu", source: str = "recipe"
) -> tuple[Any, Any, Any]:
    """Dataset, model (on ``device``) and method of a recipe, seeded from ``train.seed``.

    An :class:`InputError` of a component that names a recipe field (``data.rows: ...``) is
    prefixed with ``source`` so that the message names the file too.
    """
    from mtopt.models.base import check_split

    found = resolve_components(recipe, source)  # every name, once
    seed = recipe.train.seed
    section = "data"  # the section whose component is being built (for errors)
    try:
        seed_everything(seed)
        dataset = found.dataset.load()(**dataset_kwargs(recipe))
        check_vocab(dataset, recipe, source)  # before the model sizes its tables
        seed_everything(seed)  # model init independent of how much RNG the dataset used
        section = "model"
        model = found.backbone.load()(dataset.schema, **recipe.model.kwargs())
        model.to(device)
        try:
            check_split(model)
        except AssertionError as exc:
            raise RunError(
                f"backbone {recipe.model.name!r}: bad shared/task split: {exc}"
            ) from None
        section = "method"
        method = found.method.load()(
            model,
            recipe.optimizer.to_optimizer_config(),
            **found.method_kwargs(recipe),
            **embedding_kwargs(recipe, model, source),
        )
    except InputError as exc:
        msg = str(exc)
        if msg.startswith(_SECTIONS):
            raise type(exc)(f"{source}: {msg}") from None
        # "fixed_alpha: ..." from a component's own check: name the recipe field it came from
        key = msg.split(":", 1)[0].strip()
        owners = [
            s
            for s, kw in (
                ("method", recipe.method.kwargs()),
                ("model", recipe.model.kwargs()),
                ("data", recipe.data.kwargs()),
                ("optimizer", recipe.optimizer.model_dump()),
            )
            if key in kw
        ]
        if len(owners) == 1:
            raise type(exc)(f"{source}: {owners[0]}.{msg}") from None
        if key in ("row_wise", "plain") and recipe.method.embeddings:  # embedding_kwargs'
            rest = msg.split(":", 1)[1].strip()
            raise type(exc)(
                f"{source}: method.embeddings: {recipe.method.embeddings!r}: {rest}"
            ) from None
        raise
    except (TypeError, ValueError) as exc:
        # a factory taking **kwargs that forwards them to a fixed signature
        m = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        if m is None:  # a value of the wrong type that the component's own checks missed
            raise _bad_value(exc, recipe, section, source) from None
        key = m.group(1)
        section = next(
            (
                s
                for s, kw in (
                    ("method", recipe.method.kwargs()),
                    ("model", recipe.model.kwargs()),
                    ("data", recipe.data.kwargs()),
                )
                if key in kw
            ),
            None,
        )
        if section is None and key in ("row_wise", "plain"):
            raise InputError(
                f"{source}: method.embeddings: {recipe.method.embeddings!r} is only supported "
                f"by the pub methods, not {recipe.method.name!r}; remove it (or use balanced)"
            ) from None
        if section is None:
            raise
        name = getattr(recipe, section).name
        raise InputError(
            f"{source}: {section}.{key}: {section} {name!r} does not take {key!r} "
            "(see docs/recipes.md and the component's documentation)"
        ) from None
    return dataset, model, method


def _bad_value(exc: Exception, recipe: Recipe, section: str, source: str) -> InputError:
    """An :class:`InputError` naming the section whose component rejected an option value."""
    name = getattr(recipe, section).name
    first = (str(exc).strip().splitlines() or [""])[0]
    return InputError(
        f"{source}: {section}: {section} {name!r} cannot be built from its options "
        f"({type(exc).__name__}: {first}); check the types and values of the {section}.* "
        "fields (docs/recipes.md)"
    )


def embedding_kwargs(recipe: Recipe, model: Any, source: str = "recipe") -> dict[str, Any]:
    """The method keyword arguments of ``method.embeddings`` (PUB's ``row_wise`` / ``plain``).

    The tables are the weights of the backbone's ``nn.Embedding`` / ``nn.EmbeddingBag`` modules
    that are shared parameters; ``row-wise`` also switches those modules to sparse gradients.
    """
    mode = recipe.method.embeddings or "balanced"
    if mode == "balanced":
        return {}
    shared = {id(p) for p in model.shared_parameters()}
    mods = [
        m
        for m in model.modules()
        if isinstance(m, (torch.nn.Embedding, torch.nn.EmbeddingBag)) and id(m.weight) in shared
    ]
    if not mods:
        raise InputError(
            f"{source}: method.embeddings: backbone {recipe.model.name!r} has no shared "
            "embedding table; remove the field"
        )
    if mode == "row-wise":
        for m in mods:
            m.sparse = True
        return {"row_wise": [m.weight for m in mods]}
    return {"plain": [m.weight for m in mods]}
