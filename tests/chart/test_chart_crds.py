"""The chart's crds/ folder: the repository's generated CRDs, unchanged, plus kopf's peering CRD."""

from __future__ import annotations

import kubernetes_validate
from chart_helpers import CHART, CRDS, KUBERNETES_VERSION, read_yaml_documents

PEERING_CRD = "clusterkopfpeerings.yaml"


def test_chart_crds_equal_repository_crds() -> None:
    generated = sorted(path.name for path in CRDS.glob("*.yaml"))
    assert generated
    for name in generated:
        copy = CHART / "crds" / name
        assert copy.is_file(), f"{copy} is missing: run `make crds`"
        assert copy.read_bytes() == (CRDS / name).read_bytes(), f"{copy} differs: run `make crds`"


def test_chart_crds_hold_only_those_and_peering() -> None:
    in_chart = sorted(path.name for path in (CHART / "crds").iterdir())
    expected = sorted([*(path.name for path in CRDS.glob("*.yaml")), PEERING_CRD])
    assert in_chart == expected


def test_peering_crd_has_no_status_subresource() -> None:
    (crd,) = read_yaml_documents(CHART / "crds" / PEERING_CRD)
    assert crd["metadata"]["name"] == "clusterkopfpeerings.kopf.dev"
    assert crd["spec"]["scope"] == "Cluster"
    assert crd["spec"]["names"]["kind"] == "ClusterKopfPeering"
    (version,) = crd["spec"]["versions"]
    assert version["name"] == "v1"
    # kopf writes keep-alives into status through the main resource, which a status
    # subresource would make the API server ignore.
    assert "subresources" not in version
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert status["x-kubernetes-preserve-unknown-fields"] is True


def test_chart_crds_are_valid_kubernetes_objects() -> None:
    for path in sorted((CHART / "crds").iterdir()):
        for crd in read_yaml_documents(path):
            kubernetes_validate.validate(crd, KUBERNETES_VERSION, strict=True)
