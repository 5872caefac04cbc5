"""kernels.*: the kernel catalog."""
