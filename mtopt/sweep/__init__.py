"""Sweeps and the paper's experiments: recipe(s) × methods × backbones × seeds → tables.

A *sweep* (:class:`SweepConfig`) trains every combination of recipes, backbones, methods and
seeds, each as one run of :func:`mtopt.train.trainer` in its own folder, and reduces the runs to
one table. Five reducers (``SweepConfig.kind``) give the analogues of the PUB paper's tables
(Yuan, Cai & Dong, ICDM 2024):

- ``auc`` (Tables III and IV): per recipe, the test AUC of every task and their average, mean ±
  std over seeds; ``‡`` where a method is significantly better than its plain backbone (Welch's
  t-test, one-sided, ``p < 0.05``, :func:`welch_greater`); the best value of each column in bold
  (compared at the 4 decimals shown, ties all bold, :func:`best_rows`).
- ``ranking``: per recipe, the test AUC, GAUC, normalized entropy and log-loss of every task and
  the CVR AUC on clicked rows, mean ± std over seeds (best per column in bold; lowest NE).
- ``timing`` (Table V): CPU and wall seconds per epoch (training only, no evaluation),
  per-step and per-solve milliseconds, and the ratios to the plain backbone; one run at a time.
- ``diagnostics`` (Table I / §III): the per-step cosine similarity of gradient and update on the
  task-specific and on the shared parameters, Welch's t-test (two-sided) of each method against
  LS, the Diff metric (eq. (1)) and the Diff-vs-AUC pair analysis of Fig. 4.
- ``solvers``: one recipe trained with each α backend: AUCs, time per solve, share of failed
  solves, residuals.

Everything the paper's tables need is one command (:data:`EXPERIMENTS`, ``mtopt reproduce``;
``mtopt sweep --preset quick|standard|full`` is Table III).

**Run keys and resumability.** Each run is fully described by its validated recipe (overrides
applied, the ``method`` section replaced, backbone and seed set). Its key is a SHA-256 of the
values of that recipe that differ from the schema defaults, without the ``output`` section and
``train.threads`` (which do not change results), plus the observation mode (:func:`recipe_key`).
Code is not part of the key: each ``result.json`` records ``git describe`` of the tree that
produced it, and ``force=True`` re-runs everything. A run's folder ``<runs>/<label>__<key>``
receives ``result.json`` (written atomically when the run ends, ``status: ok`` or ``failed``
with the error); a later sweep skips every run whose ``result.json`` says ``ok`` with the same
key, and re-runs failed ones (unless ``retry_failed=False``). An interrupted run restarts from
scratch. Run folders can be shared by several sweeps (``mtopt reproduce`` shares
``results/runs``): identical runs are trained once. Two sweeps must not run at the same time on
the same runs folder.

**Backbones.** The recipe's ``model`` section is kept for its own backbone; for another backbone
only the keys all built-in backbones share (:data:`PORTABLE_MODEL_KEYS`) are kept, and the
backbone spec's own parameters are added (``ple[expert_dim=64,n_shared=4]``).

**Methods.** The recipe's ``method`` section is replaced by ``{name, **params}`` of the method
spec (``pub[solve_every=10,alpha_scale=exact]``), so no option of one method leaks into another.
Parameters named ``optimizer.KEY`` set the recipe's ``optimizer`` section for that method's runs
only (``ls[optimizer.lr=0.004]``: LS with twice the learning rate, as its own row).

**α fixed at 1.** The ablation "α = 1" is ``pub[fixed_alpha=1]`` (:class:`mtopt.optim.PUB`'s
``fixed_alpha``): the joint update is the sum of the per-task updates, which is what a PUB
whose solver silently fails does (DESIGN §2.8).

**Parallelism.** ``jobs > 1`` runs several runs at once in ``spawn``-ed worker processes, each
with ``torch.set_num_threads(1)`` (``train.threads`` is set to ``threads``, default 1, for every
run). ``timing`` sweeps always run one at a time.

**Files.** One concept per module; a module imports only those listed above it:

- :mod:`~mtopt.sweep.spec`: :class:`Spec` (``name[key=value,...]``), :func:`parse_specs`,
  display labels (:data:`METHOD_LABELS`, :data:`BACKBONE_LABELS`).
- :mod:`~mtopt.sweep.config`: :class:`SweepConfig`, :data:`KINDS`, :data:`OBSERVE`,
  :data:`SIZES`.
- :mod:`~mtopt.sweep.stats`: Welch's t-tests, :func:`best_rows`, :func:`diff_metric`, mean ±
  std, :data:`ALPHA_LEVEL`, :data:`DECIMALS`.
- :mod:`~mtopt.sweep._format`: number formatting for Markdown, JSON-safe values.
- :mod:`~mtopt.sweep.planning`: :class:`PlannedRun`, :func:`plan`, :func:`build_recipe`,
  :func:`recipe_key`, :func:`resolve_recipe`, :func:`code_version`.
- :mod:`~mtopt.sweep.observe`: :class:`ObservedMethod`, :func:`train_observed`.
- :mod:`~mtopt.sweep.table`: :class:`Table`, :func:`row_name` and the row/column helpers of the
  table builders.
- :mod:`~mtopt.sweep.tables_auc`, :mod:`~mtopt.sweep.tables_ranking`,
  :mod:`~mtopt.sweep.tables_timing`, :mod:`~mtopt.sweep.tables_solvers`,
  :mod:`~mtopt.sweep.tables_diagnostics`: the five table builders (:func:`auc_table`,
  :func:`ranking_table`, :func:`timing_table`, :func:`solver_table`, :func:`diagnostics_table`).
- :mod:`~mtopt.sweep.report`: :func:`reduce` (:data:`REDUCERS`), :func:`failed_runs`,
  :func:`write_outputs`.
- :mod:`~mtopt.sweep.execution`: :func:`execute` (one run), :func:`load_result`,
  :func:`watch_parent`, the worker pool, :func:`run_sweep`, :class:`SweepResult`.
- :mod:`~mtopt.sweep.paired`: :func:`paired_comparison`, :func:`paired_markdown`.
- :mod:`~mtopt.sweep.paper`: the paper's published tables (``PAPER_TABLE*``).
- :mod:`~mtopt.sweep.presets`: :data:`EXPERIMENTS`, :func:`experiment`, :func:`preset`,
  :func:`custom_sweep`, :func:`replace_seeds`, :data:`SEEDS`, :data:`REGIMES`,
  :data:`SIZE_OVERRIDES`.

Everything public is re-exported here: ``from mtopt.sweep import run_sweep``.
"""

