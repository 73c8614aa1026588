"""Serving: gold slices from Iceberg into PostgreSQL (analytics) and TiDB (lakehouse)."""
