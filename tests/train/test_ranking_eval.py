"""The ranking metrics of an evaluation (summary.json, metrics.csv) against references computed
here from the same predictions: scikit-learn's AUC per group, the entropy formula, the CVR AUC
on a filtered copy; the group column of the AliExpress files; resuming an older metrics.csv."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from mtopt.data._util import array_batches
from mtopt.data.aliexpress import AliExpress, write_synthetic_aliexpress_csv
from mtopt.data.base import MTDataset, Schema
from mtopt.errors import InputError
from mtopt.train.evaluation import eval_scalars
from mtopt.train.logs import CsvLog, read_csv
from mtopt.train.metrics import evaluate


class Fixed(MTDataset):
    """Rows whose 'dense' columns are the predicted probabilities of a :class:`Echo` model."""

    def __init__(self, P, Y, groups=None, funnel=("click", "buy")) -> None:
        self.a = {"cat": np.zeros((len(Y), 0)), "dense": P, "labels": Y}
        if groups is not None:
            self.a["user"] = groups
        key = "user" if groups is not None else None
        self.schema = Schema([], P.shape[1], ["click", "buy"], group_key=key, funnel=funnel)

    def batches(self, split, batch_size, *, shuffle=False, seed=0, epoch=0):
        return array_batches(self.a, batch_size, shuffle=False, rng=None)


class Echo(torch.nn.Module):
    task_names = ["click", "buy"]

    def probabilities(self, batch):
        return batch["dense"]


def _data(seed: int = 0, n: int = 400):
    rng = np.random.default_rng(seed)
    click = (rng.random(n) < 0.4).astype(np.float32)
    buy = click * (rng.random(n) < 0.3)
    Y = np.stack([click, buy], 1).astype(np.float32)
    P = np.clip(0.3 * Y + 0.7 * rng.random((n, 2)), 0.01, 0.99).astype(np.float32)
    P[:, 1] *= P[:, 0]  # a CTCVR prediction = pCTR * pCVR
    groups = rng.integers(0, 25, n)
    return P, Y, groups


def test_evaluation_reports_ne_gauc_and_cvr_auc_like_the_references() -> None:
    P, Y, G = _data()
    res = evaluate(Echo(), Fixed(P, Y, G), "val", 64)
    p64, y64 = P.astype(np.float64), Y.astype(np.float64)
    for i, t in enumerate(["click", "buy"]):
        y, p = y64[:, i], np.clip(p64[:, i], 1e-7, 1 - 1e-7)
        ll = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
        r = y.mean()
        assert res.ne[t] == pytest.approx(ll / -(r * math.log(r) + (1 - r) * math.log(1 - r)))
        num = den = 0.0
        used = skipped = 0
        for g in np.unique(G):
            m = G == g
            if len(np.unique(y[m])) < 2:
                skipped += 1
                continue
            used += 1
            num += m.sum() * roc_auc_score(y[m], p64[m, i])
            den += m.sum()
        assert res.gauc[t] == pytest.approx(num / den, abs=1e-12)
        assert res.gauc_groups[t] == {"used": used, "skipped": skipped}
    clicked = Y[:, 0] == 1
    want = roc_auc_score(Y[clicked, 1], p64[clicked, 1] / p64[clicked, 0])
    assert res.cvr_auc == pytest.approx(want, abs=1e-12)
    assert res.cvr_rows == int(clicked.sum())
    d = res.to_dict()
    assert d["gauc_avg"] == pytest.approx((d["gauc"]["click"] + d["gauc"]["buy"]) / 2)
    assert d["auc_avg_tasks"] == ["click", "buy"]
    tb = eval_scalars("val", res)
    assert tb["val/gauc_buy"] == res.gauc["buy"] and tb["val/cvr_auc"] == res.cvr_auc
    assert tb["val/ne_click"] == res.ne["click"] and tb["val/logloss_buy"] == res.logloss["buy"]


def test_without_group_or_funnel_gauc_and_cvr_are_null() -> None:
    P, Y, _ = _data(1)
    res = evaluate(Echo(), Fixed(P, Y, None, funnel=None), "val", 64)
    d = res.to_dict()
    assert d["gauc"] == {"click": None, "buy": None} and d["gauc_groups"] is None
    assert d["gauc_avg"] is None and d["cvr_auc"] is None and d["cvr_rows"] is None
    tb = eval_scalars("val", res)
    assert not any(k.startswith("val/gauc") or k == "val/cvr_auc" for k in tb)


def test_undefined_auc_is_null_and_left_out_of_the_average() -> None:
    P, Y, G = _data(2)
    Y[:, 1] = 0.0  # no conversion in the split
    with pytest.warns(UserWarning):
        d = evaluate(Echo(), Fixed(P, Y, G), "val", 64).to_dict()
    assert d["auc"]["buy"] is None and d["auc_avg"] == d["auc"]["click"]
    assert d["auc_avg_tasks"] == ["click"]
    assert d["ne"]["buy"] is None and d["gauc"]["buy"] is None and d["cvr_auc"] is None
    assert d["gauc_groups"]["buy"]["used"] == 0


def test_aliexpress_group_column_reaches_the_batches(tmp_path: Path) -> None:
    kw = {"n_cat": 2, "n_num": 3}
    write_synthetic_aliexpress_csv(tmp_path / "train.csv", 300, 0, impressions_per_search=4, **kw)
    write_synthetic_aliexpress_csv(tmp_path / "test.csv", 100, 1, **kw)
    for binary in (True, False):
        ds = AliExpress(
            path=tmp_path,
            group_column="search_id",
            binary_cache=binary,
            chunk_rows=64,
            val_fraction=0.0,
        )
        assert ds.schema.group_key == "group" and ds.schema.funnel == ("click", "conversion")
        got = torch.cat([b["group"] for b in ds.batches("train", 50)]).numpy()
        np.testing.assert_array_equal(got, np.arange(300) // 4)
    plain = AliExpress(path=tmp_path, chunk_rows=64)
    assert plain.schema.group_key is None
    assert "group" not in next(iter(plain.batches("train", 10)))
    with pytest.raises(InputError, match=r"data.group_column: no column 'session'"):
        AliExpress(path=tmp_path, group_column="session")
    with pytest.raises(InputError, match=r"data.group_column: .*neither a feature nor a label"):
        AliExpress(path=tmp_path, group_column="click")


def test_resume_keeps_a_metrics_csv_of_an_older_version(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text("step,val_auc_a\n1,0.5\n2,0.6\n3,0.7\n")
    log = CsvLog(path, ["step", "val_auc_a", "val_ne_a"])
    log.open(resume_step=2)
    log.write({"step": 3, "val_auc_a": 0.8, "val_ne_a": 0.9})
    log.close()
    assert read_csv(path) == [
        {"step": 1.0, "val_auc_a": 0.5, "val_ne_a": None},
        {"step": 2.0, "val_auc_a": 0.6, "val_ne_a": None},
        {"step": 3.0, "val_auc_a": 0.8, "val_ne_a": 0.9},
    ]
    with pytest.raises(InputError, match="columns differ"):
        CsvLog(path, ["step", "other"]).open(resume_step=1)
