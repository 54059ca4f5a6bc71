"""Training: IntuitorConfig (GRPOConfig + INTUITOR options) and IntuitorTrainer (GRPOTrainer + self-certainty).

Both are imported lazily, so that light modules of this package (the `intuitor guard` command) load without TRL.
"""

import warnings


# TRL 1.16 reads `model.is_gradient_checkpointing`, which transformers 5.23 deprecated: a FutureWarning on every
# run that no user can act on. Only that message is silenced (IntuitorConfig also maps GRPOConfig's
# `gradient_checkpointing` to its 5.x name `activation_checkpointing`, so that one does not fire either).
warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)

__all__ = ["IntuitorConfig", "IntuitorTrainer"]


def __getattr__(name: str):
    if name == "IntuitorConfig":
        from intuitor.training.config import IntuitorConfig

        return IntuitorConfig
    if name == "IntuitorTrainer":
        from intuitor.training.trainer import IntuitorTrainer

        return IntuitorTrainer
    raise AttributeError(f"module 'intuitor.training' has no attribute {name!r}")
