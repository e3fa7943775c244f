"""What teaches: the lessons, notes on a run's curves (`annotate`), the LR range test (`lr_find`) and two runs
compared example by example (`prediction_diff`)."""
