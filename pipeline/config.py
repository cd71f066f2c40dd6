"""One settings model for every Fleetwatch process.

Precedence, highest first: command-line flags, `FLEETWATCH_*` environment variables, the optional
TOML file (`--config` or `FLEETWATCH_CONFIG`), then the defaults below. Nested sections use a double
underscore in the environment (`FLEETWATCH_DETECT__GC_CPU_WARN=0.3`) and a table in TOML (`[detect]`).

Defaults are chosen so that `fleetwatch run` with nothing set is a complete single-machine install:
an embedded ClickHouse store under `./data`, OTLP on the standard loopback ports, the query endpoint on
127.0.0.1:8123 and the detection jobs every 30 s. Kafka is off until a bootstrap address is given.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

REPO_SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
# Database and cluster names are spliced into DDL (identifiers cannot be query parameters), so only plain
# identifiers are accepted: nothing a configuration value could use to break out of the statement.
_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def read_secret_file(path: str | Path) -> SecretStr:
    """A secret kept in a file (a mounted Kubernetes or Docker secret): its text without the final newline."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read secret file {path}: {exc.strerror}") from None
    return SecretStr(text.rstrip("\r\n"))


def with_dsn_password(dsn: str, password: str) -> str:
    """The server DSN with `password` set (percent-encoded), so the password can live outside the DSN."""
    parts = urlsplit(dsn)
    if not parts.hostname:
        return dsn
    user = parts.username or "default"
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{host}").geturl()


class KafkaSettings(BaseModel):
    """Where the Kafka source reads and how it batches. Off while `bootstrap` is empty."""

    # Bootstrap servers, comma-separated (host:port). Empty: the Kafka source is off.
    bootstrap: str = ""
    # Consumer group: every worker with the same id shares the partitions.
    group_id: str = "fleetwatch"
    # Raw runtime lines or JSON envelopes (docs/kafka.md).
    topic_gctrace: str = "gctrace"
    # CancelTrace cancel-events, JSON object or array (schemas/cancel_event.schema.json).
    topic_cancel_events: str = "cancel-events"
    # OTLP topics as the Collector's Kafka exporter writes them.
    topic_otlp_logs: str = "otlp_logs"
    topic_otlp_spans: str = "otlp_spans"
    topic_otlp_metrics: str = "otlp_metrics"
    # Go profiles (pprof protobuf, gzipped or not, or goroutine dumps as text), one per message; service and
    # instance in headers, optional `profile-type` header (goroutine, goroutineleak, allocs, heap).
    topic_pprof: str = "pprof"
    # How OTLP topics are encoded, as the Collector's Kafka exporter names it: otlp_proto or otlp_json.
    otlp_encoding: str = "otlp_proto"
    # A partition's pending messages are written when either limit is reached.
    batch_max_messages: int = 100_000
    # Bytes of message values in one partition batch.
    batch_max_bytes: int = 16 * 1024 * 1024
    # Age of a partition's oldest pending message before its batch is written.
    batch_max_seconds: float = 1.0
    # A partition's pending messages are also written as soon as they hold this many bytes and a write thread is
    # free (0: off; needs write_threads > 0): after an assignment or a pause the first batch goes to the store while
    # the rest is fetched, instead of waiting batch_max_seconds. While writes keep the threads busy, a batch is what
    # gathered during the previous write, up to the limits above.
    batch_early_bytes: int = Field(default=8 * 1024 * 1024, ge=0)
    # Above this many buffered bytes across partitions, fetching pauses until the writer catches up.
    max_buffered_bytes: int = 128 * 1024 * 1024
    # Group membership timeouts; a dead worker's partitions move after about session_timeout.
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    # Longest a fetch waits for data; bounds tailing latency.
    fetch_max_wait_ms: int = 100
    # Where a new group starts: earliest reads what the topic retains.
    auto_offset_reset: str = "earliest"
    # PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, with the SASL settings below.
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    # The SASL password read from a file instead (wins over sasl_password).
    sasl_password_file: Path | None = None
    # TLS (security_protocol SSL or SASL_SSL): CA bundle, client certificate and key, PEM files.
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_check_hostname: bool = True
    # Any other KafkaConsumer option, passed through as given (docs/kafka.md lists useful ones).
    client_options: dict[str, Any] = Field(default_factory=dict)
    client_id: str = "fleetwatch"
    # Records handed over per poll; a batch still closes on the batch_* limits above.
    max_poll_records: int = 2_000
    # A single message above this many bytes is quarantined instead of decoded.
    max_message_bytes: int = 16 * 1024 * 1024
    # How often the list of existing topics is re-read, so a topic created later starts being consumed.
    topic_refresh_seconds: float = 30.0
    # Store unavailable: the batch is kept and retried after a backoff that doubles up to the maximum.
    retry_initial_seconds: float = 0.5
    retry_max_seconds: float = 30.0
    # gctrace topics: plain gc lines of a batch are parsed and stored by the engine in one insert, every other
    # line by the Python normalizer (same rows); false: new batches are planned for Python (a batch's plan fixes
    # its path, so batches already planned for the engine are still replayed by it).
    gctrace_engine: bool = True
    # A gctrace batch with fewer lines than this is planned for Python (the engine's statements cost more).
    gctrace_engine_min_lines: int = Field(default=256, ge=1)
    # Partition batches written at once, each on a thread of its own, while the consumer keeps fetching (at most
    # one batch per partition, committed in order); 0: written one after another on the consumer's thread. Two keep
    # both cores of a small host busy (docs/benchmarks.md); a kill inside an insert is repaired by the replay's
    # witness check however many are in flight (docs/kafka.md).
    write_threads: int = Field(default=2, ge=0, le=16)
    # The Kafka client: "confluent" (confluent-kafka, librdkafka in C: 5-10x less CPU per record) or "kafka-python"
    # (pure Python). Same guarantees either way; `client_options` take the selected client's own option names.
    client: Literal["kafka-python", "confluent"] = "confluent"


