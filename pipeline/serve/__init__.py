"""The one HTTP layer: every HTTP port of `fleetwatch run` (OTLP/HTTP on :4318, the query endpoint on :8123)
is a Starlette app on uvicorn built from the same parts, so connection limits, timeouts, authentication,
body size limits, decompression and the mapping of internal errors to status codes exist once.

* `protocol`  the HTTP/1.1 connection: caps, header timeout and size, keep-alive limits (below the app);
* `server`    one port: socket, TLS, uvicorn in a thread of its own, the fd limit;
* `body`      reading a body within its limits (wire size, read timeout) and bounded decompression;
* `auth`      bearer tokens and ClickHouse credentials, checked before a body byte is read;
* `status`    internal outcomes -> HTTP status / gRPC code, with Retry-After / RetryInfo;
* `routes`    per-route concurrency caps, the worker-thread pool, health and /metrics;
* `otlp`, `otlp_limits`, `query`  the routes of each port;
* `otlp_grpc` the OTLP/gRPC port (grpcio), whose interceptor applies the same token and limits before a
  message is decoded.
"""
