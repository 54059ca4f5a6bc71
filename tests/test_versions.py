"""The version story (issue 27): one version number, ranges checked at import, `intuitor --version`, both ends of
each range written down for CI."""

import importlib.util
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.version import Version

import intuitor


ROOT = Path(__file__).resolve().parents[1]
INTUITOR = str(Path(sys.executable).with_name("intuitor"))
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def declared() -> dict[str, Requirement]:
    reqs = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    return {r.name: r for r in reqs}


def test_one_version_number():
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "intuitor.__version__"}
    assert str(Version(intuitor.__version__)) == intuitor.__version__  # PEP 440, normalised
    assert f"## {Version(intuitor.__version__).base_version}" in (ROOT / "CHANGELOG.md").read_text()


def test_checked_ranges_are_pyprojects():
    deps = declared()
    for pkg, spec in intuitor.REQUIREMENTS.items():
        assert deps[pkg].specifier == Requirement(f"{pkg}{spec}").specifier, pkg
        assert any(s.operator == "<" for s in deps[pkg].specifier), f"{pkg} has no upper bound"


def test_lowest_constraints_are_the_lower_bounds():
    pins = {}
    for line in (ROOT / ".ci" / "lowest.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            pins[req.name] = Version(next(iter(req.specifier)).version)
    deps = declared()
    assert set(intuitor.REQUIREMENTS) <= set(pins)
    for pkg, pin in pins.items():
        lower = [Version(s.version) for s in deps[pkg].specifier if s.operator == ">="]
        assert lower == [pin], f"{pkg}: .ci/lowest.txt has {pin}, pyproject.toml's lower bound is {lower}"


def test_installed_stack_is_inside_the_ranges():
    intuitor.check_versions()  # raises on a mismatch
    assert intuitor.version_problem("trl", version("trl")) is None


def test_versions_reports_the_stack():
    v = intuitor.versions()
    assert v["intuitor"] == intuitor.__version__
    for pkg in ("torch", "transformers", "trl", "accelerate", "datasets", "math-verify"):
        assert v[pkg] == version(pkg)
    assert ("vllm" in v) == (importlib.util.find_spec("vllm") is not None)
    assert v["python"] == ".".join(map(str, sys.version_info[:3]))


def test_version_command_names_every_version():
    res = subprocess.run([INTUITOR, "--version"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == f"intuitor {intuitor.__version__}"
    assert dict(line.split(" ", 1) for line in lines) == intuitor.versions()


@pytest.fixture
def trl_117(tmp_path):
    """An environment whose metadata says trl 1.17.0 (a fake dist-info first on the path): outside the range."""
    info = tmp_path / "trl-1.17.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: trl\nVersion: 1.17.0\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT / "src")])}
    env.pop("INTUITOR_SKIP_VERSION_CHECK", None)
    return env


def test_import_refuses_a_version_outside_the_range_in_one_line(trl_117):
    res = subprocess.run([sys.executable, "-c", "import intuitor"], capture_output=True, text=True, env=trl_117)
    assert res.returncode == 1
    last = res.stderr.strip().splitlines()[-1]
    assert last == (
        f"intuitor.VersionMismatch: intuitor {intuitor.__version__} needs trl>=1.16,<1.17 (found trl "
        "1.17.0): pip install 'trl>=1.16,<1.17' (or set INTUITOR_SKIP_VERSION_CHECK=1 to try it anyway)"
    )
    skip = subprocess.run(
        [sys.executable, "-c", "import intuitor"],
        capture_output=True,
        text=True,
        env={**trl_117, "INTUITOR_SKIP_VERSION_CHECK": "1"},
    )
    assert skip.returncode == 0, skip.stderr


def test_cli_refuses_in_one_line_but_still_reports_versions(trl_117):
    res = subprocess.run([INTUITOR, "tasks"], capture_output=True, text=True, env=trl_117, timeout=60)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.strip().splitlines() == [
        f"error: intuitor {intuitor.__version__} needs trl>=1.16,<1.17 (found trl 1.17.0): "
        "pip install 'trl>=1.16,<1.17' (or set INTUITOR_SKIP_VERSION_CHECK=1 to try it anyway)"
    ]
    res = subprocess.run([INTUITOR, "--version"], capture_output=True, text=True, env=trl_117, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "trl 1.17.0  (outside the tested range >=1.16,<1.17)" in res.stdout.splitlines()
    assert f"transformers {version('transformers')}" in res.stdout.splitlines()  # in range: no remark
