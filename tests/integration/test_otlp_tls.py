"""The OTLP receivers over TLS, and the gRPC receiver's size limit, through a real `fleetwatch run`.

A throw-away CA and a server certificate for 127.0.0.1/localhost are made at test time, so the exporters
verify the server the way they would in production (trusting a CA file, not skipping verification). A
plaintext client must be refused on both ports: an OTLP receiver configured for TLS that also answered in
clear would leak every log line it was meant to protect.

The size limit (`otlp.max_request_bytes`) must hold for the decompressed message too: a few hundred KiB of
gzip can inflate to hundreds of MiB, and a receiver that inflated first and checked afterwards could be
taken down by one request. The server's peak resident memory (VmHWM) is read from /proc around the bomb.
"""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

pytestmark = pytest.mark.integration

EXPORT_METHOD = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
LIMIT = 1 << 20  # max_request_bytes for the size tests
RECORDS = 3


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> dict[str, Path]:
    """A CA certificate, and a server certificate + key it signed for 127.0.0.1 and localhost (PEM files)."""
    out = tmp_path_factory.mktemp("tls")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder().subject_name(_name("fleetwatch test CA")).issuer_name(_name("fleetwatch test CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = {"ca": out / "ca.pem", "cert": out / "server.pem", "key": out / "server-key.pem"}
    files["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return files


def export_logs(exporter, service: str, n: int = RECORDS) -> list[LogRecordExportResult]:
    """Emit `n` records through an official exporter; the result of every export call."""
    results: list[LogRecordExportResult] = []

    class Recording(SimpleLogRecordProcessor):
        def on_emit(self, log_record) -> None:
            results.append(self._exporter.export([log_record]))

    provider = LoggerProvider(resource=Resource.create({"service.name": service}))
    provider.add_log_record_processor(Recording(exporter))
    logger = provider.get_logger("tls-test")
    for i in range(n):
        logger.emit(body=f"{service} line {i}")
    provider.shutdown()
    return results


def logs_request(service: str, body: str = "hello") -> bytes:
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=service)))
    rl.scope_logs.add().log_records.add(time_unix_nano=time.time_ns(), body=AnyValue(string_value=body))
    return request.SerializeToString()


def raw_export(channel: grpc.Channel):
    """The logs Export method taking already-serialized bytes, so a large body is built only once."""
    return channel.unary_unary(EXPORT_METHOD, request_serializer=lambda body: body,
                               response_deserializer=ExportLogsServiceResponse.FromString)


def counts_by_service(fw) -> dict[str, int]:
    rows = fw.sql("SELECT ServiceName AS service, count() AS n FROM fleetwatch.otel_logs GROUP BY service")
    return {row["service"]: int(row["n"]) for row in rows}


def test_official_exporters_over_tls_and_plaintext_refused(fleetwatch_run, tls_files, monkeypatch) -> None:
    # requests lets these variables override a session's `verify`, i.e. the exporter's certificate_file.
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    fw = fleetwatch_run({"FLEETWATCH_OTLP__TLS_CERT": str(tls_files["cert"]),
                         "FLEETWATCH_OTLP__TLS_KEY": str(tls_files["key"])})
    ca_pem = tls_files["ca"].read_bytes()
    https_url = f"https://127.0.0.1:{fw.http_port}/v1/logs"

    # The gRPC exporter with the CA as its channel credentials, the HTTP exporter with the CA as its
    # `certificate_file`: both verify the server, and every record is stored.
    grpc_exporter = GrpcLogExporter(endpoint=fw.grpc_endpoint, insecure=False,
                                    credentials=grpc.ssl_channel_credentials(root_certificates=ca_pem), timeout=20)
    assert export_logs(grpc_exporter, "tls-grpc") == [LogRecordExportResult.SUCCESS] * RECORDS
    http_exporter = HttpLogExporter(endpoint=https_url, certificate_file=str(tls_files["ca"]), timeout=20)
    assert export_logs(http_exporter, "tls-http") == [LogRecordExportResult.SUCCESS] * RECORDS

    # Plaintext on the TLS ports: refused (the connection is dropped), and nothing stored.
    plain = urllib.request.Request(f"http://127.0.0.1:{fw.http_port}/v1/logs", data=logs_request("plain-http"),
                                   method="POST", headers={"Content-Type": "application/x-protobuf"})
    with pytest.raises((OSError, http.client.HTTPException)):
        urllib.request.urlopen(plain, timeout=10).close()
    with grpc.insecure_channel(fw.grpc_endpoint) as channel, pytest.raises(grpc.RpcError) as refused:
        raw_export(channel)(logs_request("plain-grpc"), timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    # TLS without trusting our CA fails verification too (the server is not accepted blindly).
    system_roots = grpc.ssl_channel_credentials()
    with grpc.secure_channel(fw.grpc_endpoint, system_roots) as channel, pytest.raises(grpc.RpcError) as untrusted:
        raw_export(channel)(logs_request("untrusted-grpc"), timeout=10)
    assert untrusted.value.code() == grpc.StatusCode.UNAVAILABLE

    # Still serving TLS after the refused clients.
    assert export_logs(HttpLogExporter(endpoint=https_url, certificate_file=str(tls_files["ca"]), timeout=20),
                       "tls-http-after", 1) == [LogRecordExportResult.SUCCESS]

    assert fw.terminate() == 0, fw.log()
    counts = counts_by_service(fw)
    assert counts == {"tls-grpc": RECORDS, "tls-http": RECORDS, "tls-http-after": 1}, fw.log()


def _peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


def _reset_peak_rss(pid: int) -> None:
    """Lower VmHWM to the current RSS (Linux >= 4.0), so the next peak reading is about what follows."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass  # the reading then includes start-up peaks, which only makes the check more lenient


def test_grpc_size_limit_and_gzip_bomb(fleetwatch_run) -> None:
    fw = fleetwatch_run({"FLEETWATCH_OTLP__MAX_REQUEST_BYTES": str(LIMIT)})
    assert fw.proc is not None
    with grpc.insecure_channel(fw.grpc_endpoint) as channel:
        export = raw_export(channel)
        assert export(logs_request("before"), timeout=20) == ExportLogsServiceResponse()

        # Twice the limit, uncompressed: refused as the receiver documents, and the server keeps serving.
        with pytest.raises(grpc.RpcError) as too_big:
            export(logs_request("too-big", "x" * (2 * LIMIT)), timeout=20)
        assert too_big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert export(logs_request("after-too-big"), timeout=20) == ExportLogsServiceResponse()

        # 96 MiB of one letter gzips to ~100 KiB, under the limit on the wire; inflated it is 96 times over.
        bomb_size = 96 << 20
        bomb = logs_request("bomb", "a" * bomb_size)
        _reset_peak_rss(fw.proc.pid)
        rss_before = _peak_rss_bytes(fw.proc.pid)
        with pytest.raises(grpc.RpcError) as bombed:
            export(bomb, timeout=30, compression=grpc.Compression.Gzip)
        del bomb
        assert bombed.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        growth = _peak_rss_bytes(fw.proc.pid) - rss_before
        assert growth < bomb_size // 2, f"server peak memory grew by {growth >> 20} MiB on a refused bomb"

        # A normal gzip request right after is served: the bomb neither killed the server nor the channel.
        assert export(logs_request("after-bomb"), timeout=20, compression=grpc.Compression.Gzip) == \
            ExportLogsServiceResponse()
    assert fw.proc.poll() is None, fw.log()
    assert fw.terminate() == 0, fw.log()
    assert counts_by_service(fw) == {"before": 1, "after-too-big": 1, "after-bomb": 1}, fw.log()