class OtlpSettings(BaseModel):
    """The OTLP receivers. An empty address turns one transport off."""

    # OTLP/gRPC listen address; empty turns it off (also FLEETWATCH_OTLP_GRPC, --otlp-grpc).
    grpc: str = "127.0.0.1:4317"
    # OTLP/HTTP listen address; empty turns it off (also FLEETWATCH_OTLP_HTTP, --otlp-http).
    http: str = "127.0.0.1:4318"
    # Bearer token every exporter must send (Authorization: Bearer ...); none: no auth.
    token: SecretStr | None = None
    # The bearer token read from a file instead (wins over token).
    token_file: Path | None = None
    # PEM certificate and key: both receivers serve TLS when set.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Largest request body after decompression; checked while inflating.
    max_request_bytes: int = 16 * 1024 * 1024
    # Rows waiting for the writer across all requests; past this, requests get 429 / RESOURCE_EXHAUSTED.
    max_pending_rows: int = 2_000_000
    # Base delay sent with 429 / RESOURCE_EXHAUSTED (times a random 1..3, so refused exporters spread out).
    retry_after_seconds: int = 1
    # The shared writer inserts when this many rows wait, or when the first waiting request is this old.
    # While an insert runs, further requests queue and go into the next insert together (group commit), so
    # batches grow with load; the delay only bounds how long a lone request waits for company. With the journal a
    # write is an append and a sync, so a short delay serves more cycles: at 0.05 s, 16 exporters of 1,000
    # records could not pass 320k records/s (docs/benchmarks.md, "OTLP: the journal").
    batch_max_rows: int = 200_000
    batch_max_seconds: float = 0.01
    # Log bodies that are all plain gc summary lines are parsed by the engine, in the writer's insert, instead of
    # line by line in Python (docs/architecture.md, "OTLP gc lines through the engine"); rows are the same.
    gctrace_engine: bool = True
    # Those plain gc lines are answered once they are in a journal on disk (synced), and the engine stores them
    # from it in large statements (docs/architecture.md, "The OTLP journal"): one engine statement costs 30-45 ms of
    # CPU whatever its size. Off: each write of the writer stores them itself before the requests are answered.
    journal: bool = True
    # The journal's directory, one per process. Empty: `otlp-journal/<database>` inside the embedded store's
    # directory, or ./data/otlp-journal/<database> with a server (an in-memory store keeps no journal).
    journal_dir: Path | None = None
    # A segment is stored when it holds this many lines, or this many seconds after its first line: how long
    # answered lines may take to reach gc_events.
    journal_segment_lines: int = Field(default=200_000, ge=1)
    journal_segment_seconds: float = Field(default=0.5, gt=0)
    # ... or once no line came for this long (the exporters paused: what they sent is stored at once).
    journal_idle_seconds: float = Field(default=0.05, gt=0)
    # Segments stored at once (each statement reads its file on one thread).
    journal_converters: int = Field(default=2, ge=1)
    # Bytes waiting in the journal (a slow or absent store); past this, requests get 503 / UNAVAILABLE.
    journal_max_bytes: int = Field(default=1024 * 1024 * 1024, ge=1024 * 1024)
    # Sync each append before answering. Off trades the lines of a machine crash for speed (a process crash
    # loses nothing either way).
    journal_fsync: bool = True


