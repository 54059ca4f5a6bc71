"""Rebuild the demo's base model (src/intuitor/demo/assets/) from its seed, bit for bit.

The base model of `intuitor demo` is a tiny Qwen2 pretrained from scratch on three-digit additions written in three
styles (see `intuitor.demo.base_model`). Its weights and tokenizer are committed in the package; this script is how
they were made. Everything it does is a function of the seed: one thread, deterministic algorithms, a seeded data
stream. It takes a few minutes on one CPU core.

    python scripts/build_demo_model.py                      # rebuild into the package's assets folder
    python scripts/build_demo_model.py --out /tmp/m --verify  # rebuild elsewhere and compare with the committed weights

Bit-for-bit holds for the same torch version on the same kind of CPU; floating-point kernels differ across them, so
on another machine `--verify` may report a different hash for a model that behaves the same.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from intuitor.demo.base_model import ASSETS_DIR, BaseModelSpec, train_base_model


WEIGHTS = "model.safetensors"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", default=str(ASSETS_DIR), help="folder to write the model and tokenizer to")
    p.add_argument("--seed", type=int, default=BaseModelSpec.seed, help="the seed everything is a function of")
    p.add_argument("--verify", action="store_true", help=f"compare the rebuilt {WEIGHTS} with the committed one")
    args = p.parse_args(argv)

    out = Path(args.out)
    if args.verify and out.resolve() == ASSETS_DIR.resolve():
        p.error("--verify compares against the committed assets: pass --out to a different folder")
    committed = sha256(ASSETS_DIR / WEIGHTS) if args.verify else None
    train_base_model(BaseModelSpec(seed=args.seed), out)
    built = sha256(out / WEIGHTS)
    print(json.dumps({"out": str(out), WEIGHTS: built, "bytes": (out / WEIGHTS).stat().st_size}))
    if args.verify:
        same = built == committed
        print(f"{'identical to' if same else 'DIFFERENT from'} the committed weights ({committed})")
        return 0 if same else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
