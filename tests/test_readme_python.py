"""Every ```python block of README.md runs, in order, in one namespace, from a fresh empty folder
(so no block may depend on the working directory being the checkout). 15-25 s here: slow."""
import re

import pytest

from conftest import REPO

README = REPO / "README.md"
BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


def python_blocks() -> list:
    """[(first line number of the code, code)] of every ```python block."""
    text = README.read_text()
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in BLOCK.finditer(text)]


def test_readme_has_the_python_api_examples():
    code = "\n".join(c for _, c in python_blocks())
    for name in ("load_space(", "CoSearchProblem(", "minimize(", ".front", ".design(0)", ".mapping(0)", ".subnet()",
                 "load_result("):
        assert name in code, name


@pytest.mark.slow
def test_readme_python_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace = {"__name__": "__readme__"}
    blocks = python_blocks()
    assert len(blocks) >= 4
    for line, code in blocks:
        # a traceback names README.md and the block's line numbers
        exec(compile("\n" * (line - 1) + code, str(README), "exec"), namespace)
    assert (tmp_path / "runs" / "api-demo" / "front.csv").is_file()     # relative paths land in the cwd