class FilesSettings(BaseModel):
    """The file-tailing source of `fleetwatch run` (container logs on a node, or any log file). Off while
    `paths` is empty. docs/architecture.md ("Tailing") describes rotation, checkpoints and identity."""

    # Glob patterns of files to follow (FLEETWATCH_FILES__PATHS as a JSON list), e.g.
    # ["/var/log/pods/*/*/*.log"]. Empty: the source is off.
    paths: list[str] = Field(default_factory=list)
    # How often the globs are expanded and the files looked at for new data.
    poll_interval_seconds: float = Field(default=0.25, gt=0)
    # A file that has not grown for this long has its last lines processed too (they are otherwise held
    # back for a few lines, so a runtime line torn by application output can still be repaired).
    idle_flush_seconds: float = Field(default=1.0, gt=0)
    # Largest amount read from one file per batch.
    max_batch_bytes: int = Field(default=4 * 1024 * 1024, ge=4096)
    # A line longer than this is cut into pieces of this size, each quarantined; the rest of the line after
    # the last full piece is read as a line of its own.
    max_line_bytes: int = Field(default=1024 * 1024, ge=1024)
    # At most this many files are followed at once; further matches are reported and skipped.
    max_files: int = Field(default=10_000, ge=1)
    # Identity of a file's lines. Empty service: from Kubernetes paths (/var/log/pods/<ns>_<pod>_<uid>/
    # <container>/<n>.log, /var/log/containers/<pod>_<ns>_<container>-<id>.log: service = container,
    # instance = pod), else service = the file name without extension, instance = the host name.
    service: str = ""
    instance: str = ""
    # This machine's name in the checkpoints (inode numbers repeat across machines). Empty: the host name.
    # In a Kubernetes DaemonSet set it to the node name (the pod's host name changes with every rollout).
    node: str = ""
    # A regular expression with named groups (service, instance, namespace) matched against the path;
    # when it matches it wins over the Kubernetes layouts.
    identity_pattern: str = ""

    @field_validator("identity_pattern")
    @classmethod
    def _pattern_compiles(cls, v: str) -> str:
        if v:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"identity_pattern is not a regular expression: {exc}") from None
        return v


class QuerySettings(BaseModel):
    """The ClickHouse-compatible HTTP endpoint served over the embedded store."""

    # ClickHouse HTTP interface over the embedded store; empty turns it off (off in server mode).
    http: str = "127.0.0.1:8123"
    # With a password set, readers must log in as this user.
    user: str = "default"
    password: SecretStr | None = None
    # The password read from a file instead (wins over password).
    password_file: Path | None = None
    # Refuse DDL, INSERT and table functions reaching files, URLs or other servers.
    read_only: bool = True
    # Reader limits (read-only endpoint). Readers may ask for less, never more: a higher value, or 0
    # (unlimited), in the URL or a SETTINGS clause is refused (SETTING_CONSTRAINT_VIOLATION).
    # Memory one query may use, bytes; past it the query fails (MEMORY_LIMIT_EXCEEDED), the process lives on.
    max_memory_usage: int = Field(default=1 << 30, gt=0)
    # Wall time one query may run, seconds (TIMEOUT_EXCEEDED).
    max_execution_time: float = Field(default=60.0, gt=0)
    # Rows and bytes (uncompressed, in the engine) one result may have (TOO_MANY_ROWS_OR_BYTES).
    max_result_rows: int = Field(default=10_000_000, gt=0)
    max_result_bytes: int = Field(default=512 << 20, gt=0)
    # Threads one query may use.
    max_threads: int = Field(default=4, gt=0)
    # Queries running at once; one more is answered 503 with Retry-After (TOO_MANY_SIMULTANEOUS_QUERIES).
    max_concurrent_queries: int = Field(default=8, gt=0)
    # The Retry-After of that 503, seconds.
    retry_after_seconds: int = Field(default=1, gt=0)


