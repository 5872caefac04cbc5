"""results.*: aggregate runs, compare them, and write reports."""
