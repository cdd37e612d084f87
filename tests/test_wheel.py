"""CI's wheel test: ``.ci/wheel_test.sh`` builds the wheel, installs it into a fresh venv outside
the checkout and runs ``codesign templates`` and a 4-candidate ``codesign search`` from a folder
with no ``specs/`` (the shipped spec files and weights must come from the installed package).
Needs the package index (or pip's cache) for the dependencies; about 30 s with a warm cache."""
import subprocess

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow          # (fast subset: pytest -m 'not slow')


def test_wheel_installs_and_runs_outside_the_checkout(tmp_path):
    out = subprocess.run(["bash", str(REPO / ".ci" / "wheel_test.sh"), str(tmp_path / "wheel")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "wheel test passed" in out.stdout
    assert "eyeriss_like" in out.stdout


def test_specs_come_from_the_package():
    import accelerators
    from accelerators.resources import SPECS_DIR
    assert SPECS_DIR.parent == __import__("pathlib").Path(accelerators.__file__).resolve().parent
    assert (SPECS_DIR / "energy" / "default.yaml").is_file()
    assert (REPO / "specs").resolve() == SPECS_DIR.resolve()     # the checkout's specs/ is the same folder