class ServeSettings(BaseModel):
    """Limits of every HTTP port (OTLP/HTTP, the query endpoint) and of OTLP/gRPC. On by default; clients
    cannot lift them (docs/reliability.md lists each with its reason)."""

    # Open connections per HTTP port; more are answered 503 + Retry-After and closed. Also capped at a quarter
    # of the process's file-descriptor limit, so sockets never take the descriptors the store needs.
    max_connections: int = Field(default=512, ge=1)
    # Seconds a client may take to send a request's headers (slowloris), then the connection is closed.
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    # Bytes of request line and headers; more is answered 431 and the connection closed.
    max_header_bytes: int = Field(default=64 * 1024, ge=1024)
    # Seconds a client may take to send a request's body once its headers arrived; then 408.
    body_timeout_seconds: float = Field(default=30.0, gt=0)
    # Seconds an idle keep-alive connection is kept open.
    keepalive_timeout_seconds: int = Field(default=15, ge=1)
    # Requests served on one connection before it is closed (the client reconnects).
    max_requests_per_connection: int = Field(default=10_000, ge=1)
    # Largest body on the wire (before decompression), checked from Content-Length before reading and while
    # reading a chunked body. Decompressed sizes have their own limits (otlp.max_request_bytes, and
    # max_query_bytes below).
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    # Largest query text (body plus `query` parameter, decompressed) on the query endpoint.
    max_query_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # gzip members in one compressed body; each member costs a new inflater, so floods of empty members
    # are refused instead of burning CPU. The same bound applies to zstd and lz4 frames.
    max_gzip_members: int = Field(default=64, ge=1)
    # Log records, spans or metric data points in one OTLP request, counted on the wire before decoding.
    max_records_per_request: int = Field(default=100_000, ge=1)
    # JSON objects in one OTLP/JSON request (counted while parsing, before any row is built).
    max_json_objects: int = Field(default=2_000_000, ge=1)
    # Requests handled at once per route group; more get 429 (OTLP) / 503 (query) with Retry-After.
    otlp_max_concurrent: int = Field(default=64, ge=1)
    query_max_concurrent: int = Field(default=16, ge=1)
    # Threads running blocking work (decoding, normalizing, the engine) for one port, off the event loop.
    worker_threads: int = Field(default=16, ge=1)
    # OTLP/gRPC calls handled at once; more get RESOURCE_EXHAUSTED with RetryInfo.
    grpc_max_concurrent: int = Field(default=64, ge=1)
    # Retry delay sent with every 429 / 503 / RESOURCE_EXHAUSTED / UNAVAILABLE caused by a limit.
    retry_after_seconds: int = Field(default=1, ge=1)
    # OTLP/gRPC connections open at once; more are refused at accept (the client retries with backoff).
    grpc_max_connections: int = Field(default=512, ge=1)
    # Streams (calls) one OTLP/gRPC connection may have open at once, advertised in HTTP/2 SETTINGS.
    grpc_max_streams_per_connection: int = Field(default=100, ge=1)
    # Seconds an OTLP/gRPC connection may stay without calls before the server closes it (GOAWAY).
    grpc_max_connection_idle_seconds: float = Field(default=300.0, gt=0)
    # Seconds any OTLP/gRPC connection may live; then GOAWAY, so clients rebalance and nothing holds forever.
    grpc_max_connection_age_seconds: float = Field(default=1800.0, gt=0)
    # Seconds calls still running at that age get to finish before the connection is cut.
    grpc_max_connection_age_grace_seconds: float = Field(default=30.0, gt=0)
    # Shortest interval between a client's keep-alive pings the server accepts; faster pings are strikes.
    grpc_min_ping_interval_seconds: float = Field(default=10.0, gt=0)
    # Pings too early tolerated before the connection is closed with GOAWAY (ENHANCE_YOUR_CALM); at least 1
    # (grpc core reads 0 as "no limit").
    grpc_max_ping_strikes: int = Field(default=2, ge=1)


