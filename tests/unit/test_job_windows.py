"""Window arithmetic, parameter plumbing and the copy-paste SQL of triage: pure functions."""

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.config import DetectSettings
from pipeline.jobs.runner import job_parameters, referenced_parameters
from pipeline.jobs.windows import Window, align_down, due_windows, fmt_time, parse_time, range_windows
from pipeline.report.triage import fill_parameters

NOW = datetime(2026, 3, 1, 12, 0, 45, 500000, tzinfo=UTC)


def test_parse_time_accepts_durations_and_iso() -> None:
    assert parse_time("15m", NOW) == NOW - timedelta(minutes=15)
    assert parse_time("1h", NOW) == NOW - timedelta(hours=1)
    assert parse_time("2026-03-01T10:00:00", NOW) == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert parse_time("2026-03-01T10:00:00+02:00", NOW) == datetime(2026, 3, 1, 8, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_time("yesterday", NOW)


def test_due_windows_are_whole_closed_and_on_the_grid() -> None:
    got = due_windows(None, NOW, window_seconds=60, lag_seconds=30, backfill_seconds=300, limit=100)
    assert got[0].start == datetime(2026, 3, 1, 11, 55, tzinfo=UTC)
    assert got[-1].end <= NOW - timedelta(seconds=30)
    assert all(w.seconds == 60 and w.start == align_down(w.start, 60) for w in got)
    assert all(a.end == b.start for a, b in itertools.pairwise(got))


def test_due_windows_resume_from_watermark_and_respect_limit() -> None:
    mark = datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
    got = due_windows(mark, NOW, window_seconds=60, lag_seconds=30, backfill_seconds=300, limit=5)
    assert [w.start for w in got] == [mark + timedelta(minutes=i) for i in range(5)]
    # a watermark off the grid (manual run ending mid-window) recomputes that window whole
    got = due_windows(mark + timedelta(seconds=20), NOW, window_seconds=60, lag_seconds=30,
                      backfill_seconds=300, limit=1)
    assert got == [Window(mark, mark + timedelta(minutes=1))]
    assert due_windows(NOW, NOW, window_seconds=60, lag_seconds=30, backfill_seconds=300, limit=5) == []


def test_range_windows_cut_the_last_window_at_until() -> None:
    got = range_windows(NOW - timedelta(seconds=150), NOW, window_seconds=60)
    assert got[0].start == datetime(2026, 3, 1, 11, 58, tzinfo=UTC) and got[-1].end == NOW


def test_job_parameters_cover_every_detect_field() -> None:
    detect = DetectSettings()
    params = job_parameters(detect, Window(NOW, NOW + timedelta(seconds=60)), "r1")
    assert set(DetectSettings.model_fields) <= params.keys()
    assert params["window_start"] == fmt_time(NOW) == "2026-03-01 12:00:45.500"
    assert params["run_id"] == "r1"


def test_referenced_parameters_reads_placeholders() -> None:
    sql = "SELECT {a:UInt32}, { b : DateTime64(3, 'UTC') } WHERE x = '{not_a_param}'"
    assert referenced_parameters(sql) == {"a", "b"}


def test_fill_parameters_quotes_values() -> None:
    sql = "SELECT * FROM t WHERE s = {service:String} AND ts >= {since:DateTime64(3, 'UTC')}"
    got = fill_parameters(sql, {"service": "it's", "since": NOW})
    assert got == "SELECT * FROM t WHERE s = 'it\\'s' AND ts >= '2026-03-01 12:00:45.500'"


def test_triage_numbers_keep_their_integer_digits() -> None:
    from pipeline.report.triage import _num

    assert _num(549.92, 0) == "550"
    assert _num(130.10, 1) == "130.1"
    assert _num(2.0, 2) == "2"
    assert _num(None) == "n/a"
    assert _num(7) == "7"
