"""An https upstream is reached over TLS, and its certificate is verified."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from multidict import CIMultiDict
from yarl import URL

from gateway.errors import UpstreamError
from gateway.forward.upstream import UpstreamPool


def self_signed_context(directory) -> ssl.SSLContext:
    """Return a server context with a certificate for 127.0.0.1 that no CA signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    certificate_file = directory / "upstream.pem"
    key_file = directory / "upstream.key"
    certificate_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate_file, key_file)
    return context


async def test_untrusted_upstream_certificate_is_rejected(tmp_path):
    async def close_at_once(reader, writer):
        writer.close()

    server = await asyncio.start_server(close_at_once, "127.0.0.1", 0,
                                        ssl=self_signed_context(tmp_path))
    port = server.sockets[0].getsockname()[1]
    pool = UpstreamPool(URL(f"https://127.0.0.1:{port}"), max_connections=2,
                        connect_timeout=2.0)

    with pytest.raises(UpstreamError) as failed:
        await pool.request("GET", "/", CIMultiDict(), None, timeout=5)
    await pool.close()
    server.close()

    assert failed.value.reason == "upstream_ClientConnectorError"
    assert isinstance(failed.value.__cause__, ssl.SSLCertVerificationError)
