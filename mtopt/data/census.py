"""``census-income``: the UCI Census-Income (KDD) files with the MMoE paper's two tasks.

Files (UCI KDD archive, 1994–95 Current Population Surveys): ``census-income.data`` (199,523
rows) and ``census-income.test`` (99,762 rows), comma separated, no header, 42 columns
(:data:`COLUMNS`): 40 attributes, the instance weight (column 25, ignored — the UCI notes say
it must not be used by classifiers) and the income label (``- 50000.`` / ``50000+.``).
``data.path`` is the folder holding them (``.gz``-compressed copies are read too).

Tasks (Ma et al., "Modeling Task Relationships in Multi-task Learning with Multi-gate
Mixture-of-Experts", KDD 2018, census-income experiment, first task group): ``income`` — total
person income > 50K; ``never_married`` — marital status is "Never married". The marital-status
column is a label, so it is removed from the features.

Features: the 7 continuous attributes (money amounts ``log1p``-transformed, then all
standardised with the train file's mean and std) are dense features; the other 32 attributes
are categorical fields, each value mapped to an id by the sorted vocabulary of the train file
(id 0 = a value never seen in the train file).

Splits: ``train`` is the ``.data`` file; the ``.test`` file is split by a seeded hash of the
row index into ``val`` (``val_fraction``, default 0.5) and ``test`` — the 1:1 split of the
public MMoE re-implementations. ``val_from: train`` carves ``val`` out of the ``.data`` file
instead. The files are small (~100 MB of text), so they are parsed once and held in memory.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from mtopt.data._util import (
    check_options,
    check_split_name,
    dense_problem,
    unit_hash,
)
from mtopt.data.base import Schema
from mtopt.data.memory import InMemoryDataset
from mtopt.errors import InputError

COLUMNS = [
    "age", "class of worker", "detailed industry recode", "detailed occupation recode",
    "education", "wage per hour", "enroll in edu inst last wk", "marital stat",
    "major industry code", "major occupation code", "race", "hispanic origin", "sex",
    "member of a labor union", "reason for unemployment", "full or part time employment stat",
    "capital gains", "capital losses", "dividends from stocks", "tax filer stat",
    "region of previous residence", "state of previous residence",
    "detailed household and family stat", "detailed household summary in household",
    "instance weight", "migration code-change in msa", "migration code-change in reg",
    "migration code-move within reg", "live in this house 1 year ago",
    "migration prev res in sunbelt", "num persons worked for employer",
    "family members under 18", "country of birth father", "country of birth mother",
    "country of birth self", "citizenship", "own business or self employed",
    "fill inc questionnaire for veteran's admin", "veterans benefits", "weeks worked in year",
    "year", "income",
]  # fmt: skip
CONTINUOUS = [
    "age", "wage per hour", "capital gains", "capital losses", "dividends from stocks",
    "num persons worked for employer", "weeks worked in year",
]  # fmt: skip
LOG_SCALED = ["wage per hour", "capital gains", "capital losses", "dividends from stocks"]
IGNORED = ["instance weight"]
LABELS = ["income", "marital stat"]
CATEGORICAL = [c for c in COLUMNS if c not in CONTINUOUS + IGNORED + LABELS]
TASKS = ["income", "never_married"]


def _open_text(path: Path) -> TextIO:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def _resolve(folder: Path, name: str) -> Path:
    for candidate in (folder / name, folder / (name + ".gz")):
        if candidate.is_file():
            return candidate
    raise InputError(
        f"{folder / name}: file not found (data.path must be the folder with the UCI files "
        "census-income.data and census-income.test, optionally .gz)"
    )


def read_census_file(path: Path) -> list[list[str]]:
    """Rows of a census-income file as lists of 42 stripped strings (blank lines skipped)."""
    return _read_lines(path)[0]


def _read_lines(path: Path) -> tuple[list[list[str]], list[int]]:
    """:func:`read_census_file`, and the line number of each row in the file."""
    rows, lines = [], []
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            fields = [f.strip() for f in line.rstrip("\n").split(",")]
            if len(fields) != len(COLUMNS):
                raise InputError(
                    f"{path}: line {lineno}: expected {len(COLUMNS)} comma-separated fields, "
                    f"got {len(fields)} (is this the UCI census-income file?)"
                )
            rows.append(fields)
            lines.append(lineno)
    if not rows:
        raise InputError(f"{path}: no data rows")
    return rows, lines


def _income_label(value: str, path: Path, lineno: int) -> float:
    v = value.rstrip(".").replace(" ", "")
    if v == "50000+":
        return 1.0
    if v == "-50000":
        return 0.0
    raise InputError(
        f"{path}: row {lineno}: column income: expected '- 50000.' or '50000+.', got {value!r}"
    )


class CensusIncome(InMemoryDataset):
    """UCI Census-Income (KDD) with the MMoE paper's tasks (see the module docstring).

    Ma, Zhao, Yi, Chen, Hong & Chi, "Modeling Task Relationships in Multi-task Learning with
    Multi-gate Mixture-of-Experts", KDD 2018, census-income experiment (income > 50K; never
    married).
    """

    def __init__(
        self,
        *,
        path: str | os.PathLike | None = None,
        train_file: str = "census-income.data",
        test_file: str = "census-income.test",
        val_from: str = "test",
        val_fraction: float = 0.5,
        val_seed: int = 0,
        task_names: Sequence[str] | None = None,
    ) -> None:
        if path is None:
            raise InputError(
                "data.path: give the folder with census-income.data and census-income.test"
            )
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise InputError(f"data.path: {folder} is not a folder")
        if val_from not in ("train", "test"):
            raise InputError(f"data.val_from: 'train' or 'test', got {val_from!r}")
        if not 0.0 < float(val_fraction) < 1.0:
            raise InputError(f"data.val_fraction: must lie in (0, 1), got {val_fraction}")
        names = list(task_names) if task_names is not None else list(TASKS)
        if len(names) != 2:
            raise InputError(f"data.task_names: expected 2 names, got {names}")
        self.paths = {"train": _resolve(folder, train_file), "test": _resolve(folder, test_file)}
        read = {key: _read_lines(p) for key, p in self.paths.items()}
        raw = {key: rows for key, (rows, _) in read.items()}
        cat_idx = [COLUMNS.index(c) for c in CATEGORICAL]
        num_idx = [COLUMNS.index(c) for c in CONTINUOUS]
        vocab = [sorted({r[j] for r in raw["train"]}) for j in cat_idx]
        lookup = [{v: k + 1 for k, v in enumerate(vs)} for vs in vocab]
        arrays = {}
        for key, rows in raw.items():
            p = self.paths[key]
            cat = np.array(
                [[lk.get(r[j], 0) for lk, j in zip(lookup, cat_idx)] for r in rows],
                dtype=np.int64,
            )
            try:
                dense = np.array([[float(r[j]) for j in num_idx] for r in rows], dtype=np.float64)
            except ValueError:
                for lineno, r in enumerate(rows, start=1):
                    for name, j in zip(CONTINUOUS, num_idx):
                        try:
                            float(r[j])
                        except ValueError:
                            raise InputError(
                                f"{p}: row {lineno}: column {name!r}: not a number: {r[j]!r}"
                            ) from None
                raise
            bad = dense_problem(dense)  # before log1p and standardising, which would hide it
            if bad is not None:
                r, c, problem = bad
                line = read[key][1][r]
                raise InputError(f"{p}: line {line}: column {CONTINUOUS[c]!r}: {problem}")
            income = [_income_label(r[-1], p, i) for i, r in enumerate(rows, start=1)]
            married = COLUMNS.index("marital stat")
            never = [1.0 if r[married] == "Never married" else 0.0 for r in rows]
            labels = np.stack([income, never], axis=1).astype(np.float32)
            arrays[key] = {"cat": cat, "dense": dense, "labels": labels}
        logs = [CONTINUOUS.index(c) for c in LOG_SCALED]
        for key, a in arrays.items():
            if (a["dense"][:, logs] < 0).any():
                r, c = np.argwhere(a["dense"][:, logs] < 0)[0]
                raise InputError(
                    f"{self.paths[key]}: row {r + 1}: column {LOG_SCALED[c]!r}: negative amount"
                )
            a["dense"][:, logs] = np.log1p(a["dense"][:, logs])
        mean = arrays["train"]["dense"].mean(axis=0)
        std = arrays["train"]["dense"].std(axis=0)
        std[std == 0] = 1.0
        for a in arrays.values():
            a["dense"] = ((a["dense"] - mean) / std).astype(np.float32)
        self._splits = self._split(arrays, val_from, float(val_fraction), int(val_seed))
        self.schema = Schema(
            cat_cardinalities=[len(v) + 1 for v in vocab],
            n_dense=len(CONTINUOUS),
            task_names=names,
            extra={
                "dataset": "census-income",
                "categorical": list(CATEGORICAL),
                "dense": list(CONTINUOUS),
                "val_from": val_from,
                "val_fraction": float(val_fraction),
            },
        )

    @staticmethod
    def _split(
        arrays: dict[str, dict[str, np.ndarray]], val_from: str, frac: float, seed: int
    ) -> dict[str, dict[str, np.ndarray]]:
        src = arrays[val_from]
        is_val = unit_hash(np.arange(len(src["labels"])), seed) < frac
        out = {"val": {k: v[is_val] for k, v in src.items()}}
        rest = {k: v[~is_val] for k, v in src.items()}
        if val_from == "train":
            out["train"], out["test"] = rest, arrays["test"]
        else:
            out["train"], out["test"] = arrays["train"], rest
        return out

    def arrays(self, split: str) -> dict[str, np.ndarray]:
        """The in-memory arrays (``cat``, ``dense``, ``labels``) of ``split``."""
        check_split_name(split)
        return self._splits[split]


# --------------------------------------------------------------------------- test data
_VALUES: dict[str, list[str]] = {
    "class of worker": ["Not in universe", "Private", "Self-employed-not incorporated",
                        "Local government", "State government", "Federal government"],
    "detailed industry recode": ["0", "4", "33", "43", "45"],
    "detailed occupation recode": ["0", "2", "12", "26", "31"],
    "education": ["Children", "High school graduate", "Some college but no degree",
                  "Bachelors degree(BA AB BS)", "Masters degree(MA MS MEng MEd MSW MBA)",
                  "Doctorate degree(PhD EdD)", "10th grade"],
    "enroll in edu inst last wk": ["Not in universe", "High school", "College or university"],
    "marital stat": ["Never married", "Married-civilian spouse present", "Divorced", "Widowed",
                     "Separated"],
    "major industry code": ["Not in universe or children", "Retail trade",
                            "Manufacturing-durable goods", "Education", "Construction"],
    "major occupation code": ["Not in universe", "Professional specialty", "Sales",
                              "Executive admin and managerial", "Other service"],
    "race": ["White", "Black", "Asian or Pacific Islander", "Other"],
    "hispanic origin": ["All other", "Mexican (Mexicano)", "Puerto Rican"],
    "sex": ["Female", "Male"],
    "member of a labor union": ["Not in universe", "No", "Yes"],
    "reason for unemployment": ["Not in universe", "Job loser - on layoff", "New entrant"],
    "full or part time employment stat": ["Children or Armed Forces", "Full-time schedules",
                                          "Not in labor force", "Unemployed full-time"],
    "tax filer stat": ["Nonfiler", "Joint both under 65", "Single", "Head of household"],
    "region of previous residence": ["Not in universe", "South", "West", "Midwest"],
    "state of previous residence": ["Not in universe", "California", "Utah", "Florida"],
    "detailed household and family stat": ["Householder", "Spouse of householder",
                                           "Child <18 never marr not in subfamily",
                                           "Secondary individual"],
    "detailed household summary in household": ["Householder", "Spouse of householder",
                                                "Child under 18 never married",
                                                "Nonrelative of householder"],
    "migration code-change in msa": ["Not in universe", "Nonmover", "MSA to MSA"],
    "migration code-change in reg": ["Not in universe", "Nonmover", "Same county"],
    "migration code-move within reg": ["Not in universe", "Nonmover", "Same county"],
    "live in this house 1 year ago": ["Not in universe under 1 year old", "Yes", "No"],
    "migration prev res in sunbelt": ["Not in universe", "Yes", "No"],
    "family members under 18": ["Not in universe", "Both parents present", "Mother only present"],
    "country of birth father": ["United-States", "Mexico", "Germany", "India"],
    "country of birth mother": ["United-States", "Mexico", "England", "China"],
    "country of birth self": ["United-States", "Mexico", "Canada", "Philippines"],
    "citizenship": ["Native- Born in the United States",
                    "Foreign born- Not a citizen of U S",
                    "Foreign born- U S citizen by naturalization"],
    "own business or self employed": ["0", "1", "2"],
    "fill inc questionnaire for veteran's admin": ["Not in universe", "Yes", "No"],
    "veterans benefits": ["0", "1", "2"],
    "year": ["94", "95"],
}  # fmt: skip


def write_synthetic_census_files(
    folder: str | os.PathLike, n_train: int = 2000, n_test: int = 1000, seed: int = 0
) -> Path:
    """Write ``census-income.data`` and ``census-income.test`` in the UCI format (42 fields,
    ``", "``-separated, ``- 50000.`` / ``50000+.`` labels) with a learnable relation: income
    rises with education, age, weeks worked and capital gains; "never married" is likely for
    the young. For tests; the real files come from the UCI archive."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    edu_score = np.array([-2.0, 0.0, 0.5, 1.5, 2.0, 2.5, -1.0])  # per _VALUES["education"]
    for name, n in (("census-income.data", n_train), ("census-income.test", n_test)):
        cols: dict[str, np.ndarray] = {
            c: np.asarray(v, dtype=object)[rng.integers(0, len(v), n)] for c, v in _VALUES.items()
        }
        age = rng.integers(0, 91, n)
        adult = age >= 16
        weeks = np.where(adult, rng.integers(0, 53, n), 0)
        gains = np.where(rng.random(n) < 0.1, rng.exponential(2000, n), 0).astype(int)
        edu = np.where(adult, rng.integers(1, len(edu_score), n), 0)
        cols["education"] = np.asarray(_VALUES["education"], dtype=object)[edu]
        young = 1.0 / (1.0 + np.exp((age - 28) / 4.0))
        other = np.asarray(_VALUES["marital stat"][1:], dtype=object)
        cols["marital stat"] = np.where(
            rng.random(n) < young, "Never married", other[rng.integers(0, len(other), n)]
        )
        z = (
            edu_score[edu]
            + 0.04 * (np.minimum(age, 60) - 40)
            + 0.05 * (weeks - 30)
            + 1.5 * (gains > 3000)
            + 0.5 * (cols["sex"] == "Male")
            - 1.5
        )
        rich = rng.random(n) < 1.0 / (1.0 + np.exp(-z))
        cols.update(
            {
                "age": age,
                "wage per hour": np.where(weeks > 0, rng.integers(0, 2000, n), 0),
                "capital gains": gains,
                "capital losses": np.where(rng.random(n) < 0.05, rng.exponential(300, n), 0).astype(
                    int
                ),
                "dividends from stocks": np.where(
                    rng.random(n) < 0.1, rng.exponential(500, n), 0
                ).astype(int),
                "instance weight": np.char.mod("%.2f", rng.uniform(100, 5000, n)),
                "num persons worked for employer": rng.integers(0, 7, n),
                "weeks worked in year": weeks,
                "income": np.where(rich, "50000+.", "- 50000."),
            }
        )
        table = [[str(x) for x in cols[c]] for c in COLUMNS]
        text = "\n".join(", ".join(row) for row in zip(*table))
        (folder / name).write_text(text + "\n")
    return folder


_KNOWN = ["path", "train_file", "test_file", "val_from", "val_fraction", "val_seed", "task_names"]


def build(**cfg: Any) -> CensusIncome:
    """Factory for the registry: ``data:`` options of a recipe."""
    check_options("census-income", cfg, _KNOWN)
    return CensusIncome(**cfg)
