"""Guest agent: runs one suite on the kernel it finds itself on and prints result rows.

Standard library only, Python 3.8+: it is copied as-is into guests (Ubuntu 22.04, Debian 12)
and also runs on the host for the `host` target. Never import host-only packages here.
"""
