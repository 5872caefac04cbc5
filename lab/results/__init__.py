"""Results: the store (a run directory: rows.jsonl per suite plus manifest.json), the frame of rows
with the plausibility gates applied on every read, the one statistics module, row selectors and the
split of frames by unit. May import lab.core, lab.kernels and lab.agent (its row schema).
"""
