"""The reasoning sandbox of `intuitor demo`: a tiny base model with a latent reasoning style, and the addition task.

`base_model` pretrains (and loads) the committed base model in `assets/`; the task it is trained on is
`intuitor.tasks.addition`. `scripts/build_demo_model.py` rebuilds the assets bit for bit from a seed.
Names are imported lazily so that `intuitor --help`, which imports `intuitor.demo.cli`, does not import torch.
"""

__all__ = ["ASSETS_DIR", "BaseModelSpec", "load_base_model"]


def __getattr__(name: str):
    if name in __all__:
        from intuitor.demo import base_model

        return getattr(base_model, name)
    raise AttributeError(f"module 'intuitor.demo' has no attribute {name!r}")
