"""One process of the shared-study test: open the study, wait for the other, run the study."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tune_helpers import LrTrainer  # noqa: E402

from mtopt.sweep import Spec  # noqa: E402
from mtopt.tune import TuneConfig, cells_of, open_storage, open_study, run_study  # noqa: E402


def main(folder: str, me: str, other: str, budget: int) -> None:
    root = Path(folder)
    config = TuneConfig(
        name="split",
        recipes=[str(root / "tiny.yaml")],
        backbones=[Spec("mmoe")],
        methods=[Spec("ls")],
        n_trials=budget,
    )
    cell = cells_of(config)[0]
    study = open_study(open_storage(f"sqlite:///{root / 'study.db'}"), cell.study_name)
    (root / me).touch()
    deadline = time.time() + 60
    while not (root / other).exists() and time.time() < deadline:
        time.sleep(0.05)
    run_study(
        study,
        (cell.recipe, cell.backbone, cell.method),
        cell.space,
        budget=budget,
        seeds=[0],
        overrides=[],
        runs_dir=root / "runs",
        train_fn=LrTrainer(root / "calls.jsonl", pause=0.3),
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
