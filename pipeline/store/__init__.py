"""The store: the only package that knows clickhouse-connect (client, migrations, query endpoint)."""

from pipeline.store.client import Store, StoreError, StoreUnavailable

__all__ = ["Store", "StoreError", "StoreUnavailable"]
