"""The REST API over the gold layer served from TiDB (FastAPI, run by uvicorn)."""
