"""Spark jobs of the lakehouse; the CLI is ``python -m lakehouse_jobs <domain> <layer> --ds YYYY-MM-DD``."""
