"""Reading the ground truths: strace output and audit SCMP_ACT_LOG messages."""

from __future__ import annotations

import struct

import pytest

from seccomp_bench.ground_truth import parse_messages, strace_names

# `strace -f -qq --pidns-translation` of `runc run`: runc (100) starts its init (200),
# whose execve of /bin/sh is interrupted by runc's output, then sh (pid 1 in the
# container) forks cat, pid 2 in the container and 300 for strace.
RUNC_TRACE = """\
100 clone(child_stack=NULL, flags=CLONE_NEWPID|SIGCHLD) = 200
200 mount("proc", "/proc", "proc", 0, NULL) = 0
200 prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) = 0
200 execve("/bin/sh", ["/bin/sh", "-c", "cat /tmp/out"], 0xc000 /* 2 vars */ <unfinished ...>
100 futex(0x1, FUTEX_WAIT, 0, NULL <unfinished ...>
200 <... execve resumed>)               = 0
200 brk(NULL)                           = 0x5000
200 fork( <unfinished ...>
300 sendfile(1, 3, NULL, 16777216)      = 6
200 <... fork resumed>)                 = 2 /* 300 in strace's PID NS */
300 exit_group(0)                       = ?
300 +++ exited with 0 +++
200 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=2} ---
200 wait4(-1, NULL, 0, NULL)            = 2 /* 300 in strace's PID NS */
100 <... futex resumed>)                = 0
100 epoll_pwait(4, [], 128, 0, NULL, 0) = 0
200 exit_group(0)                       = ?
"""


def test_strace_names_whole_trace() -> None:
    names = strace_names("1 getpid() = 1\n1 <... read resumed>) = 4\n1 +++ exited with 0 +++\n")

    assert names == {"getpid", "read"}


def test_strace_names_skips_calls_strace_could_not_read() -> None:
    trace = (
        "7 getpid() = 7\n8 ???( <unfinished ...>\n9 <... ??? resumed>) = ?\n"
        "8 +++ killed by SIGKILL +++\n"
    )

    assert strace_names(trace) == {"getpid"}


def test_strace_names_container_only() -> None:
    names = strace_names(RUNC_TRACE, "/bin/sh")

    assert names == {"execve", "brk", "fork", "sendfile", "exit_group", "wait4"}


def test_strace_names_skip_runtime_calls() -> None:
    names = strace_names(RUNC_TRACE, "/bin/sh")

    assert "mount" not in names
    assert "prctl" not in names
    assert "futex" not in names
    assert "epoll_pwait" not in names


def test_strace_failed_execve_not_entrypoint() -> None:
    trace = (
        '5 execve("/bin/sh", ["sh"], 0x1 /* 0 vars */) = -1 ENOENT (No such file)\n'
        '5 execve("/bin/sh", ["sh"], 0x1 /* 0 vars */) = 0\n'
        "5 getuid() = 0\n"
    )

    assert strace_names(trace, "/bin/sh") == {"execve", "getuid"}


def test_strace_missing_entrypoint_rejected() -> None:
    with pytest.raises(ValueError, match="no successful execve of /bin/true"):
        strace_names(RUNC_TRACE, "/bin/true")


def test_strace_unknown_line_rejected() -> None:
    with pytest.raises(ValueError, match="unexpected line"):
        strace_names("1 getpid() = 1\nstrace: Process 1 attached\n")


def _netlink(kind: int, text: str) -> bytes:
    payload = text.encode()
    header = struct.pack("=IHHII", 16 + len(payload), kind, 0, 0, 0)
    padding = b"\0" * (-(16 + len(payload)) % 4)
    return header + payload + padding


def test_audit_messages_by_session() -> None:
    record = (
        'audit(1.2:3): auid=0 uid=0 gid=0 ses={ses} pid=42 comm="sh" exe="/bin/sh"'
        " sig=0 arch=c000003e syscall={nr} compat=0 ip=0x1 code=0x7ffc0000"
    )
    data = (
        _netlink(1326, record.format(ses=7, nr=39))
        + _netlink(1300, "not a seccomp record")
        + _netlink(1326, record.format(ses=8, nr=0))
    )

    calls = parse_messages(data)

    assert calls == [(7, "SCMP_ARCH_X86_64", 39), (8, "SCMP_ARCH_X86_64", 0)]


def test_audit_message_without_session_skipped() -> None:
    record = 'audit(1.2:3): pid=42 comm="sh" arch=c000003e syscall=39'

    assert parse_messages(_netlink(1326, record)) == []


def test_audit_truncated_message_ignored() -> None:
    truncated = _netlink(1326, "ses=1 pid=1 arch=c000003e syscall=1")[:10]

    assert parse_messages(truncated) == []
