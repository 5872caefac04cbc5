"""The map suite (guest side, standard library only): in-kernel and user-space map operations,
key generation, contention/collision/occupancy experiments, memory and the memlock model.
"""
