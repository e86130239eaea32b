"""The run scaffold every model shares: typed configs with one ``from_dict`` and
``--set`` syntax (config), run directories with their ``kind`` (workdir), orbax
checkpoints with latest + best and fallback (checkpoints), the training loop with
an in-step finite flag (loop), several processes (distributed), the registry
entry type (kind), shared scores (metrics) and the one table writer (tables)."""
