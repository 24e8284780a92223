"""Scheduled notebook pipelines: `pipelines/NAME.yaml` names a notebook, its typed parameters and a cron
schedule. spec (the file, checked), runner (one papermill run as a Dask task, recorded), history (the
`pipeline_runs` and `pipeline_schedules` tables), scheduler (due schedules, claimed in Postgres)."""
