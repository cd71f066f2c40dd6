"""Scheduled SQL detection jobs (the SQL itself lives in sql/jobs)."""
