"""The dev cluster's node stand-in: a kubelet-like process that runs pods with runc or crun.

Run one per simulated node with `python -m seccomp_devcluster.node`; see `__main__`.
"""
