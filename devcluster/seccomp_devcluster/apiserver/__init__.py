"""A Kubernetes API server emulator for the dev cluster, built on KMock.

No real cluster or kube-apiserver binary runs on the project's machines, so tests, the
demo and benchmarks use this control plane: it behaves like the real API server where
kubectl 1.32, kopf and the `kubernetes` client rely on it. See devcluster/CONTRACT.md
for the interface that the node stand-in and the tests use, and README.md beside this
module for what is implemented and what is not.
"""

from seccomp_devcluster.apiserver.server import ApiServer

__all__ = ["ApiServer"]
