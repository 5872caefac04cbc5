"""Host side of the eBPF overhead lab, in layers: two towers on a shared base that meet only in run:

  control:  core -> kernels -> guest ----\
                                          run -> cli
  data:     core -> results -> analysis -> report --/

lab.agent is the guest agent (standard library only, Python 3.8+): it imports nothing of the host
side, and any layer may import it (its row schema, its tables). lab/layers.py declares the graph
(`ALLOWED`) and `./labctl lint` checks it.
"""
