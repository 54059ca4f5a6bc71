"""Training: IntuitorConfig (GRPOConfig + INTUITOR options) and IntuitorTrainer (GRPOTrainer + self-certainty)."""

import warnings

# TRL 1.16 reads `model.is_gradient_checkpointing`, which transformers 5.23 deprecated: a FutureWarning on every
# run that no user can act on. Only that message is silenced; the user-facing `gradient_checkpointing` field keeps
# its warning (recipes use `activation_checkpointing`, its 5.x name).
warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)

from intuitor.training.config import IntuitorConfig  # noqa: E402
from intuitor.training.trainer import IntuitorTrainer  # noqa: E402

__all__ = ["IntuitorConfig", "IntuitorTrainer"]
