"""Property: reading container log records in any number of rounds, resuming each time where `decode` says
it stopped (what the file source does across polls and restarts), gives exactly the lines one read of the
whole file gives: none lost, none twice, pieces joined the same way."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.normalize.container_logs import decode

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=30)


@st.composite
def records(draw: st.DrawFn) -> list[str]:
    out = []
    for i in range(draw(st.integers(0, 25))):
        stamp = f"2026-12-01T10:00:{i % 60:02d}.{i:09d}Z"
        kind = draw(st.sampled_from(["cri", "docker", "plain"]))
        stream = draw(st.sampled_from(["stdout", "stderr"]))
        body = draw(text)
        if kind == "cri":
            out.append(f"{stamp} {stream} {draw(st.sampled_from(['P', 'F']))} {body}")
        elif kind == "docker":
            end = draw(st.sampled_from(["\n", ""]))
            out.append(json.dumps({"log": body + end, "stream": stream, "time": stamp}))
        else:
            out.append("plain " + body)
    return out


@FAST
@given(records(), st.lists(st.integers(0, 8), max_size=8))
def test_resuming_where_decode_stopped_loses_and_repeats_nothing(raw: list[str], rounds: list[int]) -> None:
    whole, consumed_all = decode(raw, final=True)
    assert consumed_all == len(raw)
    got = []
    start = 0
    visible = 0
    for grow in rounds:  # the file grows by `grow` records between reads
        visible = min(len(raw), visible + grow)
        entries, consumed = decode(raw[start:visible], final=False)
        assert all(e.last < consumed for e in entries)
        got += [(e.text, e.stream, e.fmt, e.first + start) for e in entries]
        start += consumed
    entries, _ = decode(raw[start:], final=True)
    got += [(e.text, e.stream, e.fmt, e.first + start) for e in entries]
    expected = [(e.text, e.stream, e.fmt, e.first) for e in whole]
    assert sorted(got, key=lambda g: g[3]) == sorted(expected, key=lambda g: g[3])
