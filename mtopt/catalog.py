"""The built-in components, as data: one :class:`Row` per registered name.

Each row names its target as a ``"module:attr"`` string, so reading the catalog imports
nothing (this module imports only :mod:`mtopt.names`); :func:`load` imports one target when
asked. :mod:`mtopt.registry` reads the rows and adds the ``mtopt.plugins`` entry points; library
code that is handed a built-in name as a string (``PUB(solver="newton", umm="clippy")``)
resolves it with :func:`builtin` once, at construction, without the registry.

Kinds and what a target is:

* ``solver``: ``solve(G, *, tol, **options) -> SolveResult`` (capabilities ``min_n``/``max_n``:
  the task counts it accepts, enforced by ``mtopt.solvers.solve``: ``ccp``/``ccp-raw`` stop at
  n = 200; ``heavy``: CVXPY-based, ``compare-solvers`` runs fewer instances).
* ``backbone``: ``build(schema, **options) -> model``.
* ``method``: a class ``(model, optimizer: OptimizerConfig, **hyperparameters) -> Method``
  (capabilities: ``pub_diagnostics``, a PUB-family method that records PUB's diagnostics;
  ``alpha_solver``, ``method.solver`` names an α solver backend, which the composition root
  resolves and passes down as a :class:`mtopt.solvers.Backend` — for other methods
  ``method.solver`` is the method's own option, e.g. MGDA's ``exact`` / ``frank_wolfe``).
* ``umm``: a factory ``(**options) -> mtopt.optim.umm.UMM`` used by ``PUB(umm=name)``.
* ``dataset``: ``build(**options) -> dataset``.
* ``weighting``: a class ``(**options) -> mtopt.weightings.Weighting``, ``G -> alpha``, used by
  the gradient-level methods and by ``PUB(weighting=name)`` at the update level.

``label`` is the display name used in tables (``""``: none; the name is shown).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from mtopt.names import normalize

KINDS = ("solver", "backbone", "method", "umm", "dataset", "weighting")


@dataclass(frozen=True)
class Row:
    """One built-in component: ``target`` is a lazy ``"module:attr"`` path."""

    kind: str
    name: str
    target: str
    description: str
    citation: str = ""
    label: str = ""
    capabilities: MappingProxyType[str, Any] = field(default_factory=lambda: MappingProxyType({}))


def _row(kind: str, name: str, target: str, description: str, citation: str = "",
         label: str = "", **capabilities: Any) -> Row:  # fmt: skip
    return Row(kind, name, target, description, citation, label, MappingProxyType(capabilities))


_PUB_PAPER = "Yuan, Cai & Dong, ICDM 2024"
_SV = "mtopt.solvers"
_LW = "mtopt.methods.loss"
_GR = "mtopt.methods.grad"
_PUB = "mtopt.methods.pub"
_WT = "mtopt.weightings"

# fmt: off
ROWS: tuple[Row, ...] = (
    # -- solvers: α backends for G a = 1/a (numpy in, SolveResult out) --------------------------
    _row("solver", "newton", f"{_SV}.newton:solve",
         "Exact damped Newton on f(a)=a'Ga/2-sum(log a), unit-diagonal scaling (default)."),
    _row("solver", "ccp", f"{_SV}.ccp:solve",
         "PUB paper's CCP, eq. (3)-(4), CVXPY+ECOS, DPP, on the unit-diagonal G, warm-started.",
         _PUB_PAPER, heavy=True, max_n=200),
    _row("solver", "ccp-raw", f"{_SV}.ccp_paper:solve_raw",
         "The same CCP literally on the raw G, as the paper writes it (for comparison).",
         _PUB_PAPER, heavy=True, max_n=200),
    _row("solver", "fixed-point", f"{_SV}.fixed_point:solve",
         "SciPy fixed point a <- sqrt(a/(Ga)) with a residual check; fails honestly on conflict."),
    _row("solver", "closed-form", f"{_SV}.closed_form:solve",
         "Exact two-task formula a_i = 1/(sqrt(G_ii) sqrt(1+cos)); n = 2 only.",
         min_n=2, max_n=2),
    # -- backbones ------------------------------------------------------------------------------
    _row("backbone", "shared-bottom", "mtopt.models.shared_bottom:build",
         "Shared-bottom: one shared MLP over field embeddings + dense input, one tower per task.",
         "Caruana, Machine Learning 1997", "Shared-Bottom"),
    _row("backbone", "mmoe", "mtopt.models.mmoe:build",
         "MMoE: 2 layers x 8 single-layer shared experts, per-task softmax gates (PUB VI-A2).",
         "Ma et al., KDD 2018", "MMoE"),
    _row("backbone", "ple", "mtopt.models.ple:build",
         "PLE: 2 extraction layers, 8 shared + 8 task-specific experts per task, per-task gates.",
         "Tang et al., RecSys 2020", "PLE"),
    _row("backbone", "stl", "mtopt.models.stl:build",
         "Single-task learning: one independent network per task (no shared parameters).",
         "", "STL"),
    _row("backbone", "drgrad", "mtopt.models.drgrad:build",
         "DRGrad's split-tower Split-MMoE (T1' on v1, T1'' + aux towers on vs) with PPNet user "
         "gate.", "Liu, Miao & Xia, AAAI 2025", "DRGrad-MMoE"),
    # -- methods: loss level --------------------------------------------------------------------
    _row("method", "ls", "mtopt.methods.ls:LS",
         "Linear scalarization: sum of task losses, one step.", "", "LS"),
    _row("method", "si", f"{_LW}.si:SI", "Scale-invariant loss: sum of log task losses.",
         "Navon et al., ICML 2022 (baseline)", "SI"),
    _row("method", "rlw", f"{_LW}.rlw:RLW",
         "Random loss weighting: softmax of N(0, I) weights each step.",
         "Lin et al., TMLR 2022", "RLW"),
    _row("method", "dwa", f"{_LW}.dwa:DWA",
         "Dynamic Weight Average: weights from loss descent rates, T=2.",
         "Liu, Johns & Davison, CVPR 2019", "DWA"),
    _row("method", "uncertainty", f"{_LW}.uncertainty:Uncertainty",
         "Uncertainty weighting: learned homoscedastic log-variances per task.",
         "Kendall, Gal & Cipolla, CVPR 2018", "Uncertainty"),
    _row("method", "gradnorm", f"{_LW}.gradnorm:GradNorm",
         "GradNorm: learned loss weights equalising scaled gradient norms, alpha=1.5.",
         "Chen et al., ICML 2018", "GradNorm"),
    _row("method", "banditmtl", f"{_LW}.banditmtl:BanditMTL",
         "BanditMTL: mirror ascent on task weights in a KL ball (task-variance regularisation).",
         "Mao et al., ACL-IJCNLP 2021", "BanditMTL"),
    _row("method", "famo", f"{_LW}.famo:FAMO",
         "FAMO: adaptive weights from per-step log-loss decrease (extra post-step evaluation).",
         "Liu et al., NeurIPS 2023", "FAMO"),
    _row("method", "imtl-l", f"{_LW}.imtl_l:IMTLL",
         "IMTL-L: learned loss scales e^s, every scaled loss -> 1.",
         "Liu et al., ICLR 2021", "IMTL-L"),
    # -- methods: gradient level ----------------------------------------------------------------
    _row("method", "mgda", f"{_GR}.mgda:MGDA",
         "MGDA: min-norm point of the convex hull of shared-parameter gradients.",
         "Sener & Koltun, NeurIPS 2018", "MGDA"),
    _row("method", "mgda-ub", f"{_GR}.mgda:MGDAUB",
         "MGDA-UB: MGDA weights from gradients on the shared representation.",
         "Sener & Koltun, NeurIPS 2018", "MGDA-UB"),
    _row("method", "pcgrad", f"{_GR}.pcgrad:PCGrad",
         "PCGrad: project conflicting gradients onto each other's normal planes.",
         "Yu et al., NeurIPS 2020", "PCGrad"),
    _row("method", "cagrad", f"{_GR}.cagrad:CAGrad",
         "CAGrad: best worst-task decrease in a ball around the mean gradient, c=0.4.",
         "Liu et al., NeurIPS 2021", "CAGrad"),
    _row("method", "graddrop", f"{_GR}.graddrop:GradDrop",
         "GradDrop: gradient sign dropout by sign purity.",
         "Chen et al., NeurIPS 2020", "GradDrop"),
    _row("method", "imtl-g", f"{_GR}.imtl:IMTLG",
         "IMTL-G: aggregated gradient with equal projections on unit task gradients.",
         "Liu et al., ICLR 2021", "IMTL-G"),
    _row("method", "imtl", f"{_GR}.imtl:IMTL",
         "Hybrid IMTL: IMTL-L loss scales + IMTL-G gradient weights.",
         "Liu et al., ICLR 2021", "IMTL"),
    _row("method", "nashmtl", f"{_GR}.nashmtl:NashMTL",
         "Nash-MTL: bargaining weights G a = 1/a (certified solver backends), max-norm 1.",
         "Navon et al., ICML 2022", "NashMTL", alpha_solver=True),
    _row("method", "upgrad", f"{_GR}.upgrad:UPGrad",
         "UPGrad: mean of the task gradients projected onto the dual cone of all of them.",
         "Quinton & Rey, arXiv:2406.16232, 2024", "UPGrad"),
    _row("method", "aligned-mtl", f"{_GR}.upgrad:AlignedMTL",
         "Aligned-MTL: gradients aligned to condition number 1 (sqrt(lambda_min) V L^-1/2 V').",
         "Senushkin et al., CVPR 2023", "Aligned-MTL"),
    _row("method", "fairgrad", f"{_GR}.upgrad:FairGrad",
         "FairGrad: alpha-fair allocation, (G w)_i = w_i^(-1/a), a=2.",
         "Ban & Ji, ICML 2024", "FairGrad"),
    _row("method", "drgrad", "mtopt.methods.drgrad:DRGrad",
         "DRGrad: router moves valid aux-task gradient into the split primary tower; updater "
         "sets mu.", "Liu, Miao & Xia, AAAI 2025", "DRGrad"),
    # -- methods: update level (PUB and the UMM baselines) --------------------------------------
    _row("method", "pub", f"{_PUB}:PUBMethod",
         "PUB: balance per-task optimizer updates, alpha from D'D a = 1/a "
         "(Adam/AdaGrad/RMSProp).", _PUB_PAPER, "PUB",
         pub_diagnostics=True, alpha_solver=True),
    _row("method", "pub-clippy", f"{_PUB}:PUBClippy",
         "PUB with the Clippy UMM on the joint update.",
         "Yuan et al., ICDM 2024; Tang et al., KDD 2023", "PUB+Clippy",
         pub_diagnostics=True, alpha_solver=True),
    _row("method", "pub-adatask", f"{_PUB}:PUBAdaTask",
         "PUB with AdaTask's per-task moments.",
         "Yuan et al., ICDM 2024; Yang et al., AAAI 2023", "PUB+AdaTask",
         pub_diagnostics=True, alpha_solver=True),
    _row("method", "clippy-adam", f"{_PUB}:ClippyAdamMethod",
         "ClippyAdam on the sum of losses: per-tensor update bound lambda_rel|w| + lambda_abs.",
         "Tang et al., KDD 2023", "ClippyAdam"),
    _row("method", "adatask", f"{_PUB}:AdaTaskMethod",
         "AdaTask: per-task moments for shared parameters, sum of per-task updates.",
         "Yang et al., AAAI 2023", "AdaTask"),
    # -- UMMs: update manipulation for PUB(umm=name) --------------------------------------------
    _row("umm", "clippy", "mtopt.optim.umm:ClippyUMM",
         "Clippy: per-tensor bound |lr*update| <= lambda_rel*|w| + lambda_abs (on the joint "
         "update).", "Tang et al., KDD 2023"),
    _row("umm", "adatask", "mtopt.optim.umm:AdaTaskUMM",
         "AdaTask: per-task moments for the shared parameters, each fed its own task gradient.",
         "Yang et al., AAAI 2023"),
    # -- weightings: G -> alpha, at the gradient level and PUB's update level -----------------
    _row("weighting", "nash", f"{_WT}.nash:Nash",
         "Nash bargaining G a = 1/a through a solver backend (PUB's default).",
         "Navon et al., ICML 2022; Yuan et al., ICDM 2024"),
    _row("weighting", "mgda", f"{_WT}.mgda:MGDA",
         "Min-norm point of the rows' convex hull (Wolfe's exact algorithm).",
         "Sener & Koltun, NeurIPS 2018"),
    _row("weighting", "imtl-g", f"{_WT}.imtl_g:IMTLG",
         "Equal projections on the unit rows, sum(a) = 1.", "Liu et al., ICLR 2021"),
    _row("weighting", "cagrad", f"{_WT}.cagrad:CAGrad",
         "Conflict-averse coefficients n d*/(1+c^2), c=0.4 (dual on G).",
         "Liu et al., NeurIPS 2021"),
    _row("weighting", "upgrad", f"{_WT}.upgrad:UPGrad",
         "Sum of argmin_{v >= e_i/n} v'Gv: projections onto the dual cone.",
         "Quinton & Rey, arXiv:2406.16232, 2024"),
    _row("weighting", "aligned-mtl", f"{_WT}.aligned_mtl:AlignedMTL",
         "B (1/n), B = sqrt(lambda_min) V L^-1/2 V': aligned system of condition number 1.",
         "Senushkin et al., CVPR 2023"),
    _row("weighting", "fairgrad", f"{_WT}.fairgrad:FairGrad",
         "alpha-fair weights (G w)_i = w_i^(-1/a), a=2 (damped Newton).", "Ban & Ji, ICML 2024"),
    # -- datasets -------------------------------------------------------------------------------
    _row("dataset", "synthetic-ranking", "mtopt.data.synthetic:build",
         "Embedded seeded CTR/CTCVR data: knobs for task correlation, rarity, noise, loss "
         "ratio."),
    _row("dataset", "aliexpress", "mtopt.data.aliexpress.dataset:build",
         "AliExpress per-country CSV (16 categorical, 63 numerical, click, conversion), "
         "streamed.", "Li et al., CIKM 2020"),
    _row("dataset", "census-income", "mtopt.data.census:build",
         "UCI Census-Income (KDD): income > 50K and never-married tasks (MMoE paper setup).",
         "Ma et al., KDD 2018"),
    _row("dataset", "multi-digits", "mtopt.data.digits:build",
         "scikit-learn 8x8 digits side by side: binary left/right digit tasks (embedded)."),
)
# fmt: on


def rows(kind: str) -> tuple[Row, ...]:
    """The built-in rows of ``kind``, in catalog order."""
    return tuple(r for r in ROWS if r.kind == kind)


def builtin(kind: str, name: str) -> Row | None:
    """The built-in row of ``kind`` named ``name`` (matched like every registered name)."""
    key = normalize(name)
    return next((r for r in ROWS if r.kind == kind and normalize(r.name) == key), None)


def load(target: str) -> Any:
    """Import a ``"module:attr"`` target (``attr`` may be dotted) and return the object."""
    module_name, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part)
    return obj
