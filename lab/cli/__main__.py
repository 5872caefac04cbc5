"""`python -m lab.cli`: what ./labctl runs (it has installed the Debian packages itself)."""

from lab.cli import main

main(binary="./labctl")
