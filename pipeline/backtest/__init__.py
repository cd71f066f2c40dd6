"""Backtesting the detections: labelled scenarios replayed through the real jobs, scored against their labels.

`scenario` is the data contract (rows per table plus labels), `library` generates the built-in scenarios
from deterministic seeds, `replay` loads scenarios into a store and runs the jobs as the scheduler would,
`score` compares what the jobs wrote with the labels, and `command` is `fleetwatch backtest`.
"""
