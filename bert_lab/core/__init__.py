"""What every other part shares, importing nothing else of the lab: a run's knobs (`config.RunConfig`), the metric
catalogue (`metrics`: each recorded metric's name, label and direction) and where the lab's files are (`layout`)."""