class DetectSettings(BaseModel):
    """Detection thresholds. docs/detections.md explains each one and where its default comes from."""

    # How often the scheduler looks for closed windows to run.
    interval_seconds: float = 30.0
    # How far behind now a window closes, so late rows still land inside the window that owns them.
    lag_seconds: float = 30.0
    # Detection window length; jobs run once per closed window.
    window_seconds: int = 60
    # A job seen for the first time starts this far back; later, downtime is caught up from its watermark.
    jobs_backfill_seconds: int = 900
    # Windows one job may run before the scheduler moves to the next job (it loops again at once if behind).
    jobs_max_windows_per_tick: int = 20
    # How long a worker's claim on a (job, window) keeps other workers off it.
    jobs_lease_seconds: int = 300
    # GC storms. GC CPU share of GOMAXPROCS time (assist + background + STW, idle excluded): warn, critical.
    gc_cpu_warn: float = 0.25
    gc_cpu_critical: float = 0.45
    # Mutator-assist share of CPU above which allocation outpaces the GC.
    assist_share_warn: float = 0.05
    # GC cycles per second that count as hot.
    gc_rate_warn_per_s: float = 1.0
    # p99 stop-the-world pause (sweep + mark termination), warn and critical, ms.
    stw_p99_warn_ms: float = 1.0
    stw_p99_critical_ms: float = 10.0
    # Live heap at or above this share of the goal: the heap is pinned at its goal.
    squeeze_live_vs_goal: float = 0.9
    # Goal / live heap at or below this (GOGC near 0 without a limit): misconfiguration.
    tiny_gogc_goal_ratio: float = 1.1
    # Consecutive hot windows before a storm is reported, so one spike does not page.
    sustained_windows: int = 3
    # Fewer GC cycles than this in a window: not evaluated as a storm (rates from 1-2 cycles are noise).
    gc_min_cycles: int = 3
    # Heap goal at or above this share of go.memory.limit: the limit, not GOGC, is pacing the GC.
    squeeze_goal_vs_limit: float = 0.9
    # go.config.gogc at or below this (when reported) is a misconfiguration during a storm.
    tiny_gogc_max: float = 25.0
    # Leak trends. History the trend is fitted over.
    leak_lookback_seconds: int = 6 * 3600
    # Same-process history before the lookback: a leak's floor must rise above the highest floor seen there
    # (by leak_new_high_margin), so a daily load cycle, back at yesterday's level, is not a leak.
    leak_history_seconds: int = 30 * 3600
    # How far above that highest earlier floor (as a share of it) the last floor must be.
    leak_new_high_margin: float = 0.05
    # Bucket whose minimum (the floor) forms the series, so load swings do not read as leaks.
    leak_bucket_seconds: int = 300
    # Buckets needed before a trend is evaluated (18 x 5 min: a load cycle of up to two hours rises for an hour).
    leak_min_buckets: int = 18
    # Start of each process run ignored (warm-up growth is not a leak).
    leak_warmup_seconds: int = 120
    # Mann-Kendall Z at or above which the rise is significant (one-sided p < 0.01).
    leak_mk_z: float = 2.33
    # Spearman rank correlation with time needed as well.
    leak_spearman_min: float = 0.6
    # Goroutines per hour below which a rise is too slow to matter.
    leak_min_slope_per_hour: float = 5.0
    # Growth over the lookback, as a share of the starting floor, needed to report.
    leak_min_relative_growth: float = 0.1
    # heap_live slope floor, MiB per hour (leak_min_slope_per_hour is for goroutines, per hour).
    leak_heap_min_slope_mb_per_hour: float = 1.0
    # Goroutine count to project time-to-limit against (GitLab's saturation point for go_goroutines).
    leak_goroutine_ceiling: float = 250_000.0
    # A bucket floor below this share of the previous one is read as a restart (counts drop to near zero).
    leak_restart_drop_fraction: float = 0.2
    # Samples whose estimated process start is this close to the latest one belong to the same incarnation
    # (the estimate is arrival time minus uptime, so it jitters by the delivery delay).
    restart_jitter_seconds: float = 60.0
    # A leak projected to reach its limit within this many hours is critical.
    leak_critical_hours: float = 24.0
    # Cancellation. A child may outlive its cancelled parent by max(grace ms, fraction x parent duration).
    cancel_grace_ms: float = 50.0
    cancel_grace_fraction: float = 0.1
    # How far before a window the cancel-gaps job looks for the cancelled ancestors of the window's spans.
    cancel_lookback_seconds: int = 900
    # A call edge is flagged in a bucket with at least this many overruns making up at least this share of
    # the cancellations that reached it (1 %: the rule from CRISP-style overrun analysis).
    cancel_min_overruns: int = 2
    cancel_min_overrun_share: float = 0.01

    # Leak sites (goroutine profiles). History of goroutine snapshots a site is judged over.
    leak_site_lookback_seconds: int = 3600
    # Bucket whose minimum count (the site's floor) forms the series; pools drain in the troughs.
    leak_site_bucket_seconds: int = 300
    # Buckets needed before a site's floor trend is judged (growing_site).
    leak_site_min_buckets: int = 4
    # Growth of a site's floor, first bucket to last, in goroutines, needed for growing_site.
    leak_site_min_growth: float = 5.0
    # Spearman rho of the floors against time needed for growing_site (a leak rises steadily).
    leak_site_rho_min: float = 0.8
    # Goroutines waiting at a site at least this long while its floor grows: long_wait.
    leak_site_wait_minutes: int = 10
    # Sites with fewer goroutines than this at every snapshot are not evaluated (unless reported leaked).
    leak_site_min_goroutines: int = 5
    # Storm sites (allocation profiles). Profiles this far before a storm window count towards its rates.
    storm_sites_lookback_seconds: int = 300
    # Consecutive profiles closer than this are not turned into a rate (a tiny interval gives absurd rates).
    alloc_min_interval_seconds: float = 1.0
    # ... nor further apart than this (an unseen restart may sit between them).
    alloc_max_interval_seconds: float = 3600.0
    # Allocation sites kept per storm window, highest bytes/s first.
    storm_sites_top: int = 10


