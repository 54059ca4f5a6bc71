"""The reasoning sandbox of `intuitor demo`: a tiny base model with a latent reasoning style, and the addition task.

`base_model` pretrains (and loads) the committed base model in `assets/`; the task it is trained on is
`intuitor.tasks.addition`. `scripts/build_demo_model.py` rebuilds the assets bit for bit from a seed.
"""

from intuitor.demo.base_model import ASSETS_DIR, BaseModelSpec, load_base_model

__all__ = ["ASSETS_DIR", "BaseModelSpec", "load_base_model"]
