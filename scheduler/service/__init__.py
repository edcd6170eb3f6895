"""The long-running service and the passes it schedules: the service loop (`main`), when a
source is due (`schedule`, pure), one crawl pass as a job (`jobs`), passes holding their
alerts (`holds`), the health and metrics endpoints (`health`, `metrics`) and the process's
runtime state (`runtime`). docs/operations.md describes running it."""
