"""Evaluation: the harness (samples.jsonl + results.json), its CLI, and the sandbox for model-written code."""
