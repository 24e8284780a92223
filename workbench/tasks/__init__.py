"""Tasks: a request's life from submit to result — the service (rows and status), the runner on Dask,
the bodies that run there, plans and their approval."""
