"""Optuna, the optional extra: importing it, opening a storage and a study.

The storage is an SQLAlchemy URL (``sqlite:///study.db``; a server database such as
``postgresql://…`` for several machines). SQLite is opened with a 60 s lock timeout, so
several processes on one machine can share it.
"""

from __future__ import annotations

from typing import Any

from mtopt.errors import InputError

#: the error of ``mtopt tune`` without the optional ``optuna`` package
OPTUNA_MISSING = (
    "mtopt tune needs the 'optuna' package, an optional extra of mtopt (pip install 'mtopt[tune]')"
)


def require_optuna() -> Any:
    """The ``optuna`` module, or :class:`InputError` (:data:`OPTUNA_MISSING`)."""
    try:
        import optuna
    except ImportError:
        raise InputError(OPTUNA_MISSING) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def open_storage(url: str) -> Any:
    """An Optuna RDB storage for ``url`` (InputError naming ``storage`` when it cannot open)."""
    optuna = require_optuna()
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs = {"connect_args": {"timeout": 60}}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy's errors are many; one line for all
        raise InputError(
            f"storage: cannot open {url!r} ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
            "give an SQLAlchemy URL such as sqlite:///study.db"
        ) from None


def open_study(storage: Any, name: str) -> Any:
    """The study ``name`` (created if new), maximising, TPE, no pruner (every trial trains to
    the end: equal budgets). TPE is seeded per process (the study name and the process id):
    two processes on one study must not propose the same first values."""
    import hashlib
    import os

    optuna = require_optuna()
    seed = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) ^ os.getpid()
    sampler = optuna.samplers.TPESampler(seed=seed)
    return optuna.create_study(
        storage=storage,
        study_name=name,
        direction="maximize",
        sampler=sampler,
        pruner=optuna.pruners.NopPruner(),
        load_if_exists=True,
    )
