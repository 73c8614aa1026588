"""Metabase as code: dashboard specs under ``dashboards/`` and their provisioning through the REST API."""
