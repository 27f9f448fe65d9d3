"""The dev cluster's workload controllers, a stand-in for kube-controller-manager.

`manager.ControllerManager` runs the Deployment controller (`deployments`) and the
DaemonSet controller (`daemonsets`) in threads of the cluster launcher.
"""
