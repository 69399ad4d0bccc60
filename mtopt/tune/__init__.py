"""Hyperparameter tuning with equal budgets, then a test table (``mtopt tune``; Optuna, the
optional extra ``mtopt[tune]``).

For each (recipe, backbone, method) *cell* of a sweep, one Optuna study searches the method's
learning rate (log-uniform) and any field its spec gives as a range (``cagrad[c=0.1..0.9]``,
``pub[alpha_scale=frobenius|exact]``, :mod:`~mtopt.tune.space`) on the validation AUC average,
with the same number of trials for every method (TPE or a grid; no pruning, so every trial
trains to the end). The best setting of each cell is retrained with the test seeds and reduced
to a Table III-style test table by the sweep's machinery.

Every trial is a run of :mod:`mtopt.sweep` (recipe key, folder under a shared runs folder), so
a run a sweep already trained is reused, and the study lives in an Optuna storage (an SQLite
file by default, or any SQLAlchemy URL): an interrupted tuning resumes, and several processes,
on one machine or several, share a study without training any setting twice
(:mod:`~mtopt.tune.trials`).

Files, one concept each, a module importing only those above it:

- :mod:`~mtopt.tune.space`: :class:`Space`, :class:`Dim`, :func:`method_space`, the ranges.
- :mod:`~mtopt.tune.config`: :class:`TuneConfig`.
- :mod:`~mtopt.tune.study`: importing Optuna (:data:`OPTUNA_MISSING`), storage, study.
- :mod:`~mtopt.tune.trials`: :func:`run_study` (the budget, duplicates, interruptions).
- :mod:`~mtopt.tune.tables`: the tuned-settings table, ``tuned.json``, ``trials.png``.
- :mod:`~mtopt.tune.runner`: :func:`run_tune` (studies → tuned settings → test table).
- :mod:`~mtopt.tune.presets`: :data:`TUNE_EXPERIMENTS` (``mtopt reproduce tuned``).
"""

from __future__ import annotations

from mtopt.tune.config import SAMPLERS, TuneConfig
from mtopt.tune.presets import TUNE_EXPERIMENTS, tune_experiment
from mtopt.tune.runner import TuneResult, cells_of, run_studies, run_tune, summarize
from mtopt.tune.space import LR_KEY, Dim, Space, method_space, parse_range
from mtopt.tune.study import OPTUNA_MISSING, open_storage, open_study, require_optuna
from mtopt.tune.trials import counted_trials, reap_interrupted, run_study

__all__ = [
    "LR_KEY",
    "OPTUNA_MISSING",
    "SAMPLERS",
    "TUNE_EXPERIMENTS",
    "Dim",
    "Space",
    "TuneConfig",
    "TuneResult",
    "cells_of",
    "counted_trials",
    "method_space",
    "open_storage",
    "open_study",
    "parse_range",
    "reap_interrupted",
    "require_optuna",
    "run_studies",
    "run_study",
    "run_tune",
    "summarize",
    "tune_experiment",
]
