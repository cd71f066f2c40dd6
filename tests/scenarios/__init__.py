"""Recording real Go programs into the backtest scenario library (see record.py)."""
