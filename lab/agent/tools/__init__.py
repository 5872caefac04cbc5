"""The tool suite (guest side, standard library only): libbpf-tools and user tools under load,
their attachment, build choice, verifier statistics, map access counting and the cost decomposition.
"""
