"""Short import path for the code sandbox: `from intuitor.sandbox import run_python`."""

from intuitor.evaluation.sandbox import SandboxResult, run_many, run_python, run_tests, sandbox_backend  # noqa: F401