from __future__ import annotations

from mtopt.sweep._format import format_number, jsonable, markdown_table
from mtopt.sweep.config import KINDS, OBSERVE, SIZES, SweepConfig
from mtopt.sweep.execution import (
    RESULT_FILE,
    SweepResult,
    execute,
    load_result,
    run_planned,
    run_sweep,
    watch_parent,
)
from mtopt.sweep.observe import ObservedMethod, TrainFn, train_observed
from mtopt.sweep.paired import paired_comparison, paired_markdown
from mtopt.sweep.paper import PAPER_TABLE1, PAPER_TABLE3_ES, PAPER_TABLE4, PAPER_TABLE5
from mtopt.sweep.planning import (
    KEY_VERSION,
    PORTABLE_MODEL_KEYS,
    PlannedRun,
    build_recipe,
    code_version,
    default_recipes_dir,
    plan,
    recipe_key,
    resolve_recipe,
)
from mtopt.sweep.presets import (
    EXPERIMENTS,
    IMBALANCE,
    REGIMES,
    SEEDS,
    SIZE_OVERRIDES,
    custom_sweep,
    experiment,
    preset,
    replace_seeds,
)
from mtopt.sweep.report import REDUCERS, failed_runs, reduce, write_outputs
from mtopt.sweep.spec import (
    BACKBONE_LABELS,
    METHOD_LABELS,
    Spec,
    backbone_label,
    method_label,
    parse_specs,
)
from mtopt.sweep.stats import (
    ALPHA_LEVEL,
    DECIMALS,
    best_rows,
    diff_metric,
    welch_greater,
    welch_two_sided,
)
from mtopt.sweep.table import Table, row_name
from mtopt.sweep.tables_auc import auc_table
from mtopt.sweep.tables_diagnostics import diagnostics_table
from mtopt.sweep.tables_solvers import solver_table
from mtopt.sweep.tables_timing import timing_table

__all__ = [
    "ALPHA_LEVEL",
    "BACKBONE_LABELS",
    "DECIMALS",
    "EXPERIMENTS",
    "IMBALANCE",
    "KEY_VERSION",
    "KINDS",
    "METHOD_LABELS",
    "OBSERVE",
    "PAPER_TABLE1",
    "PAPER_TABLE3_ES",
    "PAPER_TABLE4",
    "PAPER_TABLE5",
    "PORTABLE_MODEL_KEYS",
    "REDUCERS",
    "REGIMES",
    "RESULT_FILE",
    "SEEDS",
    "SIZES",
    "SIZE_OVERRIDES",
    "ObservedMethod",
    "PlannedRun",
    "Spec",
    "SweepConfig",
    "SweepResult",
    "Table",
    "TrainFn",
    "auc_table",
    "backbone_label",
    "best_rows",
    "build_recipe",
    "code_version",
    "custom_sweep",
    "default_recipes_dir",
    "diagnostics_table",
    "diff_metric",
    "execute",
    "experiment",
    "failed_runs",
    "format_number",
    "jsonable",
    "load_result",
    "markdown_table",
    "method_label",
    "paired_comparison",
    "paired_markdown",
    "parse_specs",
    "plan",
    "preset",
    "recipe_key",
    "reduce",
    "replace_seeds",
    "resolve_recipe",
    "row_name",
    "run_planned",
    "run_sweep",
    "solver_table",
    "timing_table",
    "train_observed",
    "watch_parent",
    "welch_greater",
    "welch_two_sided",
    "write_outputs",
]
