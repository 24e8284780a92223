"""What a notebook reaches through `import workbench`: the store as pandas DataFrames, and batches on Dask.

    frames.py   workbench.tasks(), events(), trace(id): read from Postgres (current, not a sync behind)
    batch.py    workbench.map(prompts, model=...): one single-call task per prompt on the Dask cluster

Experiments have their own frames (workbench.experiment.frames: `workbench.experiments()`).
"""
