"""The walls import-linter cannot express. The import walls themselves (layers, no cycles, a pure
normalize, only the store knows ClickHouse, nothing imports the cli) are contracts in pyproject.toml,
checked by `lint-imports` in `make lint` and `make test`.

What is left here is about calls and types rather than imports: normalizers never read the clock (they may
import `datetime` for its types, so an import rule cannot see a `datetime.now()`), and every component
`fleetwatch run` starts is typed against the one `RunContext`, not `Any`.
"""

from __future__ import annotations

import ast
import inspect
import typing
from pathlib import Path

from pipeline import app
from pipeline.runtime import RunContext

PIPELINE = Path(__file__).resolve().parents[2] / "pipeline"

# Calls that read the wall clock or a timer: `datetime.now()`, `date.today()`, `time.time()` and friends.
CLOCK_CALLS = {"now", "utcnow", "today", "time", "time_ns", "monotonic", "monotonic_ns", "perf_counter",
               "perf_counter_ns"}


def clock_calls(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CLOCK_CALLS:
            found.append(f"{path.name}:{node.lineno} {ast.unparse(node.func)}()")
    return found


def test_normalizers_never_read_the_clock() -> None:
    calls = [c for p in sorted((PIPELINE / "normalize").rglob("*.py")) for c in clock_calls(p)]
    assert calls == [], "normalize is pure: pass the time in instead"


def test_clock_check_sees_a_clock_call(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from datetime import datetime\n\ndef f():\n    return datetime.now()\n")
    assert clock_calls(sample) == ["sample.py:4 datetime.now()"]


def test_every_component_starter_is_typed_against_the_run_context() -> None:
    starters = app._starters()
    assert starters, "fleetwatch run starts no component"
    for label, start in starters:
        # A module may name RunContext under TYPE_CHECKING only (to keep its imports acyclic).
        hints = typing.get_type_hints(start, localns={"RunContext": RunContext})
        assert hints.get("ctx") is RunContext, f"{label}: start(ctx) must take a RunContext, not {hints.get('ctx')}"
        returned = [t for t in typing.get_args(hints["return"]) if t is not type(None)]
        assert len(returned) == 1, f"{label}: start() returns one component type or None"
        component = returned[0]
        assert isinstance(getattr(component, "name", None), str), f"{label}: the component has a name"
        stop = inspect.signature(component.stop)
        assert list(stop.parameters)[1:] == ["timeout"], f"{label}: stop(timeout) is the protocol"
