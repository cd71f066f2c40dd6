"""The scraper inside `fleetwatch run`: pulls each target's profiles on its own schedule.

Scheduling. Every (target, profile) has its own due time. A target has at most one scrape job in flight
(its due profiles are fetched one after another), and jobs run on a pool of `pprof.scrape_concurrency`
threads, so a target that hangs holds one thread for at most about twice its timeout and never delays
the others. First scrapes are spread over the first seconds by a hash of the URL, so a thousand targets
do not fire at once. After a failure a profile is retried after interval x 2^(failures-1), capped at
`pprof.scrape_backoff_max_seconds`; a 404 means the target does not serve that profile (goroutineleak
before Go 1.26) and it is asked again only every `pprof.not_supported_retry_seconds`. goroutineleak runs a
leak-detecting GC in the target, so it is fetched at most every `pprof.goroutineleak_interval_seconds`.

Recording. Every attempt becomes a `scrapes` row (status, HTTP status, error, bytes, duration); a body
that is not a profile is quarantined with the reason, like from any other door. Rows of many scrapes are
merged and written by one writer thread through the sink with a token derived from their content, so a
write retried after the store was unavailable lands once. While the store is behind (too many results
waiting), no new scrapes start: nothing is dropped, scrapes are only late.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pipeline.config import Settings
from pipeline.normalize.pprof import SIGNAL, ProfileMeta, ProfileResult, normalize_profile
from pipeline.normalize.rows import Rows
from pipeline.sink import Sink
from pipeline.sources.pprof_files import limits_from_settings
from pipeline.sources.scrape.fetch import Fetched, fetch, new_pool
from pipeline.sources.scrape.targets import Target, TargetSet
from pipeline.store.client import StoreError, StoreUnavailable
from pipeline.telemetry import Telemetry, get_telemetry

log = logging.getLogger(__name__)

SOURCE = "scrape"
_FIRST_SPREAD_SECONDS = 10.0
_FAILURES = ("http_error", "timeout", "refused", "too_large", "bad_profile", "error")


@dataclass
class _State:
    due: float
    failures: int = 0
    last_status: str = ""


@dataclass
class _Batch:
    rows: Rows = field(default_factory=Rows)
    keys: list[str] = field(default_factory=list)
    results: int = 0


class Scraper:
    """Scrapes every configured target until stopped; `fleetwatch run`'s `scrape` component."""

    name = "scrape"

    def __init__(self, settings: Settings, sink: Sink, telemetry: Telemetry | None = None) -> None:
        self.settings = settings
        self.pprof = settings.pprof
        self.sink = sink
        self.telemetry = telemetry or get_telemetry()
        self.limits = limits_from_settings(settings)
        self.targets = TargetSet(settings)
        self.pool = new_pool(self.pprof.scrape_concurrency)
        self.executor = ThreadPoolExecutor(max_workers=self.pprof.scrape_concurrency,
                                           thread_name_prefix="fleetwatch-scrape")
        self.stop_event = threading.Event()
        self._lock = threading.Lock()
        self._states: dict[tuple[str, str, str], _State] = {}
        self._current: dict[tuple[str, str], Target] = {}
        self._busy: set[tuple[str, str]] = set()
        self._batch = _Batch()
        self._batch_cond = threading.Condition()
        self.max_pending_results = max(1000, 4 * self.pprof.scrape_concurrency)
        self.flush_seconds = 0.5
        self.completed = 0        # scrape attempts recorded (tests and the benchmark read it)
        self.written = 0          # attempts whose rows are in the store
        self._loop_thread = threading.Thread(target=self._loop, name="fleetwatch-scrape-loop", daemon=True)
        self._writer_thread = threading.Thread(target=self._writer, name="fleetwatch-scrape-writer", daemon=True)

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> Scraper:
        self._loop_thread.start()
        self._writer_thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop scheduling, let running scrapes finish (each is bounded by its timeout), write what is left."""
        self.stop_event.set()
        self._loop_thread.join(timeout)
        self.executor.shutdown(wait=True, cancel_futures=True)
        with self._batch_cond:
            self._batch_cond.notify()
        self._writer_thread.join(timeout)
        self.pool.clear()

    # -- scheduling ------------------------------------------------------------------------------------
    def _sync(self, targets: list[Target]) -> None:
        now = time.monotonic()
        current = {(t.url, t.instance): t for t in targets}
        with self._lock:
            self._current = current
            wanted = {(t.url, t.instance, p) for t in targets for p in t.profiles}
            for key in list(self._states):
                if key not in wanted:
                    del self._states[key]
            for url, instance, profile in wanted:
                if (url, instance, profile) not in self._states:
                    target = current[(url, instance)]
                    spread = min(self._interval(target, profile), _FIRST_SPREAD_SECONDS)
                    frac = int.from_bytes(hashlib.blake2b(f"{url}\0{profile}".encode(), digest_size=4).digest(),
                                          "little") / 2**32
                    self._states[(url, instance, profile)] = _State(due=now + frac * spread)

    def _interval(self, target: Target, profile: str) -> float:
        if profile == "goroutineleak":
            return max(target.interval_seconds, self.pprof.goroutineleak_interval_seconds)
        return target.interval_seconds

    def _loop(self) -> None:
        next_refresh = 0.0
        while not self.stop_event.is_set():
            now = time.monotonic()
            if now >= next_refresh:
                try:
                    self._sync(self.targets.refresh())
                except Exception:
                    log.exception("scrape: refreshing targets failed")
                next_refresh = now + self.pprof.file_sd_refresh_seconds
            with self._batch_cond:
                behind = self._batch.results >= self.max_pending_results
            next_due = now + 0.5
            if not behind:
                next_due = self._submit_due(now)
            self.stop_event.wait(max(0.01, min(next_due - time.monotonic(), 0.5)))

    def _submit_due(self, now: float) -> float:
        due_by_target: dict[tuple[str, str], list[str]] = {}
        next_due = now + 0.5
        with self._lock:
            for (url, instance, profile), state in self._states.items():
                if (url, instance) in self._busy:
                    continue
                if state.due <= now:
                    due_by_target.setdefault((url, instance), []).append(profile)
                else:
                    next_due = min(next_due, state.due)
            jobs = []
            for key, profiles in due_by_target.items():
                self._busy.add(key)
                jobs.append((self._current[key], sorted(profiles)))
        for target, profiles in jobs:
            future = self.executor.submit(self._scrape_target, target, profiles)
            future.add_done_callback(lambda f, key=(target.url, target.instance): self._job_done(key, f))
        return next_due

    def _job_done(self, key: tuple[str, str], future: Future[list[tuple[str, str]]]) -> None:
        now = time.monotonic()
        try:
            outcomes = [] if future.cancelled() else future.result()
        except Exception:  # a bug in one job must not stop the target's schedule
            log.exception("scrape job for %s failed", key[0])
            outcomes = []
        with self._lock:
            self._busy.discard(key)
            target = self._current.get(key)
            for profile, status in outcomes:
                state = self._states.get((key[0], key[1], profile))
                if state is None or target is None:
                    continue
                interval = self._interval(target, profile)
                state.last_status = status
                if status == "not_supported":
                    state.due = now + self.pprof.not_supported_retry_seconds
                elif status in _FAILURES:
                    state.failures += 1
                    delay = interval * 2 ** min(state.failures - 1, 30)
                    state.due = now + min(delay, max(interval, self.pprof.scrape_backoff_max_seconds))
                else:
                    state.failures = 0
                    state.due = now + interval

    # -- one target ------------------------------------------------------------------------------------
    def _scrape_target(self, target: Target, profiles: list[str]) -> list[tuple[str, str]]:
        outcomes = []
        for profile in profiles:
            if self.stop_event.is_set():
                break
            rows = Rows()
            status = self.scrape_one(target, profile, rows)
            outcomes.append((profile, status))
            self._enqueue(rows, target, profile)
        return outcomes

    def scrape_one(self, target: Target, profile: str, rows: Rows) -> str:
        """Fetch one profile, normalize it into `rows` with its `scrapes` row; returns the status."""
        url = target.profile_url(profile)
        started = datetime.now(UTC)
        started_ns = time.time_ns()
        got: Fetched = fetch(self.pool, url, headers=dict(target.headers), timeout=target.timeout_seconds,
                             max_bytes=self.pprof.scrape_max_response_bytes)
        status, error, snapshot = got.status, got.error, ""
        if got.status == "ok":
            meta = ProfileMeta(service=target.service, instance=target.instance, source=SOURCE,
                               observed_ns=started_ns, received_at=started, type_hint=profile, location=url)
            try:
                result = normalize_profile(got.body, meta, rows, self.limits)
            except Exception as exc:  # a parser bug: the profile is kept in quarantine, the worker goes on
                log.exception("scrape: normalizing %s failed", url)
                rows.tables.clear()
                rows.quarantine(source=SOURCE, signal=SIGNAL, reason=f"cannot process profile: {exc!r}"[:2000],
                                raw=got.body, service=target.service, instance=target.instance, location=url,
                                received_at=started)
                result = ProfileResult(error=str(exc))
            if result.ok:
                snapshot = result.snapshot_id
            else:
                status, error = "bad_profile", result.error
        rows.append("scrapes", {
            "target": url, "service": target.service, "instance": target.instance, "profile_type": profile,
            "started": started, "duration_ms": min(got.duration_ms, 2**32 - 1), "status": status,
            "http_status": got.http_status, "error": error, "bytes": got.bytes, "snapshot_id": snapshot,
        })
        self.telemetry.records_in.add(1, {"source": SOURCE, "signal": SIGNAL, "status": status})
        return status

    # -- writing ---------------------------------------------------------------------------------------
    def _enqueue(self, rows: Rows, target: Target, profile: str) -> None:
        started = rows.tables["scrapes"]["started"][0]
        with self._batch_cond:
            self._batch.rows.extend(rows)
            self._batch.keys.append(f"{target.url}\0{target.instance}\0{profile}\0{started.isoformat()}")
            self._batch.results += 1
            self.completed += 1

    def _writer(self) -> None:
        while True:
            with self._batch_cond:
                if not self._batch.results and not self.stop_event.is_set():
                    self._batch_cond.wait(self.flush_seconds)
                batch, self._batch = self._batch, _Batch()
            if batch.results:
                self._write(batch)
            if self.stop_event.is_set() and not self._loop_thread.is_alive() and self._idle():
                return
            if not batch.results:
                continue
            self.stop_event.wait(self.flush_seconds)

    def _idle(self) -> bool:
        with self._batch_cond:
            pending = self._batch.results
        with self._lock:
            return not pending and not self._busy

    def _write(self, batch: _Batch) -> None:
        token = "scrape/" + hashlib.sha256("\n".join(sorted(batch.keys)).encode()).hexdigest()[:32]
        backoff = 0.5
        while True:
            try:
                self.sink.write(batch.rows, token=token)
                self.written += batch.results
                return
            except StoreUnavailable as exc:
                # Keep the batch (new scrapes wait behind it) and retry with the same token.
                log.warning("scrape: store unavailable, %d results kept, retry in %.1fs: %s", batch.results, backoff,
                            str(exc).splitlines()[0][:200])
                if self.stop_event.wait(backoff) and backoff > 8:
                    log.error("scrape: stopping with %d results not written", batch.results)
                    return
                backoff = min(backoff * 2, 30.0)
            except StoreError as exc:
                log.error("scrape: store refused %d results: %s", batch.results, str(exc).splitlines()[0][:300])
                return
