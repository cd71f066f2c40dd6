"""The OTLP/gRPC port's connection limits (`[serve] grpc_*`), against the real receiver and grpcio clients:
an idle connection is closed after the idle limit, a client that pings too often is disconnected, the
connection cap refuses connections past it, and an export still succeeds within the limits.

Closure is observed from the client's channel: a server GOAWAY moves a READY channel out of READY.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from pipeline.runtime import RunContext
from pipeline.serve import otlp_grpc
from pipeline.sink import BatchingWriter, Sink
from pipeline.telemetry import Telemetry
from tests.net import free_port

pytestmark = pytest.mark.integration


class States:
    """Connectivity states of one channel, in order, with a wait on a predicate over them."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.seen: list[grpc.ChannelConnectivity] = []
        self._cond = threading.Condition()
        channel.subscribe(self._on, try_to_connect=True)

    def _on(self, state: grpc.ChannelConnectivity) -> None:
        with self._cond:
            self.seen.append(state)
            self._cond.notify_all()

    def wait_left_ready(self, timeout: float) -> bool:
        """True once the channel was READY and then moved to another state (the server closed it)."""

        def left() -> bool:
            if grpc.ChannelConnectivity.READY not in self.seen:
                return False
            first = self.seen.index(grpc.ChannelConnectivity.READY)
            return any(s is not grpc.ChannelConnectivity.READY for s in self.seen[first + 1:])

        with self._cond:
            return self._cond.wait_for(left, timeout)


@pytest.fixture
def start_receiver(settings, store) -> Iterator:
    started: list[tuple[otlp_grpc.GrpcReceiver, BatchingWriter, Telemetry]] = []

    def start(**serve: object) -> str:
        address = f"127.0.0.1:{free_port()}"
        run_settings = settings.model_copy(update={
            "otlp": settings.otlp.model_copy(update={"grpc": address, "http": ""}),
            "serve": settings.serve.model_copy(update=serve),
        })
        telemetry = Telemetry()
        sink = Sink(store, telemetry)
        writer = BatchingWriter(sink, max_pending_rows=10_000, retry_after=0.5, max_delay=0.01).start()
        receiver = otlp_grpc.start(RunContext(run_settings, store, sink, writer, telemetry))
        assert receiver is not None
        started.append((receiver, writer, telemetry))
        return address

    yield start
    for receiver, writer, telemetry in started:
        receiver.stop(5)
        writer.stop()
        telemetry.shutdown()


def test_defaults_are_on() -> None:
    from pipeline.config import ServeSettings

    options = dict(otlp_grpc.connection_options(ServeSettings()))
    assert options["grpc.max_allowed_incoming_connections"] == 512
    assert options["grpc.max_connection_idle_ms"] == 300_000
    assert options["grpc.max_connection_age_ms"] == 1_800_000
    assert options["grpc.http2.max_ping_strikes"] == 2
    assert options["grpc.keepalive_permit_without_calls"] == 0


def test_idle_connection_is_closed_after_the_idle_limit(start_receiver) -> None:
    address = start_receiver(grpc_max_connection_idle_seconds=0.5)
    with grpc.insecure_channel(address) as channel:
        states = States(channel)
        grpc.channel_ready_future(channel).result(timeout=10)
        stub = logs_service_pb2_grpc.LogsServiceStub(channel)
        stub.Export(ExportLogsServiceRequest(), timeout=10)  # a call is served; then the connection idles
        started = time.monotonic()
        assert states.wait_left_ready(timeout=20), states.seen
        assert time.monotonic() - started >= 0.3  # closed for idling, not at once


def test_client_pinging_too_often_is_disconnected(start_receiver) -> None:
    # The idle and age limits stay far away: only the pings can close this connection.
    address = start_receiver(grpc_min_ping_interval_seconds=5.0, grpc_max_ping_strikes=1)
    options = [("grpc.keepalive_time_ms", 100), ("grpc.keepalive_timeout_ms", 5_000),
               ("grpc.keepalive_permit_without_calls", 1), ("grpc.http2.max_pings_without_data", 0)]
    with grpc.insecure_channel(address, options=options) as channel:
        states = States(channel)
        grpc.channel_ready_future(channel).result(timeout=10)
        assert states.wait_left_ready(timeout=20), states.seen


def test_connection_cap_refuses_connections_past_it(start_receiver) -> None:
    address = start_receiver(grpc_max_connections=1)
    request = ExportLogsServiceRequest()
    # Separate subchannel pools, so the two channels do not share one connection.
    with grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as first:
        logs_service_pb2_grpc.LogsServiceStub(first).Export(request, timeout=10)
        with grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as second:
            with pytest.raises(grpc.RpcError) as refused:
                logs_service_pb2_grpc.LogsServiceStub(second).Export(request, timeout=3)
            assert refused.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        # The first connection is still served.
        logs_service_pb2_grpc.LogsServiceStub(first).Export(request, timeout=10)
