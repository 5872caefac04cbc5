"""Core: the lab's paths and errors (config), units of a figure (ns or guest instructions) and
signal handling for long runs. Imports nothing else of the lab; every layer may import it.
"""
