"""Welch marks, bold/best logic, spec parsing and table shape (fake trainer, no training)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep_helpers import FakeTrainer, write_recipe  # noqa: E402

from mtopt.errors import InputError  # noqa: E402
from mtopt.sweep import (  # noqa: E402
    Spec,
    SweepConfig,
    best_rows,
    diff_metric,
    parse_specs,
    run_sweep,
    welch_greater,
)


def test_welch_greater_matches_scipy_directly() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        a = rng.normal(0.72, 0.01, size=rng.integers(2, 6))
        b = rng.normal(0.71, 0.02, size=rng.integers(2, 6))
        ref = stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue
        # textbook Welch: t, Welch-Satterthwaite df, upper tail
        va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
        t = (a.mean() - b.mean()) / np.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
        assert welch_greater(a, b) == pytest.approx(ref, rel=1e-12)
        assert welch_greater(a, b) == pytest.approx(stats.t.sf(t, df), rel=1e-9)


def test_welch_undefined_cases() -> None:
    assert welch_greater([0.7], [0.6, 0.61]) is None  # one value
    assert welch_greater([0.7, 0.7], [0.6, 0.6]) is None  # both constant: scipy gives nan
    # a large improvement is significant, a large deterioration is not (one-sided)
    assert welch_greater([0.80, 0.81, 0.82], [0.70, 0.71, 0.72]) < 0.01
    assert welch_greater([0.70, 0.71, 0.72], [0.80, 0.81, 0.82]) > 0.99


def test_best_rows_compares_at_displayed_precision() -> None:
    assert best_rows({"a": 0.71236, "b": 0.71244, "c": 0.7}) == {"a", "b"}  # both 0.7124
    assert best_rows({"a": 0.7125, "b": 0.7124}) == {"a"}
    assert best_rows({"a": None, "b": 0.5}) == {"b"}
    assert best_rows({"a": None}) == set()


def test_diff_metric_formula() -> None:
    assert diff_metric(0.13, 0.116) == pytest.approx(2 * 0.014 / 0.246)
    assert diff_metric(0.1, 0.1) == 0.0
    assert diff_metric(None, 0.1) is None
    assert diff_metric(0.1, -0.1) is None


def test_spec_parsing() -> None:
    s = Spec.parse("pub[solve_every=10,alpha_scale=exact,tower_dims=[8, 4]]")
    assert s.name == "pub"
    assert s.kwargs() == {"solve_every": 10, "alpha_scale": "exact", "tower_dims": [8, 4]}
    specs = parse_specs("ls, pub[solve_every=10,umm=clippy] ,nashmtl")
    assert [x.name for x in specs] == ["ls", "pub", "nashmtl"]
    assert specs[1].kwargs() == {"solve_every": 10, "umm": "clippy"}
    # the key does not depend on parameter order
    assert Spec.parse("pub[a=1,b=2]").key == Spec.parse("pub[b=2,a=1]").key
    with pytest.raises(InputError):
        Spec.parse("pub[solve_every]")
    with pytest.raises(InputError):
        Spec.parse("p u b")


def _sweep(tmp_path: Path, means, seeds=(0, 1, 2), **kw) -> tuple:
    ra = write_recipe(tmp_path / "ra.yaml")
    rb = write_recipe(tmp_path / "rb.yaml", data={"task_correlation": -0.5})
    cfg = SweepConfig(
        name="t",
        recipes=[str(ra), str(rb)],
        backbones=[Spec("mmoe"), Spec("ple")],
        methods=[Spec("ls"), Spec("pub"), Spec("mgda")],
        seeds=list(seeds),
        **kw,
    )
    fake = FakeTrainer(means)
    res = run_sweep(cfg, tmp_path / "out", train_fn=fake, progress=False)
    return res, fake


def test_table_shape_marks_and_bold(tmp_path: Path) -> None:
    means = {
        ("ls", "mmoe"): (0.700, 0.800),
        ("pub", "mmoe"): (0.710, 0.790),  # CTR clearly better, CTCVR worse
        ("mgda", "mmoe"): (0.7005, 0.800),
        ("ls", "ple"): (0.705, 0.805),
        ("pub", "ple"): (0.720, 0.810),
        ("mgda", "ple"): (0.690, 0.700),
        ("ls", "stl"): (0.650, 0.750),
    }
    res, fake = _sweep(tmp_path, means, stl=True)
    # 2 recipes x (1 STL + 2 backbones x 3 methods) x 3 seeds
    assert len(fake.calls) == 2 * 7 * 3
    md = res.table.markdown.split("\n\n")[0].splitlines()
    header, rows = md[0], md[2:]
    # Method + 2 recipes x (2 tasks + average + Δm%) + mean rank
    assert header.count("|") == 1 + 1 + 2 * 4 + 1
    names = [r.split("|")[1].strip() for r in rows]
    assert names == ["STL", "MMoE", "PLE", "MMoE+PUB", "PLE+PUB", "MMoE+MGDA", "PLE+MGDA"]
    cells = {(c["recipe"], c["row"], c["column"]): c for c in res.table.csv_rows}
    noise = 0.001 * (np.arange(3) - 1)
    for recipe in ("ra", "rb"):
        for (m, b), (a, _) in means.items():
            if m == "ls":
                continue
            bb = {"mmoe": "MMoE", "ple": "PLE"}[b]
            c = cells[(recipe, f"{bb}+{m.upper()}", "click")]
            ref = stats.ttest_ind(
                a + noise,
                means[("ls", b)][0] + noise,
                equal_var=False,
                alternative="greater",
            ).pvalue
            assert c["p_vs_backbone"] == pytest.approx(ref)
            assert c["significant"] == int(ref < 0.05)
        # PUB on MMoE: significantly better CTR, worse CTCVR -> mark on CTR only
        assert cells[(recipe, "MMoE+PUB", "click")]["significant"] == 1
        assert cells[(recipe, "MMoE+PUB", "conversion")]["significant"] == 0
        # best per column: PLE+PUB everywhere (click 0.72, conversion 0.81, average)
        for col in ("click", "conversion", "average"):
            best = [
                r for (rc, r, cc), c in cells.items() if rc == recipe and cc == col and c["best"]
            ]
            assert best == ["PLE+PUB"]
    text = res.table.markdown
    assert "**0.7200 ± 0.0010** ‡" in text
    # outputs written
    for name in ("table.md", "table.csv", "results.json"):
        assert (tmp_path / "out" / name).is_file()


def test_bad_sweep_input_is_input_error(tmp_path: Path) -> None:
    r = write_recipe(tmp_path / "r.yaml")
    with pytest.raises(InputError):
        SweepConfig("x", [str(r)], [Spec("mmoe")], [Spec("ls"), Spec("ls")], [0])
    cfg = SweepConfig("x", [str(r)], [Spec("mmoe")], [Spec("nosuchmethod")], [0])
    with pytest.raises(InputError, match="nosuchmethod"):
        run_sweep(cfg, tmp_path / "o", train_fn=FakeTrainer(), progress=False)
    cfg = SweepConfig("x", [str(tmp_path / "missing.yaml")], [Spec("mmoe")], [Spec("ls")], [0])
    with pytest.raises(InputError, match="missing.yaml"):
        run_sweep(cfg, tmp_path / "o", train_fn=FakeTrainer(), progress=False)


def test_diagnostics_table_against_direct_computation(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    cos = {
        m: (list(rng.normal(mt, 0.02, 12)), list(rng.normal(ms, 0.02, 12)))
        for m, mt, ms in (("ls", 0.13, 0.116), ("mgda", 0.138, 0.10), ("pub", 0.13, 0.128))
    }
    # AUC ordering chosen so that lower Diff goes with higher AUC for every pair
    means = {("ls", "mmoe"): (0.70, 0.80), ("mgda", "mmoe"): (0.69, 0.79),
             ("pub", "mmoe"): (0.72, 0.82)}  # fmt: skip
    r = write_recipe(tmp_path / "r.yaml")
    cfg = SweepConfig(
        "d", [str(r)], [Spec("mmoe")], [Spec("ls"), Spec("mgda"), Spec("pub")], [0, 1],
        kind="diagnostics",
    )  # fmt: skip
    fake = FakeTrainer(means, cosines=cos)
    res = run_sweep(cfg, tmp_path / "o", train_fn=fake, progress=False)
    rows = {row["method"]: row for row in res.table.data["methods"]}
    for m, label in (("ls", "LS"), ("mgda", "MGDA"), ("pub", "PUB")):
        ct, cs = np.array(cos[m][0] * 2), np.array(cos[m][1] * 2)  # two seeds, same series
        assert rows[label]["sim_task"] == pytest.approx(ct.mean())
        assert rows[label]["sim_share"] == pytest.approx(cs.mean())
        assert rows[label]["diff_of_means"] == pytest.approx(
            2 * abs(ct.mean() - cs.mean()) / abs(ct.mean() + cs.mean())
        )
        if m != "ls":
            ref = stats.ttest_ind(cs, np.array(cos["ls"][1] * 2), equal_var=False).pvalue
            assert rows[label]["p_share"] == pytest.approx(ref)
    # 3 methods -> 3 pairs per seed, 2 seeds; every pair "reverse" (higher AUC, lower Diff)
    d = res.table.data
    assert d["pairs"] == 6 and d["reverse_pairs"] == 6
    assert d["binomial_p"] == pytest.approx(stats.binomtest(6, 6, 0.5).pvalue)
    assert d["contingency"] == [[0, 6], [6, 0]]


def test_timing_and_solver_tables(tmp_path: Path) -> None:
    r = write_recipe(tmp_path / "r.yaml")
    obs = {
        "ls": {"loop_cpu_seconds": 2.0, "step_cpu_seconds_mean": 0.01},
        "pub": {
            "loop_cpu_seconds": 3.0,
            "step_cpu_seconds_mean": 0.02,
            "solves": 4,
            "solve_seconds_mean": 1e-4,
            "solve_seconds_median": 1e-4,
            "statuses": {"ok": 3, "not_converged": 1, "reused": 6},
            "residual_max": 1e-9,
        },
    }
    fake = FakeTrainer(observations=obs)
    cfg = SweepConfig("t", [str(r)], [Spec("mmoe")], [Spec("ls"), Spec("pub")], [0, 1],
                      kind="timing")  # fmt: skip
    res = run_sweep(cfg, tmp_path / "o", train_fn=fake, progress=False)
    rows = {row["row"]: row for row in res.table.csv_rows}
    # the fake reports 1 epoch: CPU seconds per epoch = loop CPU, ratio 3/2
    assert rows["MMoE"]["cpu_seconds_per_epoch"] == pytest.approx(2.0)
    assert rows["MMoE+PUB"]["cpu_ratio_to_backbone"] == pytest.approx(1.5)
    assert rows["MMoE+PUB"]["cpu_ms_per_step"] == pytest.approx(20.0)
    cfg = SweepConfig("s", [str(r)], [Spec("mmoe")], [Spec("pub")], [0, 1], kind="solvers",
                      baseline="PUB")  # fmt: skip
    res = run_sweep(cfg, tmp_path / "o2", train_fn=fake, progress=False)
    (row,) = res.table.csv_rows
    assert row["solves"] == 8 and row["failed_share"] == pytest.approx(0.25)
    assert row["ms_per_solve"] == pytest.approx(0.1)


def _paired_doc(diffs: dict[tuple[str, int], float]) -> dict:
    """A results.json-shaped dict: method B at 0.7 + seed/100, A at B + the given difference."""
    runs = []
    for (recipe, seed), d in diffs.items():
        for method, v in (("B", 0.7 + seed / 100), ("A", 0.7 + seed / 100 + d)):
            res = {"status": "ok", "test": {"auc_avg": v, "auc": {"ctr": v - 0.1}}}
            runs.append(
                {"recipe": recipe, "backbone": "MMoE", "method": method, "seed": seed,
                 "result": res}
            )  # fmt: skip
    runs.append(  # a failed run is left out, not paired
        {"recipe": "r1", "backbone": "MMoE", "method": "A", "seed": 9, "result": {"status": "x"}}
    )
    return {"runs": runs}


def test_paired_comparison_against_the_textbook_paired_t() -> None:
    import math

    from scipy import stats

    from mtopt.sweep import paired_comparison, paired_markdown

    d = {("r1", 0): 0.004, ("r1", 1): 0.001, ("r1", 2): -0.002, ("r2", 0): 0.003, ("r2", 1): 0.005}
    res = paired_comparison(_paired_doc(d), "a", "B")  # labels match case-insensitively
    x = list(d.values())
    n, mean = len(x), sum(x) / len(x)
    sd = math.sqrt(sum((v - mean) ** 2 for v in x) / (n - 1))
    p_ref = 2 * stats.t.sf(abs(mean / (sd / math.sqrt(n))), n - 1)  # t = d̄ / (s / √n)
    o = res["overall"]
    assert o["n"] == 5 and o["wins"] == 4 and o["losses"] == 1
    assert o["mean_diff"] == pytest.approx(mean, abs=1e-12)
    assert o["t_test_p"] == pytest.approx(p_ref, rel=1e-9)
    assert 0 < o["wilcoxon_p"] <= 1
    cells = {c["recipe"]: c for c in res["cells"]}
    assert cells["r1"]["n"] == 3 and cells["r1"]["mean_diff"] == pytest.approx(0.001, abs=1e-12)
    assert cells["r2"]["wins"] == 2
    md = paired_markdown(res)
    assert "| all | | 5 | +0.0022 | 4/5 |" in md
    # a task metric: the same differences (both methods' task AUC are shifted alike)
    assert paired_comparison(_paired_doc(d), "A", "B", "ctr")["overall"]["mean_diff"] == (
        pytest.approx(mean, abs=1e-12)
    )


def test_paired_comparison_bad_input() -> None:
    from mtopt.sweep import paired_comparison

    doc = _paired_doc({("r1", 0): 0.0, ("r1", 1): 0.0})
    res = paired_comparison(doc, "A", "B")
    assert res["overall"]["t_test_p"] is None  # all differences 0: no test
    with pytest.raises(InputError, match="no method 'C'.*A, B"):
        paired_comparison(doc, "C", "B", source="x.json")
    with pytest.raises(InputError, match="not a sweep"):
        paired_comparison({"table": []}, "A", "B")
    with pytest.raises(InputError, match="task 'cvr'"):
        paired_comparison(doc, "A", "B", "cvr")


def test_paired_cli(tmp_path: Path) -> None:
    import json
    import subprocess

    doc = tmp_path / "results.json"
    doc.write_text(json.dumps(_paired_doc({("r1", 0): 0.01, ("r1", 1): 0.02})))

    def run(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "mtopt", "paired", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    ok = run(str(doc), "A", "B", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["overall"]["mean_diff"] == pytest.approx(0.015)
    missing = run(str(tmp_path / "none.json"), "A", "B")
    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
