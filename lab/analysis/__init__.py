"""Analysis: from rows to answers. Claims (data) and their one decision function, verdicts with
Holm per claim, expected parts from a manifest, run comparison, instruction tables, rank orders,
the tool decomposition. May import lab.core, lab.kernels, lab.results and lab.agent; never guests.
"""
