"""The README's model example runs as written."""

import re

from tests.conftest import REPO


def test_readme_model_example_runs():
    text = (REPO / "README.md").read_text()
    section = text.split("## The model", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    batch, outputs, attention = scope["batch"], scope["outputs"], scope["attention"]
    assert outputs["graph"].shape == (batch.n_node.shape[0], 3)
    assert attention[0]["mask_a"].edges.shape == (batch.senders.shape[0], 2)
    assert len(attention) == 2
