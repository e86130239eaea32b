"""The README's model example runs as written."""

import re

from tests.conftest import REPO


def test_readme_model_example_runs():
    text = (REPO / "README.md").read_text()
    section = text.split("### In Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    batch, outputs, attention = scope["batch"], scope["outputs"], scope["attention"]
    assert outputs["graph"].shape == (batch.n_node.shape[0], 3)
    assert attention[0]["mask_a"].edges.shape == (batch.senders.shape[0], 2)
    assert len(attention) == 2


def test_readme_and_docs_links_resolve():
    """Every relative link of the README and docs/ names a file of the repository."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" not in target and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(REPO)} -> {target}")
    assert len(pages) >= 10 and not broken, broken
