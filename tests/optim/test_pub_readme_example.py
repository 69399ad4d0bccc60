"""The README example (kept in docs/pub.md) runs as written and trains both tasks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("doc", ["README.md", "docs/pub.md"])
def test_readme_example_trains_a_user_model_with_pub(doc: str):
    DOC = ROOT / doc
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"<!-- readme-example -->\s*```python\n(.*?)```", text, re.S)
    assert block is not None, f"{doc} lost its readme-example block"
    code = block.group(1)
    assert len([line for line in code.splitlines() if line.strip()]) <= 20
    ns: dict = {}
    exec(compile(code, str(DOC), "exec"), ns)  # noqa: S102 - our own documentation
    opt, first, last = ns["opt"], ns["first"], ns["last"]
    assert opt.stats["solves"] == opt.stats["steps"] == 100
    assert all(b < a for a, b in zip(first, last))  # both task losses went down
