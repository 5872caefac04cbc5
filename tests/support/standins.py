"""Stand-ins the CI tests share: a `docker` that runs `docker exec [-w DIR] [-e K=V] NAME CMD...` as
CMD on this machine (what .ci/container's steps need of it, without a Docker daemon)."""

DOCKER = """#!/bin/sh
[ "$1" = exec ] || exit 1
shift
while [ $# -gt 0 ]; do case "$1" in -w|-e) shift 2 ;; *) break ;; esac; done
shift
exec "$@"
"""
