"""Group-aware rewards across processes: a prompt's group split over 2 CPU processes must get exactly the rewards
a single process computes on the whole batch (plurality vote, std floor), also inside a real IntuitorTrainer step.
Launches tests/workers/vote_worker.py with `accelerate launch` (see its docstring for the CPU flags)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest


WORKER = Path(__file__).parent / "workers" / "vote_worker.py"


def worker_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("multiprocess_vote_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def worker_results(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("mp")
    accelerate = Path(sys.executable).with_name("accelerate")
    cmd = [
        str(accelerate),
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(free_port()),
        str(WORKER),
        str(out),
        str(tiny_model_dir),
    ]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


def single_process_vote(completions, g=4):
    from intuitor.rewards.plurality_vote import PluralityVoteReward

    return PluralityVoteReward(num_generations=g)(prompts=["q"] * len(completions), completions=completions)


pytestmark = [pytest.mark.slow, pytest.mark.multiprocess]


def test_split_group_vote_equals_single_process_vote(worker_results):
    expected = single_process_vote(worker_module().VOTE_COMPLETIONS)
    assert expected[4:8] == [0.0, 1.0, 1.0, 1.0]  # the split group's label is 5, seen only by gathering
    got = worker_results[0]["vote"] + worker_results[1]["vote"]
    assert got == expected
    assert worker_results[0]["vote_unattached"] + worker_results[1]["vote_unattached"] == expected


def test_split_group_cluster_frequency_equals_single_process(worker_results):
    from intuitor.rewards.cluster_frequency import ClusterFrequencyReward

    completions = worker_module().VOTE_COMPLETIONS
    expected = ClusterFrequencyReward(num_generations=4)(prompts=["q"] * len(completions), completions=completions)
    assert worker_results[0]["cluster_frequency"] + worker_results[1]["cluster_frequency"] == expected
    assert expected[4:8] == [0.25, 0.75, 0.75, 0.75]  # the split group: 5 three times of four, seen by gathering


def test_split_group_std_floor_equals_single_process(worker_results):
    from intuitor.rewards.group import _FloorCoordinator

    w = worker_module()
    coordinator = _FloorCoordinator([w.reward_a, w.reward_b], ["reward_a", "reward_b"], w.FLOOR_WEIGHTS, w.FLOOR)
    coordinator.num_generations = 4
    names = list(w.FLOOR_VALUES)
    expected = [coordinator.column(k, ["q"] * 12, names, None, {}) for k in range(2)]
    for k in range(2):
        got = worker_results[0]["floor"][k] + worker_results[1]["floor"][k]
        assert got == pytest.approx(expected[k])
    assert expected[1] == [w.FLOOR_VALUES[c][1] for c in names]  # weight 0: unscaled
    assert expected[0][4] == pytest.approx(1.0 / w.FLOOR)  # the split group is nearly tied: floored


def test_random_reward_differs_across_processes(worker_results):
    assert worker_results[0]["random"] != worker_results[1]["random"]


def test_trainer_step_split_groups(worker_results):
    from intuitor.rewards.group import completion_text

    calls = [r["trainer"]["calls"] for r in worker_results]
    assert all(r["trainer"]["num_processes"] == 2 for r in worker_results)
    assert len(calls[0]) == len(calls[1]) == 1
    texts = [[completion_text(c) for c in rank[0]["completions"]] for rank in calls]
    assert texts == [worker_module().TRAINER_COMPLETIONS[r] for r in range(2)]  # the group of 4 is split 2 + 2
    expected = single_process_vote(texts[0] + texts[1])
    assert expected == [0.0, 1.0, 1.0, 1.0]  # rank 0 alone would tie 3 vs 5 and reward the 3
    assert calls[0][0]["rewards"] + calls[1][0]["rewards"] == expected
