"""Record the goldens (run before a refactor, or after a deliberate change of last bits).

    python tests/golden/record.py            # everything
    python tests/golden/record.py CASE ...   # re-record only these training cases

Writes ``goldens.json`` and the resume checkpoints ``ckpt/<case>.pt`` beside this file.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cases  # noqa: E402


def main(only: list[str]) -> None:
    path = HERE / "goldens.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        train = dict(old.get("train", {}))
        for case in only or list(cases.CASES):
            train[case] = cases.train(cases.recipe_dict(case), tmpd / case)
            print("recorded", case, flush=True)
        data = {"train": {k: train[k] for k in cases.CASES if k in train}}
        if only:
            data.update({k: v for k, v in old.items() if k != "train"})
        else:
            (HERE / "ckpt").mkdir(exist_ok=True)
            for case in cases.RESUME_CASES:
                d = tmpd / f"resume-{case}"
                cases.train(cases.recipe_dict(case, steps=cases.RESUME_AT), d)
                shutil.copyfile(d / "checkpoints" / "last.pt", HERE / "ckpt" / f"{case}.pt")
            data["plan"] = cases.plan_keys(tmpd / "sweep")
            data["list"] = cases.listing()
            data["toy"] = cases.toy_points()
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print("wrote", path)


if __name__ == "__main__":
    main(sys.argv[1:])
