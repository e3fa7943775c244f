"""Runs, torch-free: the states a run can be in (`status`), what the store keeps (`records`), where it is kept
(`store`, the interface; `backends` by URL scheme: `sqlite`, `postgres`; `sql`, their shared logic; `retry`, riding
through outages), what a person may do to runs (`service`) and the rules around that: the fair queue (`queue`), the
result cache (`cache`), runs in plain words (`describe`) and workshop mode (`workshop`, `names`)."""
