"""The "Sample completions" section of `intuitor report`: the same evaluation prompts answered by each run side by
side, and each run's training rollouts (completions.jsonl) at a few steps from first to last."""

from __future__ import annotations

from intuitor.analysis.report_html import _e, _hint, _note, _num, _text_of, _truncate
from intuitor.analysis.runs import Run
from intuitor.layout import COMPLETIONS_FILE, eval_hint


def _pick_steps(steps: list, n: int) -> list:
    """Up to n steps spread evenly from the first to the last.

    >>> _pick_steps([0, 10, 20, 30, 40], 3)
    [0, 20, 40]
    """
    if len(steps) <= n:
        return steps
    if n == 1:
        return [steps[-1]]
    return [steps[round(i * (len(steps) - 1) / (n - 1))] for i in range(n)]


def _completion_html(prompt, completion, fields: dict, show_prompt: bool = True) -> str:
    extra = " ".join(f"<b>{_e(k)}</b>={_num(v)}" for k, v in fields.items())
    prompt_html = (
        f"<details><summary>prompt</summary><pre>{_e(_truncate(_text_of(prompt)))}</pre></details>"
        if show_prompt
        else ""
    )
    return (
        f'<div class="completion"><div class="meta">{extra}</div>{prompt_html}'
        f"<pre>{_e(_truncate(_text_of(completion)))}</pre></div>"
    )


def _scalars(row: dict, skip: tuple) -> dict:
    return {
        k: v for k, v in row.items() if k not in skip and isinstance(v, (int, float, bool, str)) and len(str(v)) < 80
    }


def _side_table(title: str, runs: list[Run], rows: list[str]) -> str:
    """A heading and a table with one column per run (rows: ready <tr> elements)."""
    head = "".join(f"<th>{_e(r.label)}</th>" for r in runs)
    return f'<h3>{title}</h3><table class="side"><tr>{head}</tr>{"".join(rows)}</table>'


def _side_by_side(runs: list[Run], n_items: int) -> str:
    """The same prompts answered by each run (first response), from the setting most runs share."""
    counts: dict[str, int] = {}
    for r in runs:
        for label in r.samples:
            counts[label] = counts.get(label, 0) + 1
    if not counts:
        return ""
    label = max(counts, key=lambda s: (counts[s], s == "greedy", -list(counts).index(s)))
    have = [r for r in runs if label in r.samples]
    first = {
        r.label: {
            (str(x.get("task")), str(x.get("id"))): x for x in r.samples[label] if int(x.get("sample", 0) or 0) == 0
        }
        for r in have
    }
    common = [k for k in first[have[0].label] if all(k in first[r.label] for r in have)][:n_items]
    if not common:
        return ""
    rows = []
    for key in common:
        prompt = first[have[0].label][key].get("prompt", "")
        rows.append(
            f'<tr><td colspan="{len(have)}"><b>{_e(key[0])} {_e(key[1])}</b>'
            f"<pre>{_e(_truncate(_text_of(prompt), 600))}</pre></td></tr>"
        )
        cells = []
        for r in have:
            x = first[r.label][key]
            mark = {True: '<span class="ok">right</span>', False: '<span class="bad">wrong</span>'}.get(
                x.get("correct"), ""
            )
            fields = {k: x.get(k) for k in ("answer", "self_certainty", "num_tokens") if x.get(k) is not None}
            cells.append(f"<td>{mark} {_completion_html('', x.get('response', ''), fields, show_prompt=False)}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    title = (
        f'Evaluation: the same prompts, side by side <span class="meta">({_e(label)}, first {len(common)} '
        "items, first response each)</span>"
    )
    return _side_table(title, have, rows)


def _training_rollouts(runs: list[Run], n_steps: int, per_step: int) -> str:
    """Rollouts from completions.jsonl at a few steps (first to last), one column per run."""
    have = [r for r in runs if r.completions]
    if not have:
        return ""
    by_run = {}
    for r in have:
        steps: dict = {}
        for x in r.completions:
            steps.setdefault(x.get("step"), []).append(x)
        by_run[r.label] = steps
    numeric = lambda s: isinstance(s, (int, float)) and not isinstance(s, bool)  # noqa: E731
    all_steps = sorted(
        {s for st in by_run.values() for s in st}, key=lambda s: (0, s, "") if numeric(s) else (1, 0, str(s))
    )
    rows = []
    for step in _pick_steps(all_steps, n_steps):
        rows.append(f'<tr><td colspan="{len(have)}"><b>step {_e(step)}</b></td></tr>')
        cells = []
        for r in have:
            xs = by_run[r.label].get(step, [])[:per_step]
            cells.append(
                "<td>"
                + (
                    "".join(
                        _completion_html(
                            x.get("prompt", ""), x.get("completion", ""), _scalars(x, ("step", "prompt", "completion"))
                        )
                        for x in xs
                    )
                    or '<span class="note">no rollout logged</span>'
                )
                + "</td>"
            )
        rows.append(f"<tr>{''.join(cells)}</tr>")
    title = (
        f'During training <span class="meta">({COMPLETIONS_FILE}: the first rollouts of the step\'s batch, '
        "with their rewards and advantage)</span>"
    )
    return _side_table(title, have, rows)


def _completions_section(runs: list[Run], n_steps: int, per_step: int) -> str:
    parts = [_side_by_side(runs, max(2, 2 * per_step)), _training_rollouts(runs, n_steps, per_step)]
    for r in runs:
        if r.completions is None and r.metrics is not None:
            parts.append(
                _note(
                    f"{r.label}: no {COMPLETIONS_FILE} (IntuitorTrainer writes one at every logging step; "
                    "this run was trained without it)."
                )
            )
    if not any(parts[:2]):
        return _hint(
            f"No {COMPLETIONS_FILE} and no eval samples in the run folder(s). Training writes "
            f"{COMPLETIONS_FILE}; evaluation samples come from:",
            [eval_hint(r.path, task=r.task_hint) for r in runs],
        )
    return "".join(parts)
