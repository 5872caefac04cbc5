"""Guests: accelerators (kvm, tcg, icount), root images, the QEMU/virtme-ng command, a lab's
state on disk, SSH to a guest, and what is pushed into it (the agent bundle, BPF objects, newer
tool builds). May import lab.core, lab.kernels, lab.results and lab.agent.
"""
