"""ctypes mirrors of the structures in bpf/recorder.h. Change both together."""

from __future__ import annotations

import ctypes
import enum

SYSCALL_SLOTS = 1024
X32_SYSCALL_BIT = 0x40000000
TASK_NEEDS_BASE_FILTER = 0x1


class Phase(enum.IntEnum):
    """Where a call was made relative to the runtime's seccomp filter point."""

    SETUP = 0
    FILTERED = 1
    WORKLOAD = 2


class Abi(enum.IntEnum):
    """The syscall ABI a call was made through."""

    NATIVE = 0
    COMPAT = 1
    X32 = 2


class EventType(enum.IntEnum):
    MNTNS_ENTERED = 1
    CONTAINER_EXITED = 2
    CONTAINER_STARTED = 3


CGROUP_NAME_LENGTH = 128


class Stat(enum.IntEnum):
    SET_FULL = 0
    TASK_STATE_FULL = 1
    EVENT_DROPPED = 2
    ODD_FULL = 3


STAT_COUNT = len(Stat)


class TaskState(ctypes.Structure):
    _fields_ = [
        ("mntns", ctypes.c_uint32),
        ("phase", ctypes.c_uint8),
        ("flags", ctypes.c_uint8),
        ("reserved", ctypes.c_uint16),
        ("base_filter", ctypes.c_uint64),
        ("comm", ctypes.c_char * 16),
    ]


class SyscallKey(ctypes.Structure):
    _fields_ = [
        ("mntns", ctypes.c_uint32),
        ("phase", ctypes.c_uint8),
        ("abi", ctypes.c_uint8),
        ("reserved", ctypes.c_uint16),
    ]


class SyscallSet(ctypes.Structure):
    _fields_ = [("seen", ctypes.c_uint8 * SYSCALL_SLOTS)]


class OddSyscallKey(ctypes.Structure):
    _fields_ = [
        ("mntns", ctypes.c_uint32),
        ("phase", ctypes.c_uint8),
        ("abi", ctypes.c_uint8),
        ("reserved", ctypes.c_uint16),
        ("nr", ctypes.c_int64),
    ]


class ExecInfo(ctypes.Structure):
    _fields_ = [
        ("pid", ctypes.c_uint32),
        ("filtered", ctypes.c_uint8),
        ("no_new_privs", ctypes.c_uint8),
        ("reserved", ctypes.c_uint16),
        ("runtime_comm", ctypes.c_char * 16),
    ]


class Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_uint32),
        ("mntns", ctypes.c_uint32),
        ("pid", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32),
        ("comm", ctypes.c_char * 16),
        ("cgroup", ctypes.c_char * CGROUP_NAME_LENGTH),
    ]


class RecorderConfig(ctypes.Structure):
    _fields_ = [
        ("all_containers", ctypes.c_uint32),
        ("host_mntns", ctypes.c_uint32),
    ]
