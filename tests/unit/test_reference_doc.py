"""docs/reference.md is generated from the models and kept up to date."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from seccomp_recorder.models import reference
from seccomp_recorder.models.profile import SeccompProfileSpec
from seccomp_recorder.models.recording import SeccompRecordingSpec

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference.md"


def test_committed_reference_is_up_to_date() -> None:
    assert REFERENCE.read_text(encoding="utf-8") == reference.render_reference(), (
        "docs/reference.md differs from what the models generate: run `make reference`"
    )


def test_check_fails_on_a_stale_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "reference.md"
    stale.write_text("# old\n")

    assert reference.main(["--check", str(stale)]) == 1
    assert "make reference" in capsys.readouterr().err


def test_write_then_check_passes(tmp_path: Path) -> None:
    page = tmp_path / "reference.md"

    assert reference.main(["--write", str(page)]) == 0
    assert reference.main(["--check", str(page)]) == 0


@pytest.mark.parametrize("model", [SeccompRecordingSpec, SeccompProfileSpec])
def test_every_spec_field_is_documented(
    model: type[SeccompRecordingSpec | SeccompProfileSpec],
) -> None:
    text = reference.render_reference()
    for name, field in model.model_fields.items():
        alias = field.alias or name
        assert f"| `{alias}` |" in text, alias
        assert field.description, f"{model.__name__}.{name} has no description to document"


def test_links_point_at_headings() -> None:
    text = reference.render_reference()
    anchors = {reference._anchor(title) for title in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}
    for target in re.findall(r"\]\(#([^)]+)\)", text):
        assert target in anchors, target
