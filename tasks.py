"""invoke entry point: `./labctl --list` shows every task; `./labctl --help TASK` its options.

The tasks are thin: each calls library code in lab/ (the tasks are in lab/cli/); the namespace is lab/cli/__init__.py's,
the same that ./labctl and the `ebpf-lab` console script run.
"""

from lab.cli import namespace

ns = namespace()
