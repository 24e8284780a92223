"""The served app (FastAPI + Panel): one process, one port."""
