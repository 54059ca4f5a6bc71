"""Evaluation: the harness (samples.jsonl + results.json) and its CLI; code runs in `intuitor.sandbox`."""
