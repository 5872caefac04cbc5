"""Run: playbooks, the runner that streams agent rows into the store, the watches that mark a run
for what it was, labs (a guest kept up), running suites on a target, the kernel matrix with its
live view, the nightly and its baseline. May import every layer but lab.cli.
"""
