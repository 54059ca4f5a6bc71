"""Run TRL's own GRPO test suite against IntuitorTrainer, offline: the drop-in contract, tested by TRL's tests.

TRL's `tests/test_grpo_trainer.py` cannot be committed here (and downloads models and data), so this script takes
it from a TRL checkout you provide and writes an adapted copy elsewhere:

    git clone https://github.com/huggingface/trl /tmp/trl     # the revision nearest the pinned TRL (see README)
    python tests/trl_suite/adapt.py /tmp/trl /tmp/trl-grpo-suite                 # against IntuitorTrainer
    python tests/trl_suite/adapt.py /tmp/trl /tmp/trl-grpo-baseline --trainer trl # the same assets, TRL's trainer
    .venv/bin/pytest /tmp/trl-grpo-suite -k "TestGRPOTrainer and loss_types"      # run it in slices

The adaptation changes no assertion and no test body. It only:
1. imports `IntuitorConfig as GRPOConfig, IntuitorTrainer as GRPOTrainer` instead of TRL's classes (`--trainer trl`
   keeps TRL's, for the baseline that tells our failures from the ones the offline assets cause);
2. rebinds `load_dataset` to `assets.load_dataset` (the zen datasets rebuilt in memory by TRL's own generator);
3. replaces each "trl-internal-testing/tiny-..." model id by `assets.local_model("tiny-...")`, a local stand-in
   built from the architecture's config (tests/trl_suite/assets.py);
4. adds a conftest header that forces the hub offline and gives the installed TRL a "not available" probe for
   each optional package a newer testing_utils asks about. TRL's conftest and testing_utils are copied unchanged.
It checks that the number of `assert` statements is unchanged and fails otherwise.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path


HERE = Path(__file__).resolve().parent
TRL_IMPORT = "from trl import GRPOConfig, GRPOTrainer\n"
OURS = "from intuitor.training import IntuitorConfig as GRPOConfig, IntuitorTrainer as GRPOTrainer\n"
MODEL_ID = re.compile(r'"trl-internal-testing/(tiny-[^"]+)"')
ANCHOR = "\nif is_peft_available():\n"  # first statement after the import block of TRL's file

CONFTEST_HEADER = """# Added by intuitor tests/trl_suite/adapt.py: offline, local assets.
import os, sys
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("INTUITOR_TRL_ROOT", {trl_root!r})
sys.path.insert(0, {assets_dir!r})
# testing_utils of a newer TRL may probe optional packages the installed TRL has no probe for: those report
# "not available", so the tests that need them skip with TRL's own require_* reason.
import trl.import_utils as _iu
for _name in {probes!r}:
    if not hasattr(_iu, _name):
        setattr(_iu, _name, lambda: False)
# ---- TRL's tests/conftest.py, unchanged, follows ----
"""


def adapt_test_source(source: str, trainer: str = "intuitor") -> str:
    """The adapted text of TRL's test_grpo_trainer.py (pure function: tested in tests/test_trl_contract.py)."""
    if source.count(TRL_IMPORT) != 1:
        raise ValueError(f"expected exactly one line {TRL_IMPORT.strip()!r} in the TRL test file")
    if ANCHOR not in source:
        raise ValueError(f"expected the line {ANCHOR.strip()!r} after the imports of the TRL test file")
    out = source
    if trainer == "intuitor":
        out = out.replace(TRL_IMPORT, OURS)
    hook = "import assets as _offline_assets\nload_dataset = _offline_assets.load_dataset\n"
    out = out.replace(ANCHOR, "\n" + hook + ANCHOR, 1)
    out = MODEL_ID.sub(lambda m: f'_offline_assets.local_model("{m.group(1)}")', out)
    if _asserts(out) != _asserts(source):
        raise AssertionError("the adaptation changed the number of assert statements")
    return out


def _asserts(text: str) -> int:
    return len(re.findall(r"^\s*assert\b", text, flags=re.M))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("trl_root", type=Path, help="a TRL checkout (tests/ and scripts/generate_zen_dataset.py are read)")
    p.add_argument("out_dir", type=Path, help="where the adapted package is written (outside this repository)")
    p.add_argument("--trainer", choices=["intuitor", "trl"], default="intuitor")
    args = p.parse_args(argv)
    tests = args.trl_root / "tests"
    pkg = args.out_dir / "trl_grpo_suite"
    pkg.mkdir(parents=True, exist_ok=True)
    for name in ("__init__.py", "testing_utils.py", "testing_constants.py"):
        if (tests / name).exists():
            shutil.copy(tests / name, pkg / name)
    utils = (tests / "testing_utils.py").read_text()
    block = re.search(r"from trl\.import_utils import \(([^)]*)\)", utils)
    probes = re.findall(r"\b(is_\w+_available)\b", block.group(1)) if block else []
    header = CONFTEST_HEADER.format(trl_root=str(args.trl_root.resolve()), assets_dir=str(HERE), probes=probes)
    (pkg / "conftest.py").write_text(header + (tests / "conftest.py").read_text())
    source = (tests / "test_grpo_trainer.py").read_text()
    (pkg / "test_grpo_trainer.py").write_text(adapt_test_source(source, args.trainer))
    print(f"wrote {pkg} ({args.trainer} trainer); run: pytest {pkg}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
