"""The notebooks run top to bottom (small settings: CODESIGN_NOTEBOOK_SMOKE=1) the way Jupyter runs
them: the kernel starts in ``notebooks/``, so every path must resolve from the installed package
or the checkout, never from the working directory."""
import os
import shutil
import subprocess

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow          # (fast subset: pytest -m 'not slow')

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def _env(tmp_path) -> dict:
    env = dict(os.environ, CODESIGN_NOTEBOOK_SMOKE="1", CODESIGN_NOTEBOOK_OUT=str(tmp_path / "out"), MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch, tmp_path):
    """In-process (nbclient), where the ``jupyter nbconvert`` command below is not installed."""
    if _jupyter_nbconvert() is not None:
        pytest.skip("run through `jupyter nbconvert --execute` below (the command a user runs)")
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    for k, v in _env(tmp_path).items():
        monkeypatch.setenv(k, v)
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",          # cwd notebooks/, as in Jupyter
                            resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    assert not any((REPO / "notebooks").glob("runs")), "a notebook wrote runs/ inside notebooks/"


def test_notebook_output_dir_is_the_checkouts_runs(monkeypatch, tmp_path):
    from codesign.artifacts import notebook_output_dir, repository_root
    monkeypatch.delenv("CODESIGN_NOTEBOOK_OUT", raising=False)
    monkeypatch.chdir(REPO / "notebooks")
    assert repository_root() == REPO
    assert notebook_output_dir("x") == REPO / "runs" / "x"
    monkeypatch.chdir(tmp_path)
    assert notebook_output_dir("x") == tmp_path / "runs" / "x"
    monkeypatch.setenv("CODESIGN_NOTEBOOK_OUT", "elsewhere")
    assert notebook_output_dir("x") == tmp_path / "elsewhere" / "x"


def _jupyter_nbconvert():
    exe = shutil.which("jupyter")
    if exe is None:
        return None
    try:
        ok = subprocess.run([exe, "nbconvert", "--version"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return None
    return exe if ok else None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_jupyter_nbconvert_executes_the_notebook_from_the_notebooks_folder(path, tmp_path):
    """What a user does: ``jupyter nbconvert --to notebook --execute`` in ``notebooks/``."""
    exe = _jupyter_nbconvert()
    if exe is None:
        pytest.skip("no `jupyter` command with nbconvert on PATH (pip install nbconvert)")
    out = subprocess.run([exe, "nbconvert", "--to", "notebook", "--execute", path.name,
                          "--output-dir", str(tmp_path / "executed"), "--ExecutePreprocessor.timeout=600"],
                         cwd=REPO / "notebooks", env=_env(tmp_path), capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "executed" / path.name).is_file()
    if path.name == "02_sweep.ipynb":
        assert (tmp_path / "out" / "notebook_sweep" / "smoke" / "results.csv").is_file()
    assert not (REPO / "notebooks" / "runs").exists()
