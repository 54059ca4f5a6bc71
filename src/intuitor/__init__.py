"""intuitor: Reinforcement Learning from Internal Feedback (INTUITOR, arXiv 2505.19590) on Hugging Face TRL."""

__version__ = "0.1.0"

# The TRL release intuitor is built and tested on; IntuitorTrainer overrides one private GRPOTrainer method.
SUPPORTED_TRL = "1.16.0"


def check_trl_version() -> None:
    import trl

    if trl.__version__ != SUPPORTED_TRL:
        raise ImportError(
            f"intuitor {__version__} supports trl=={SUPPORTED_TRL} only (found trl=={trl.__version__}): "
            f"IntuitorTrainer hooks into GRPOTrainer internals that change between releases. "
            f"Run: pip install trl=={SUPPORTED_TRL}"
        )
