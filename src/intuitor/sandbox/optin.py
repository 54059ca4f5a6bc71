"""The backends, and the user's opt-in for the one that does not isolate.

"bwrap" (bubblewrap) is the sandbox. "rlimit" runs the program with resource limits and no isolation: it is used
only when the user opts in with `INTUITOR_CONFIRM_RUN_UNSAFE_CODE=1` or `allow_unsafe_code()` (`intuitor eval
--confirm-run-unsafe-code`), as lm-evaluation-harness requires `--confirm_run_unsafe_code`. Which one runs is
`sandbox_backend()` (`run.py`: it probes bubblewrap by running a program).
"""

from __future__ import annotations

import logging
import os
import warnings

from intuitor.sandbox.results import SandboxUnavailable


logger = logging.getLogger(__name__)

BACKENDS = ("bwrap", "rlimit")
UNSAFE_ENV = "INTUITOR_CONFIRM_RUN_UNSAFE_CODE"
_unsafe_allowed = False


def allow_unsafe_code(allow: bool = True) -> None:
    """Opt in (or back out) of running model-written code WITHOUT isolation when bubblewrap is unavailable."""
    global _unsafe_allowed
    _unsafe_allowed = allow


def _unsafe_confirmed() -> bool:
    return _unsafe_allowed or os.environ.get(UNSAFE_ENV, "") in ("1", "true", "yes")


def _check_unsafe(backend: str) -> str:
    if not _unsafe_confirmed():
        raise SandboxUnavailable(
            "bubblewrap does not work here, so model-written code cannot be isolated: install bubblewrap "
            f"(apt-get install bubblewrap), or accept the risk of running it with resource limits only and no "
            f"file, network or process isolation: {UNSAFE_ENV}=1 or `intuitor eval --confirm-run-unsafe-code`."
        )
    message = (
        "intuitor sandbox: running model-written code WITHOUT isolation (resource limits only), as confirmed by "
        f"{UNSAFE_ENV} / --confirm-run-unsafe-code; it can read your files and the harness."
    )
    logger.warning(message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)
    return backend
