"""Registered built-in methods (lazy targets; nothing heavy imported here).

A method target is a class ``(model, optimizer: OptimizerConfig, **hyperparameters) -> Method``.
"""

from mtopt.registry import registry

_r = registry.register

_r("method", "ls", "mtopt.methods.ls:LS", "Linear scalarization: sum of task losses, one step.")

# -- loss-level baselines (mtopt/methods/loss/, one module per method) ---------------------------
_LW = "mtopt.methods.loss"
_r("method", "si", f"{_LW}.si:SI",
   "Scale-invariant loss: sum of log task losses.",
   "Navon et al., ICML 2022 (baseline)")  # fmt: skip
_r("method", "rlw", f"{_LW}.rlw:RLW",
   "Random loss weighting: softmax of N(0, I) weights each step.",
   "Lin et al., TMLR 2022")  # fmt: skip
_r("method", "dwa", f"{_LW}.dwa:DWA",
   "Dynamic Weight Average: weights from loss descent rates, T=2.",
   "Liu, Johns & Davison, CVPR 2019")  # fmt: skip
_r("method", "uncertainty", f"{_LW}.uncertainty:Uncertainty",
   "Uncertainty weighting: learned homoscedastic log-variances per task.",
   "Kendall, Gal & Cipolla, CVPR 2018")  # fmt: skip
_r("method", "gradnorm", f"{_LW}.gradnorm:GradNorm",
   "GradNorm: learned loss weights equalising scaled gradient norms, alpha=1.5.",
   "Chen et al., ICML 2018")  # fmt: skip
_r("method", "banditmtl", f"{_LW}.banditmtl:BanditMTL",
   "BanditMTL: mirror ascent on task weights in a KL ball (task-variance regularisation).",
   "Mao et al., ACL-IJCNLP 2021")  # fmt: skip
_r("method", "famo", f"{_LW}.famo:FAMO",
   "FAMO: adaptive weights from per-step log-loss decrease (extra post-step evaluation).",
   "Liu et al., NeurIPS 2023")  # fmt: skip
_r("method", "imtl-l", f"{_LW}.imtl_l:IMTLL",
   "IMTL-L: learned loss scales e^s, every scaled loss -> 1.",
   "Liu et al., ICLR 2021")  # fmt: skip

# -- gradient-level baselines (mtopt/methods/grad/; pure forms: mtopt.methods.aggregate) ---------
_GR = "mtopt.methods.grad"
_r("method", "mgda", f"{_GR}.mgda:MGDA",
   "MGDA: min-norm point of the convex hull of shared-parameter gradients.",
   "Sener & Koltun, NeurIPS 2018")  # fmt: skip
_r("method", "mgda-ub", f"{_GR}.mgda:MGDAUB",
   "MGDA-UB: MGDA weights from gradients on the shared representation.",
   "Sener & Koltun, NeurIPS 2018")  # fmt: skip
_r("method", "pcgrad", f"{_GR}.pcgrad:PCGrad",
   "PCGrad: project conflicting gradients onto each other's normal planes.",
   "Yu et al., NeurIPS 2020")  # fmt: skip
_r("method", "cagrad", f"{_GR}.cagrad:CAGrad",
   "CAGrad: best worst-task decrease in a ball around the mean gradient, c=0.4.",
   "Liu et al., NeurIPS 2021")  # fmt: skip
_r("method", "graddrop", f"{_GR}.graddrop:GradDrop",
   "GradDrop: gradient sign dropout by sign purity.",
   "Chen et al., NeurIPS 2020")  # fmt: skip
_r("method", "imtl-g", f"{_GR}.imtl:IMTLG",
   "IMTL-G: aggregated gradient with equal projections on unit task gradients.",
   "Liu et al., ICLR 2021")  # fmt: skip
_r("method", "imtl", f"{_GR}.imtl:IMTL",
   "Hybrid IMTL: IMTL-L loss scales + IMTL-G gradient weights.",
   "Liu et al., ICLR 2021")  # fmt: skip
_r("method", "nashmtl", f"{_GR}.nashmtl:NashMTL",
   "Nash-MTL: bargaining weights G a = 1/a (certified solver backends), max-norm 1.",
   "Navon et al., ICML 2022")  # fmt: skip
_r(
    "method",
    "drgrad",
    "mtopt.methods.drgrad:DRGrad",
    "DRGrad: router moves valid aux-task gradient into the split primary tower; updater sets mu.",
    "Liu, Miao & Xia, AAAI 2025",
)

# -- update-level: PUB and the UMM baselines (mtopt/methods/pub.py) ------------------------------
_PUB = "mtopt.methods.pub"
_r("method", "pub", f"{_PUB}:PUBMethod",
   "PUB: balance per-task optimizer updates, alpha from D'D a = 1/a (Adam/AdaGrad/RMSProp).",
   "Yuan, Cai & Dong, ICDM 2024")  # fmt: skip
_r("method", "pub-clippy", f"{_PUB}:PUBClippy", "PUB with the Clippy UMM on the joint update.",
   "Yuan et al., ICDM 2024; Tang et al., KDD 2023")  # fmt: skip
_r("method", "pub-adatask", f"{_PUB}:PUBAdaTask", "PUB with AdaTask's per-task moments.",
   "Yuan et al., ICDM 2024; Yang et al., AAAI 2023")  # fmt: skip
_r("method", "clippy-adam", f"{_PUB}:ClippyAdamMethod",
   "ClippyAdam on the sum of losses: per-tensor update bound lambda_rel|w| + lambda_abs.",
   "Tang et al., KDD 2023")  # fmt: skip
_r("method", "adatask", f"{_PUB}:AdaTaskMethod",
   "AdaTask: per-task moments for shared parameters, sum of per-task updates.",
   "Yang et al., AAAI 2023")  # fmt: skip
