"""Math answers, one concern per file: `extract` (which answer a response states), `normalize` (plain-text forms
and the quick key of plain numbers), `equivalence` (math-verify equality and grouping) and `limits` (where a check
runs: the helper process, its timers and memory cap). The public face, and the departures from lighteval, are in
`intuitor.tasks.mathverify`.
"""
