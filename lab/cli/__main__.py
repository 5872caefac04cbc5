"""`python -m lab.cli`: what ./labctl runs."""

from lab.cli import main

main()
