"""Run directories on disk: the SQLite store, the config.json lifecycle shared by every run kind,
and the resumable search and sweep runs."""
