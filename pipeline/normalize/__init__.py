"""Pure functions from payload bytes to rows: no I/O, no clock reads they are not handed, no store.

One mapping per signal, shared by every transport: an OTLP log body and a Kafka raw line reach the same
gctrace parser.
"""
