"""The documents' Python examples run: every ```python block of README.md and docs/guide.md is executed as a
script from a scratch directory that links the bundled assets/ (its paths are written from the repository root,
its outputs must not land in the repository). A block that asserts (``assert report.target_met``) checks its
result; any exception fails the test. The command-line blocks are crates/cli/tests/docs_examples.rs's."""

from __future__ import annotations

import re

import pytest

from conftest import ROOT

DOCUMENTS = ["README.md", "docs/guide.md"]
# A fenced block whose info string is exactly `python` (```python,ignore or ```pycon are not run).
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks():
    found = []
    for document in DOCUMENTS:
        text = (ROOT / document).read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(pytest.param(match.group(1), id=f"{document}:{line}"))
    return found


def test_the_readme_has_a_python_example():
    assert any(param.id.startswith("README.md:") for param in blocks())


@pytest.mark.parametrize("code", blocks())
def test_python_block_runs(code, tmp_path, monkeypatch):
    (tmp_path / "assets").symlink_to(ROOT / "assets")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "<docs>", "exec"), {"__name__": "__docs__"})
