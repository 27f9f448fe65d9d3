"""The dev cluster's certificates: one self-signed CA per cluster and the API serving cert.

Pods reach the API server through a TLS relay (`seccomp_devcluster.node.relay`), and
in-cluster clients (the `kubernetes` client's `load_incluster_config`, kopf) verify it
with the `ca.crt` mounted into every pod. The launcher creates both files once per
cluster in `<cluster dir>/pki/`:

    ca.crt, ca.key                 the cluster's CA (the key stays in the folder)
    apiserver.crt, apiserver.key   the relay's serving certificate, signed by the CA

The serving certificate is valid for the loopback address that pods use
(`SERVICE_HOST`), `localhost`, and the `kubernetes.default.svc` DNS names that a real
cluster's API server certificate carries. Keys are ECDSA P-256, the files PEM.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# The address in KUBERNETES_SERVICE_HOST. Every pod network namespace has it on `lo`,
# and so has the host's, so hostNetwork pods use the same address.
SERVICE_HOST = "127.0.0.1"
SERVICE_DNS_NAMES = ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
                     "kubernetes.default.svc.cluster.local", "localhost")
# Days the certificates are valid; a dev cluster lives for minutes or hours.
VALIDITY_DAYS = 30


@dataclass(frozen=True)
class ClusterPki:
    """Paths of the cluster's CA and the API serving certificate, all PEM files."""

    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path

    @classmethod
    def in_directory(cls, directory: Path) -> ClusterPki:
        return cls(ca_cert=directory / "ca.crt", ca_key=directory / "ca.key",
                   serving_cert=directory / "apiserver.crt",
                   serving_key=directory / "apiserver.key")


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write_private(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)


def create_cluster_pki(directory: Path, cluster_name: str = "seccomp-devcluster") -> ClusterPki:
    """Create a new CA and a serving certificate signed by it in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = ClusterPki.in_directory(directory)
    now = datetime.datetime.now(datetime.UTC)
    # Backdated by five minutes, so that a pod whose clock reads slightly earlier still
    # finds the certificate valid.
    not_before = now - datetime.timedelta(minutes=5)
    not_after = now + datetime.timedelta(days=VALIDITY_DAYS)

    ca_key = _new_key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{cluster_name}-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True,
            content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    serving_key = _new_key()
    alternative_names: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address(SERVICE_HOST)),
        *(x509.DNSName(name) for name in SERVICE_DNS_NAMES),
    ]
    serving_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(serving_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    _write_private(paths.ca_key, _key_pem(ca_key))
    paths.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(paths.serving_key, _key_pem(serving_key))
    paths.serving_cert.write_bytes(serving_cert.public_bytes(serialization.Encoding.PEM))
    return paths
