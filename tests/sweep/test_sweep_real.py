"""Real (tiny) training through the sweep: end to end, observers, PUB fixed_alpha, CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep_helpers import write_recipe  # noqa: E402

from mtopt.errors import InputError  # noqa: E402
from mtopt.methods.base import OptimizerConfig  # noqa: E402
from mtopt.registry import registry  # noqa: E402
from mtopt.sweep import ObservedMethod, Spec, SweepConfig, run_sweep  # noqa: E402


def _tiny_model(seed: int = 0):
    torch.manual_seed(seed)
    ds = registry.get("dataset", "synthetic-ranking")(
        seed=0, n_train=256, n_val=64, n_test=64, cat_cardinalities=[10, 5], n_dense=3,
        conversion_rate=0.3,
    )  # fmt: skip
    model = registry.get("backbone", "mmoe")(
        ds.schema, n_experts=2, expert_dim=6, embed_dim=3, tower_dims=[4]
    )
    batch = next(iter(ds.batches("train", 128, shuffle=False)))
    return ds, model, batch


def test_observer_cosines_are_one_for_plain_sgd() -> None:
    # SGD without momentum or decay moves every parameter by -lr * grad: cos(grad, update) = 1
    _, model, batch = _tiny_model()
    cfg = OptimizerConfig(name="sgd", lr=0.05, weight_decay=0.0)
    method = registry.get("method", "ls")(model, cfg)
    obs = ObservedMethod(method, model, diagnostics=True)
    for _ in range(3):
        obs.step(model.losses(batch))
    rep = obs.report()
    assert rep["steps"] == 3
    assert rep["cos_shared"] == pytest.approx([1.0] * 3, abs=1e-5)
    assert rep["cos_task"] == pytest.approx([1.0] * 3, abs=1e-5)
    # the inter-task gradient cosine agrees with a direct computation
    losses = model.losses(batch)
    shared = model.shared_parameters()
    g = [torch.cat([x.reshape(-1) for x in torch.autograd.grad(L, shared, retain_graph=True)])
         for L in losses]  # fmt: skip
    ref = float(g[0] @ g[1] / (g[0].norm() * g[1].norm()))
    assert obs._task_grad_cos(losses) == pytest.approx(ref, rel=1e-4)


def test_fixed_alpha_one_is_the_sum_of_the_per_task_updates() -> None:
    """PUB(fixed_alpha=1) moves the shared parameters by −lr·Σᵢ Δθᵢ: compared with the per-task
    Adam updates computed by hand from the same (fresh) moments at the first step."""
    _, model, batch = _tiny_model()
    shared = model.shared_parameters()
    before = [p.detach().clone() for p in shared]
    losses = model.losses(batch)
    grads = [torch.autograd.grad(L, shared, retain_graph=True) for L in losses]
    lr, eps = 1e-3, 1e-8
    pub = registry.get("method", "pub")(
        model, OptimizerConfig(lr=lr, eps=eps, weight_decay=0.0), fixed_alpha=1
    )
    info = pub.step(losses)
    assert info.weights == [1.0, 1.0] and info.solver_status == "fixed"
    assert pub.opt.stats["solves"] == 0
    for k, p in enumerate(shared):
        # Adam at t = 1 from zero moments, bias-corrected: Δ = g / (|g| + eps)
        step = sum(g[k] / (g[k].abs() + eps) for g in grads)
        assert torch.allclose(p.detach(), before[k] - lr * step, rtol=1e-5, atol=1e-7)
    # per-task values and bad input
    pub = registry.get("method", "pub")(model, OptimizerConfig(), fixed_alpha=[0.5, 2.0])
    assert pub.step(model.losses(batch)).weights == [0.5, 2.0]
    for bad in (0, -1.0, [1.0, 2.0, 3.0], [1.0, float("nan")], "x"):
        with pytest.raises(InputError, match="fixed_alpha"):
            registry.get("method", "pub")(model, OptimizerConfig(), fixed_alpha=bad)


@pytest.mark.slow
def test_tiny_real_sweep_end_to_end(tmp_path: Path) -> None:
    r = write_recipe(tmp_path / "tiny.yaml")
    cfg = SweepConfig(
        name="tiny",
        recipes=[str(r)],
        backbones=[Spec("mmoe")],
        methods=[Spec("ls"), Spec.parse("pub[solve_every=2]")],
        seeds=[0],
        kind="diagnostics",
    )
    res = run_sweep(cfg, tmp_path / "out", progress=False)
    assert res.failed == 0 and res.executed == 2
    for run, rec in zip(res.runs, res.records):
        assert rec["status"] == "ok"
        assert rec["summary"]["steps"] == 4
        obs = rec["observations"]
        assert len(obs["cos_shared"]) == 4 and len(obs["cos_task"]) == 4
        assert all(c is None or -1 <= c <= 1 for c in obs["cos_shared"] + obs["cos_task"])
        assert (run.run_dir / "summary.json").is_file()
    pub = res.records[1]["observations"]
    assert pub["statuses"] == {"ok": 2, "reused": 2}
    out = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [m["method"] for m in out["table"]["methods"]] == ["LS", "PUB[solve_every=2]"]
    # the AUC table of the same runs (the reducer only reads the records)
    from mtopt.sweep import auc_table

    cfg.kind = "auc"
    t = auc_table(cfg, res.runs, res.records)
    assert [r["name"] for r in t.data["rows"]] == ["MMoE", "MMoE+PUB[solve_every=2]"]
    assert all(c["n"] == 1 for r in t.data["rows"] for c in r["cells"])


def test_cli_dry_run_and_bad_input(tmp_path: Path, monkeypatch, capsys) -> None:
    from mtopt.cli import main

    r = write_recipe(tmp_path / "tiny.yaml")

    def call(*args: str) -> int:
        monkeypatch.setattr(sys, "argv", ["mtopt", *args])
        try:
            main()
        except SystemExit as exc:
            return int(exc.code or 0)
        return 0

    code = call("sweep", str(r), "--methods", "ls,pub[solve_every=10]", "--seeds", "2",
                "--out", str(tmp_path / "o"), "--dry-run")  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "4 runs planned, 0 already finished" in out
    code = call("sweep", str(r), "--methods", "ls,nope", "--out", str(tmp_path / "o"))
    err = capsys.readouterr().err
    assert code == 2 and "nope" in err and len(err.strip().splitlines()) == 1
    code = call("reproduce", "table9")
    assert code == 2 and "table9" in capsys.readouterr().err
