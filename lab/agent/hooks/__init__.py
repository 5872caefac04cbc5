"""The hook suite (guest side, standard library only): the attach-type table, the kernel_batch
and open-path experiments, perf_event rows and the plausibility gates the agent applies itself.
"""
