"""Remove whatever a node's containers left behind, after its pod workers stopped.

Called by `NodeAgent.stop` and by the cluster launcher once a node process has
exited (also after a crash), so containers, network namespace mounts, cgroups and
state files never outlive the dev cluster.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

from seccomp_devcluster import oci
from seccomp_devcluster.cgroups import remove_cgroup, remove_cgroup_tree
from seccomp_devcluster.node.settings import NodeSettings

logger = logging.getLogger(__name__)


def mounts_under(directory: Path) -> list[Path]:
    """Return the mount points below `directory`, deepest first."""
    prefix = str(directory.resolve()).rstrip("/") + "/"
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mount_point = line.split()[4].replace("\\040", " ")
        if mount_point.startswith(prefix):
            found.append(Path(mount_point))
    return sorted(found, key=lambda path: len(path.parts), reverse=True)


def sweep_node_state(settings: NodeSettings) -> list[str]:
    """Delete the node's containers, mounts, cgroups and state directory.

    Returns a description of each leftover it had to remove; an empty list means
    the pod workers had already cleaned up everything.
    """
    leftovers: list[str] = []
    with oci.crun_ready():
        for runtime in oci.RUNTIMES:
            root = settings.runtime_root / runtime
            for container_id in oci.list_containers(root, runtime):
                leftovers.append(f"{runtime} container {container_id}")
                binary = oci.runtime_binary(runtime)
                subprocess.run([binary, "--root", str(root), "kill", container_id, "KILL"],
                               capture_output=True, check=False)
                subprocess.run([binary, "--root", str(root), "delete", "--force", container_id],
                               capture_output=True, check=False)
                remove_cgroup(f"{settings.cgroup_parent}/{container_id}", levels=1)
    if settings.state_dir.exists():
        for mount_point in mounts_under(settings.state_dir):
            leftovers.append(f"mount {mount_point}")
            subprocess.run(["umount", "--lazy", str(mount_point)], capture_output=True,
                           check=False)
    for cgroup in remove_cgroup_tree(settings.cgroup_parent):
        logger.error("Cgroup %s still has processes and was left in place", cgroup)
    # The shared parent goes once the last node is gone; busy is fine here.
    remove_cgroup(settings.cgroup_parent.rsplit("/", 1)[0], levels=1)
    shutil.rmtree(settings.state_dir, ignore_errors=True)
    return leftovers
