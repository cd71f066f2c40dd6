-- The engine's time zone, sent to readers as X-ClickHouse-Timezone.
SELECT timezone()
