"""Host side of the eBPF overhead lab, in layers; a module imports only from layers before its own:

  core -> kernels -> results -> guest -> analysis -> report -> run -> cli

lab.agent is the guest agent (standard library only, Python 3.8+): it imports nothing of the host
side, and any layer may import it (its row schema, its tables). `./labctl lint` checks the order.
"""
