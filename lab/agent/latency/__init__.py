"""Latency percentiles under a tool or a hook (issue 28): workloads that give every request's latency,
the percentile rule, ABBA pairs, and the rows of the tool and hook suites' `latency` mode."""
