"""Sweeps: groups of runs that vary 1–3 knobs (a grid, random draws, or an Optuna search), each config with k seeds
(`spec`), and the honest reading of a group: mean ± interval per config, and whether a difference is real (`report`).
`search` holds everything Optuna does. Torch-free: pages, the CLI and the worker use it."""