class ScrapeTarget(BaseModel):
    """One `[[scrape]]` table: a Go service serving net/http/pprof at `url` (its base URL)."""

    # Base URL of the target; profiles are fetched from <url>/debug/pprof/<profile>.
    url: str
    # Service name of every row from this target.
    service: str
    # Instance name; default: host:port of the URL.
    instance: str = ""
    interval_seconds: float = Field(default=60.0, gt=0)
    # Default: pprof.scrape_timeout_seconds.
    timeout_seconds: float | None = Field(default=None, gt=0)
    # Sent with every request (an auth header, for example).
    headers: dict[str, str] = Field(default_factory=dict)
    # goroutine, goroutineleak, allocs, heap; default: pprof.scrape_profiles.
    profiles: list[str] | None = None
    # 2: goroutine profiles as debug=2 text (wait minutes, created by); 0: protobuf. Default: pprof.goroutine_debug.
    goroutine_debug: int | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"scrape url {v!r} must be an http(s) base URL")
        return v.rstrip("/")

    @field_validator("profiles")
    @classmethod
    def _known_profiles(cls, v: list[str] | None) -> list[str] | None:
        return _check_profiles(v)

    @field_validator("goroutine_debug")
    @classmethod
    def _debug_level(cls, v: int | None) -> int | None:
        if v not in (None, 0, 2):
            raise ValueError("goroutine_debug is 2 (text) or 0 (protobuf)")
        return v


_PROFILE_NAMES = ("goroutine", "goroutineleak", "allocs", "heap")


