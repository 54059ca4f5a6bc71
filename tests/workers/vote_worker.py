"""Worker of tests/test_multiprocess_vote.py, run in 2 CPU processes:

    accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no \
        --main_process_port PORT tests/multiprocess_vote_worker.py OUT_DIR TINY_MODEL_DIR

(`--multi_gpu` only selects accelerate's torchrun launcher; `--cpu` runs a single process unless MPI is set up.
`PartialState(cpu=True)` / `use_cpu=True` then make it a gloo MULTI_CPU group.)

Each process writes OUT_DIR/rank<r>.json with what the group-aware rewards returned for its local samples, where one
prompt's group is split across the two processes; the test compares them with the single-process computation.
"""

import json
import sys
from pathlib import Path


G = 4
# 3 prompts x G: 6 samples per process. Group 1 (samples 4-7) is split: rank 0 sees answers 3, 5 (alone it would
# tie and pick 3), rank 1 sees 5, 5; the whole group's plurality is 5.
VOTE_COMPLETIONS = [
    "\\boxed{1}",
    "\\boxed{1}",
    "\\boxed{2}",
    "none",
    "\\boxed{3}",
    "\\boxed{5}",
    "\\boxed{5}",
    "x = 5",
    "7",
    "8",
    "8",
    "7",
]
FLOOR_VALUES = {  # completion -> (reward a, reward b); group 1 again split, and nearly tied
    "c0": (0.0, 1.0),
    "c1": (1.0, 0.0),
    "c2": (2.0, 1.0),
    "c3": (3.0, 0.0),
    "c4": (1.0, 1.0),
    "c5": (1.0, 0.0),
    "c6": (1.01, 1.0),
    "c7": (1.0, 0.0),
    "c8": (5.0, 0.0),
    "c9": (5.0, 1.0),
    "c10": (5.0, 0.0),
    "c11": (5.0, 1.0),
}
FLOOR_WEIGHTS, FLOOR = [1.0, 0.0], 0.1


def reward_a(prompts, completions, **kwargs):
    return [FLOOR_VALUES[c][0] for c in completions]


def reward_b(prompts, completions, **kwargs):
    return [FLOOR_VALUES[c][1] for c in completions]


class FakeTrainer:
    """What GroupAware.attach reads: the process layout, G, and the mode."""

    def __init__(self, state):
        self.accelerator, self.num_generations, self.num_generations_eval = state, G, G
        self.model = type("Model", (), {"training": True})()


def main(out_dir: str, model_dir: str) -> None:
    from accelerate import PartialState

    from intuitor.rewards.group import _FloorCoordinator
    from intuitor.rewards.plurality_vote import PluralityVoteReward
    from intuitor.rewards.random_reward import RandomReward

    state = PartialState(cpu=True)
    rank, world = state.process_index, state.num_processes
    assert world == 2, f"expected 2 processes, got {world}"
    n = len(VOTE_COMPLETIONS) // world
    mine = slice(rank * n, (rank + 1) * n)
    result = {"rank": rank}

    vote = PluralityVoteReward()
    vote.attach(FakeTrainer(state))
    result["vote"] = vote(prompts=["q"] * n, completions=VOTE_COMPLETIONS[mine])
    unattached = PluralityVoteReward(num_generations=G)  # stand-alone: torch.distributed's layout
    result["vote_unattached"] = unattached(prompts=["q"] * n, completions=VOTE_COMPLETIONS[mine])
    from intuitor.rewards.cluster_frequency import ClusterFrequencyReward

    frequency = ClusterFrequencyReward()  # EMPO's cluster share: the same gathering as the vote
    frequency.attach(FakeTrainer(state))
    result["cluster_frequency"] = frequency(prompts=["q"] * n, completions=VOTE_COMPLETIONS[mine])

    floor = _FloorCoordinator([reward_a, reward_b], ["reward_a", "reward_b"], FLOOR_WEIGHTS, FLOOR)
    floor.attach(FakeTrainer(state))
    local = list(FLOOR_VALUES)[mine]
    result["floor"] = [floor.column(k, ["q"] * n, local, None, {}) for k in range(2)]

    result["random"] = RandomReward(seed=0)(prompts=["q"] * 3, completions=["x"] * 3)
    result["trainer"] = trainer_step(model_dir, out_dir)
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(result))


# The trainer step's completions, fixed per process: the group (one prompt, G=4) is split 2 + 2, and rank 0 alone
# would see a tie between 3 and 5 and pick 3; the whole group votes 5.
TRAINER_COMPLETIONS = {0: ["3", "5"], 1: ["5", "x 5"]}


def trainer_step(model_dir: str, out_dir: str) -> dict:
    """One IntuitorTrainer step with 2 samples per process and G=4: every group is split across the processes."""
    from datasets import Dataset

    from intuitor.models import load_model_and_tokenizer
    from intuitor.rewards.plurality_vote import PluralityVoteReward
    from intuitor.training import IntuitorConfig, IntuitorTrainer

    class SpyVote(PluralityVoteReward):
        """The registry's vote, recording each call."""

        def __init__(self):
            super().__init__()
            self.calls = []

        def __call__(self, prompts, completions, completion_ids=None, **kwargs):
            out = super().__call__(prompts, completions, completion_ids, **kwargs)
            self.calls.append({"completions": list(completions), "rewards": out})
            return out

    model, tok = load_model_and_tokenizer(model_dir)
    spy = SpyVote()
    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": f"q{i}"}], "answer": "1"} for i in range(4)])
    args = IntuitorConfig(
        output_dir=str(Path(out_dir, "run")),
        max_steps=1,
        per_device_train_batch_size=2,
        num_generations=4,
        max_completion_length=8,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        logging_steps=1,
        beta=0.0,
        gradient_checkpointing=False,
        seed=0,
        disable_tqdm=True,
    )
    trainer = IntuitorTrainer(model=model, reward_funcs=[spy], args=args, train_dataset=ds, processing_class=tok)
    texts = TRAINER_COMPLETIONS[trainer.accelerator.process_index]

    def fixed_generation(prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        assert len(prompt_ids) == len(texts)
        return [tok(t, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for t in texts], None

    trainer._generate_single_turn = fixed_generation
    trainer.train()
    return {"calls": spy.calls, "num_processes": trainer.accelerator.num_processes}


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
