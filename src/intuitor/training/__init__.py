"""Training: IntuitorConfig (GRPOConfig + INTUITOR options) and IntuitorTrainer (GRPOTrainer + self-certainty)."""

from intuitor.training.config import IntuitorConfig
from intuitor.training.trainer import IntuitorTrainer

__all__ = ["IntuitorConfig", "IntuitorTrainer"]