def _check_profiles(v: list[str] | None) -> list[str] | None:
    for name in v or []:
        if name not in _PROFILE_NAMES:
            raise ValueError(f"unknown profile {name!r} (one of {', '.join(_PROFILE_NAMES)})")
    return v


class PprofSettings(BaseModel):
    """Profile intake (ingest pprof, the pprof topic, the scraper): limits and scrape defaults."""

    # A profile larger than this as received is quarantined without being decoded.
    max_input_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    # Decompressed size limit (inflation stops there: a gzip bomb costs no more).
    max_decoded_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    # Samples in a protobuf profile, stacks in a debug=1 dump, goroutines in a debug=2 dump or traceback.
    max_samples: int = Field(default=1_000_000, gt=0)
    # Profiles scraped from each target that does not list its own.
    scrape_profiles: list[str] = Field(default_factory=lambda: ["goroutine", "goroutineleak", "allocs"])
    # 2: goroutine profiles as debug=2 text (wait minutes and created-by are what find leaks); 0: protobuf.
    goroutine_debug: int = 2
    # Per request; a target that does not answer in time is recorded as a timeout and backed off.
    scrape_timeout_seconds: float = Field(default=10.0, gt=0)
    # Requests in flight at once across all targets.
    scrape_concurrency: int = Field(default=32, ge=1)
    # A response body larger than this is cut off and recorded as too_large (hostile or broken targets).
    # Bodies are held in memory while parsed: at most scrape_concurrency x this many bytes at once.
    scrape_max_response_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    # The goroutineleak profile runs a leak-detecting GC in the target: at most this often per target.
    goroutineleak_interval_seconds: float = Field(default=300.0, gt=0)
    # A profile a target answered 404 for (older Go, no goroutineleak) is asked for again only this often.
    not_supported_retry_seconds: float = Field(default=3600.0, gt=0)
    # A failing target is retried after interval x 2^(failures-1), capped here.
    scrape_backoff_max_seconds: float = Field(default=600.0, gt=0)
    # Prometheus file_sd JSON files: [{"targets": ["host:port"], "labels": {"service": .., "instance": ..}}].
    file_sd: list[Path] = Field(default_factory=list)
    # How often file_sd files are checked for changes.
    file_sd_refresh_seconds: float = Field(default=30.0, gt=0)
    # Scheme for file_sd targets given as host:port.
    file_sd_scheme: str = "http"

    @field_validator("scrape_profiles")
    @classmethod
    def _known_profiles(cls, v: list[str]) -> list[str]:
        return _check_profiles(v) or []

    @field_validator("goroutine_debug")
    @classmethod
    def _debug_level(cls, v: int) -> int:
        if v not in (0, 2):
            raise ValueError("goroutine_debug is 2 (text) or 0 (protobuf)")
        return v


