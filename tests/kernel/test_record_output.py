"""Where `record` writes the profile when no file is given: standard output, shared.

The command's own output goes to the same standard output, so a redirected one gets
both, and `record` warns about it unless `-o -` requests standard output explicitly.
"""

from __future__ import annotations

import pytest
from kernel_helpers import Cli

pytestmark = pytest.mark.kernel

WARNING = "seccomp-recorder record: warning: the profile goes to standard output"


def test_redirected_stdout_gets_warning(recording_host: None, cli: Cli) -> None:
    result = cli.run("record", "--name", "echo", "--", "echo", "from-the-command")

    assert result.returncode == 0, result.stderr
    assert WARNING in result.stderr
    assert "from-the-command\n" in result.stdout
    assert "kind: SeccompProfile" in result.stdout


def test_dash_output_has_no_warning(recording_host: None, cli: Cli) -> None:
    result = cli.run("record", "-o", "-", "--name", "echo", "--", "echo", "from-the-command")

    assert result.returncode == 0, result.stderr
    assert WARNING not in result.stderr
    assert "kind: SeccompProfile" in result.stdout
