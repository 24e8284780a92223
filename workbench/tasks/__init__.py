"""Tasks: a request's life from submit to result — the typed request and results (records), the one API
callers use (api: create and submit, cancel, approve, read), the service (rows and status), the runner on
Dask, the bodies that run there, plans and their approval, and the dashboards' live reads (overview)."""
