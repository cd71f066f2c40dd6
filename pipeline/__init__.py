"""Fleetwatch: GC storms, goroutine leaks and lost context cancellation across a Go fleet."""

__version__ = "0.1.0"
