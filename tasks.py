"""invoke entry point: `./labctl --list` shows every task; `./labctl --help TASK` its options.

The tasks are thin: each calls library code in lab/ (see lab/tasks/).
"""

from invoke import Collection

from lab.tasks import bench, kernels, labs, results, testing

ns = Collection()
ns.add_collection(Collection.from_module(labs, name="lab"))
ns.add_collection(Collection.from_module(kernels, name="kernels"))
ns.add_collection(Collection.from_module(bench, name="bench"))
ns.add_collection(Collection.from_module(results, name="results"))
ns.add_task(testing.test)
ns.add_task(testing.lint)
