"""Worker of tests/test_multiprocess.py: the separate self-certainty pass on a model sharded with FSDP (gloo, CPU).

Each process holds a different number of completions (rank r: 3 + 2r, so 2 and 3 batches of 2), as GRPO ranks
do; every decoder layer and the root are sharded with FSDP2's `fully_shard`, so each forward all-gathers weights
and every process must take part in every gather. Writes OUT/rank{r}.json: the sharded pass's statistics and the
same statistics from the unsharded model (`response_statistics`), for the test to compare.

    python -m torch.distributed.run --nproc_per_node 2 tests/workers/sharded_pass_worker.py MODEL_DIR OUT [--legacy]

`--legacy` runs `intuitor.certainty.response_statistics` on the sharded model instead (the pass before issue 20):
it calls the unwrapped backbone and LM head directly, which fails or hangs here.
"""

import datetime
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist


def main():
    model_dir, out = sys.argv[1], Path(sys.argv[2])
    legacy = "--legacy" in sys.argv
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
    rank = dist.get_rank()
    torch.manual_seed(0)
    from torch.distributed.fsdp import fully_shard

    from intuitor.certainty import response_statistics
    from intuitor.models import load_model_and_tokenizer
    from intuitor.training.scoring import pass_statistics

    reference, _ = load_model_and_tokenizer(model_dir)
    model, _ = load_model_and_tokenizer(model_dir)
    g = torch.Generator().manual_seed(100 + rank)
    n = 3 + 2 * rank
    prompts = [torch.randint(3, 259, (int(k),), generator=g).tolist() for k in torch.randint(2, 9, (n,), generator=g)]
    completions = [
        torch.randint(3, 259, (int(k),), generator=g).tolist() for k in torch.randint(0, 12, (n,), generator=g)
    ]
    expected = response_statistics(reference, prompts, completions, batch_size=2)
    for layer in model.model.layers:
        fully_shard(layer)
    fully_shard(model)
    if legacy:
        got = response_statistics(model, prompts, completions, batch_size=2)
    else:
        got = pass_statistics(model, prompts, completions, batch_size=2, chunk_elements=259 * 4)
    (out / f"rank{rank}.json").write_text(
        json.dumps(
            {
                "n": n,
                "self_certainty": got.self_certainty.tolist(),
                "entropy": got.entropy.tolist(),
                "expected_self_certainty": expected.self_certainty.tolist(),
                "expected_entropy": expected.entropy.tolist(),
            }
        )
    )
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
