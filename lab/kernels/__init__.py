"""Kernels: the catalog of kernels the lab boots (lab/data and images/kernels.yaml), the sources
they come from (Debian's archive through the lab's private apt configuration, Ubuntu mainline), and
the kernel's own trigger bench built from a kernel source package. May import lab.core only.
"""