class Settings(BaseSettings):
    """Everything a Fleetwatch process needs to know. See docs/configuration.md for each field."""

    model_config = SettingsConfigDict(
        env_prefix="FLEETWATCH_",
        env_nested_delimiter="__",
        extra="ignore",
        validate_default=True,
    )

    # chdb:///path (ClickHouse embedded in the process) or http(s)://user:pass@host:8123 (a server).
    clickhouse_dsn: str = "chdb://./data/store"
    # The server password kept out of the DSN (environment or a secret file); set into the DSN at start.
    clickhouse_password: SecretStr | None = None
    clickhouse_password_file: Path | None = None
    # Database holding every table (a plain identifier).
    database: str = "fleetwatch"
    # TTL of every table, in days. Rows older than this are dropped, even when ingested late.
    retention_days: int = Field(default=30, ge=1)
    # TTL of profile_raw (raw profile bytes kept for `fleetwatch pprof export`), in days.
    profile_raw_retention_days: int = Field(default=3, ge=1, le=3650)
    # With a cluster name, migrations create Replicated tables with Distributed fronts ON CLUSTER.
    cluster: str = ""
    # Where migrations, jobs, views and queries are read from.
    sql_dir: Path = REPO_SQL_DIR

    # Short spellings of the common addresses; they fill the nested sections below.
    kafka_bootstrap: str | None = None
    otlp_grpc: str | None = None
    otlp_http: str | None = None
    otlp_token: SecretStr | None = None
    query_http: str | None = None

    kafka: KafkaSettings = KafkaSettings()
    otlp: OtlpSettings = OtlpSettings()
    query: QuerySettings = QuerySettings()
    detect: DetectSettings = DetectSettings()
    files: FilesSettings = FilesSettings()
    pprof: PprofSettings = PprofSettings()
    # Scrape targets, TOML [[scrape]] tables (see ScrapeTarget); file_sd files in [pprof] add more.
    scrape: list[ScrapeTarget] = Field(default_factory=list)
    serve: ServeSettings = ServeSettings()

    # Run the detection scheduler inside `fleetwatch run` (--no-jobs turns it off).
    jobs_enabled: bool = True
    # Where the pipeline sends its own metrics (OTLP/gRPC endpoint). Empty: kept in process only.
    self_telemetry_endpoint: str = ""
    self_telemetry_interval_seconds: float = Field(default=10.0, gt=0)
    # DEBUG, INFO, WARNING or ERROR.
    log_level: str = "INFO"
    # On SIGTERM/SIGINT: how long stopping may take in all (receivers drain, Kafka commits, a running job or
    # query is cancelled when its share runs out). Keep it below the orchestrator's grace period.
    shutdown_timeout_seconds: float = Field(default=25.0, gt=0)

    @field_validator("database")
    @classmethod
    def _database_is_identifier(cls, v: str) -> str:
        if not _IDENTIFIER_RE.match(v):
            raise ValueError(f"database {v!r} must be a plain identifier (letters, digits, underscore)")
        return v

    @field_validator("cluster")
    @classmethod
    def _cluster_is_identifier(cls, v: str) -> str:
        if v and not _IDENTIFIER_RE.match(v):
            raise ValueError(f"cluster {v!r} must be a plain identifier (letters, digits, underscore)")
        return v

    @field_validator("retention_days")
    @classmethod
    def _sane_retention(cls, v: int) -> int:
        if v > 3650:
            raise ValueError("retention_days above 3650 is almost certainly a typo")
        return v

    def model_post_init(self, __context: Any) -> None:
        """Fold the short top-level spellings into their sections, so code reads one place."""
        if self.kafka_bootstrap is not None:
            self.kafka.bootstrap = self.kafka_bootstrap
        if self.otlp_grpc is not None:
            self.otlp.grpc = self.otlp_grpc
        if self.otlp_http is not None:
            self.otlp.http = self.otlp_http
        if self.otlp_token is not None:
            self.otlp.token = self.otlp_token
        if self.query_http is not None:
            self.query.http = self.query_http
        self._read_secret_files()

    def _read_secret_files(self) -> None:
        """`*_file` settings win over the inline secret, so a secret never has to sit in the environment."""
        if self.otlp.token_file:
            self.otlp.token = read_secret_file(self.otlp.token_file)
        if self.query.password_file:
            self.query.password = read_secret_file(self.query.password_file)
        if self.kafka.sasl_password_file:
            self.kafka.sasl_password = read_secret_file(self.kafka.sasl_password_file)
        if self.clickhouse_password_file:
            self.clickhouse_password = read_secret_file(self.clickhouse_password_file)
        if self.clickhouse_password is not None and not self.embedded:
            self.clickhouse_dsn = with_dsn_password(self.clickhouse_dsn, self.clickhouse_password.get_secret_value())

    @property
    def embedded(self) -> bool:
        return self.clickhouse_dsn.startswith("chdb://")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = _CONFIG_FILE_OVERRIDE or os.environ.get("FLEETWATCH_CONFIG")
        if toml_path:
            path = Path(toml_path)
            if not path.is_file():
                raise FileNotFoundError(f"configuration file not found: {path}")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


_CONFIG_FILE_OVERRIDE: str | None = None


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from flags (`overrides`, None values ignored), environment and TOML file."""
    global _CONFIG_FILE_OVERRIDE
    _CONFIG_FILE_OVERRIDE = str(config_file) if config_file else None
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    finally:
        _CONFIG_FILE_OVERRIDE = None
