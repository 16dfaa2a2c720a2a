"""TLS and name resolution for the upload tests: a throwaway CA, and Aliyun's names resolved to the proxy.

`resolve_to(ports)` stands in for a Route 53 private hosted zone: inside this test process only, the named
hosts (and every `*.{suffix}`) resolve to 127.0.0.1, port 443 going to the proxy's TLS port and 80 to its
plain one (a test cannot bind 443). The SDKs' code is untouched: they call socket.getaddrinfo as always.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ALIYUN_NAMES = ("openplatform.aliyuncs.com", "ocr.cn-shanghai.aliyuncs.com", "imageseg.cn-shanghai.aliyuncs.com",
                "imageenhan.cn-shanghai.aliyuncs.com")
UPLOAD_NAME = "up.vision.test"


def make_ca_and_cert(tmp: Path, names: tuple[str, ...]) -> tuple[Path, Path, Path]:
    """(ca.pem, cert.pem, key.pem): a test CA and a leaf certificate it signs for `names`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.now(UTC)

    def cert(subject: str, key: Any, issuer_key: Any, ca: bool) -> x509.Certificate:
        builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "upload test CA")]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(hours=2))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if ca:
            builder = builder.add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
                decipher_only=False), critical=True)
        else:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                                            critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    paths = tmp / "ca.pem", tmp / "cert.pem", tmp / "key.pem"
    paths[0].write_bytes(cert("upload test CA", ca_key, ca_key, True).public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert(names[0], leaf_key, ca_key, False).public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    return paths


@contextlib.contextmanager
def resolve_to(names: tuple[str, ...], suffixes: tuple[str, ...], ports: dict[int, int]) -> Iterator[None]:
    """Resolve `names` and `*.{suffix}` to 127.0.0.1 in this process, mapping ports (443 -> the TLS port)."""
    original = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host or "")
        if name.lower() in names or any(name.lower().endswith("." + s) for s in suffixes):
            number = int(port) if port not in (None, "") else 0
            return original("127.0.0.1", ports.get(number, number), *args, **kwargs)
        return original(host, port, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.getaddrinfo = original
