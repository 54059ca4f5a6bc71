"""intuitor: Reinforcement Learning from Internal Feedback (INTUITOR, arXiv 2505.19590) on Hugging Face TRL.

This file is the single source of the version number (pyproject.toml reads `__version__` from it) and holds the
version ranges of the stack intuitor is tested on. They mirror pyproject.toml's dependencies (tests/test_versions.py
keeps the two equal) and are checked at import from the installed packages' metadata, so that a mismatch is one line
instead of an obscure failure deep inside TRL. Nothing heavy is imported here: `intuitor --help` stays instant.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version


__version__ = "0.2.0.dev0"

# Ranges the CI tests at both ends (.ci/run: newest in range, then .ci/lowest.txt). Why each bound: pyproject.toml.
REQUIREMENTS = {
    "torch": ">=2.13,<3",
    "transformers": ">=5.23,<6",
    "trl": ">=1.16,<1.17",
    "accelerate": ">=1.10.1,<2",
    "datasets": ">=4.7,<6",
}
SUPPORTED_TRL = REQUIREMENTS["trl"]
# What `intuitor --version` and every run's run_config.json report; vllm only where it is installed.
REPORTED = ("intuitor", "torch", "transformers", "trl", "accelerate", "datasets", "math-verify", "vllm")
SKIP_CHECK = "INTUITOR_SKIP_VERSION_CHECK"


class VersionMismatch(ImportError):
    """An installed package lies outside the range intuitor is tested on."""


def versions() -> dict[str, str]:
    """Versions of intuitor and its stack from the installed metadata (no import of torch or TRL), plus Python's."""
    out = {"intuitor": __version__}  # this file, not the metadata: a source checkout may differ from its install
    for pkg in REPORTED[1:]:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    out["python"] = platform.python_version()
    return out


def version_problem(pkg: str, found: str | None) -> str | None:
    """The one-line refusal for `pkg` at version `found`, or None when it lies inside REQUIREMENTS[pkg].

    >>> version_problem("trl", "1.16.0") is None
    True
    >>> print(version_problem("trl", "1.17.0"))  # doctest: +ELLIPSIS
    intuitor ... needs trl>=1.16,<1.17 (found trl 1.17.0): pip install 'trl>=1.16,<1.17' (or set ...=1 to try it anyway)
    """
    from packaging.specifiers import SpecifierSet

    spec = REQUIREMENTS[pkg]
    if found is not None and SpecifierSet(spec).contains(found, prereleases=True):
        return None
    return (
        f"intuitor {__version__} needs {pkg}{spec} (found {pkg} {found or 'not installed'}): "
        f"pip install '{pkg}{spec}' (or set {SKIP_CHECK}=1 to try it anyway)"
    )


def check_versions() -> None:
    """Raise VersionMismatch naming the first installed package outside its range (unless SKIP_CHECK is set)."""
    if os.environ.get(SKIP_CHECK):
        return
    for pkg in REQUIREMENTS:
        try:
            found = version(pkg)
        except PackageNotFoundError:
            found = None
        problem = version_problem(pkg, found)
        if problem:
            raise VersionMismatch(problem)


def check_trl_version() -> None:
    """The imported trl module's version (IntuitorTrainer overrides private GRPOTrainer methods)."""
    import trl

    problem = None if os.environ.get(SKIP_CHECK) else version_problem("trl", trl.__version__)
    if problem:
        raise VersionMismatch(problem)


# The `intuitor` command checks in its own callback, so that `intuitor --version` still reports a mismatched stack
# and other commands fail with one line instead of a traceback. Everyone else who imports intuitor is refused here.
if os.path.splitext(os.path.basename(getattr(sys, "argv", [""])[0] or ""))[0] != "intuitor":  # intuitor(.exe)
    check_versions()
