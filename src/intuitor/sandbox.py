"""Short import path for the code sandbox: `from intuitor.sandbox import run_python, SandboxSession`."""

from intuitor.evaluation.sandbox import (  # noqa: F401
    MAX_ANSWER,
    MAX_OUTPUT,
    MAX_STDERR,
    ProgramFailed,
    SandboxResult,
    SandboxSession,
    SandboxUnavailable,
    allow_unsafe_code,
    cpu_scope,
    memory_scope,
    plain_decode,
    plain_encode,
    run_many,
    run_python,
    run_tests,
    sandbox_backend,
)
