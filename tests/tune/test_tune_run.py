"""``run_tune`` end to end with a fake trainer, and ``mtopt tune``'s input errors."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

pytest.importorskip("optuna")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tune_helpers import LrTrainer, tiny_recipe, val_of  # noqa: E402

from mtopt.errors import InputError  # noqa: E402
from mtopt.sweep import Spec  # noqa: E402
from mtopt.tune import LR_KEY, OPTUNA_MISSING, TuneConfig, require_optuna, run_tune  # noqa: E402


def _config(folder: Path, **kw) -> TuneConfig:
    return TuneConfig(
        name="t",
        recipes=[str(tiny_recipe(folder))],
        backbones=[Spec("mmoe")],
        methods=[Spec("ls"), Spec.parse("pub[alpha_scale=frobenius|exact]")],
        n_trials=4,
        test_seeds=[0, 1],
        **kw,
    )


def test_each_cell_keeps_its_best_trial_and_is_retested(tmp_path):
    fake = LrTrainer()
    res = run_tune(_config(tmp_path), tmp_path / "out", train_fn=fake, progress=False)
    for row in res.tuned:
        assert row["complete"] == row["budget"] == 4
        done = [t for t in row["trials"] if t["state"] == "COMPLETE"]
        best = max(done, key=lambda t: t["value"])  # brute force over the trials
        assert row["best_params"] == best["params"]
        want = val_of(best["params"][LR_KEY]) + (
            0.002 if best["params"].get("alpha_scale") == "exact" else 0.0
        )
        assert math.isclose(row["best_val_auc"], want)
    # 8 trials (tuning seed 0), then seed 1 of each best: seed 0 is the trial's run, reused
    assert len(fake.calls) == 8 + 2
    assert res.test is not None and res.test.executed == 2 and res.test.skipped == 2
    names = [r["name"] for r in res.test.table.data["rows"]]
    assert names == ["MMoE", "MMoE+PUB"]
    text = (tmp_path / "out" / "table.md").read_text()
    assert "Tuning budget: 4 trials per (recipe, backbone, method)" in text
    assert (tmp_path / "out" / "tuned.csv").is_file()
    # resumed: nothing is trained again
    again = LrTrainer()
    run_tune(_config(tmp_path), tmp_path / "out", train_fn=again, progress=False)
    assert again.calls == []


def test_the_grid_sampler_runs_each_grid_point_once(tmp_path):
    fake = LrTrainer()
    cfg = _config(tmp_path, sampler="grid", grid_points=2)
    cfg.n_trials = 10  # more than the grid: the budget is the grid (ls 2 points, pub 2 x 2)
    res = run_tune(cfg, tmp_path / "out", train_fn=fake, progress=False, test=False)
    assert [r["budget"] for r in res.tuned] == [2, 4]
    seen = [(c["method"]["name"], c["method"].get("alpha_scale"), c["lr"]) for c in fake.calls]
    assert len(seen) == len(set(seen)) == 6


def test_missing_optuna_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(InputError, match=r"mtopt\[tune\]"):
        require_optuna()
    assert "pip install 'mtopt[tune]'" in OPTUNA_MISSING


def test_cli_bad_input_is_one_line_exit_2(tmp_path):
    from typer.testing import CliRunner

    from mtopt.cli import app

    recipe = tiny_recipe(tmp_path)
    runner = CliRunner()
    for args, needle in [
        (["--methods", "cagrad[c=0.9..0.1]"], "cagrad[c]: '0.9..0.1' is not a range"),
        (["--trials", "0"], "--trials: must be >= 1"),
        (["--sampler", "random"], "--sampler: one of tpe, grid"),
    ]:
        res = runner.invoke(app, ["tune", str(recipe), "--out", str(tmp_path / "o"), *args])
        assert res.exit_code == 2 or isinstance(res.exception, InputError), res.output
        msg = str(res.exception) if res.exception else res.output
        assert needle in msg


def test_the_tuned_preset_gives_every_cell_the_same_learning_rates():
    from mtopt.tune import cells_of, tune_experiment

    cfg = tune_experiment("tuned", "quick")
    cells = cells_of(cfg)
    # 3 regimes x (STL + 2 backbones x 4 methods)
    assert len(cells) == len(cfg.recipes) * (1 + len(cfg.backbones) * len(cfg.methods))
    rates = {frozenset(g[LR_KEY] for g in c.grid[: c.budget]) for c in cells}
    assert len(rates) == 1 and len(next(iter(rates))) == cfg.n_trials
    with pytest.raises(InputError, match="size"):
        tune_experiment("tuned", "huge")
