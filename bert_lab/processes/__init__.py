"""The processes that train: the worker (claims queued runs and owns every lifecycle decision), a run's own process
(`runner`: trains one run and streams it to the store), how a run's process is started (`executor`) and where runs
fit on a GPU (`placement`)."""
