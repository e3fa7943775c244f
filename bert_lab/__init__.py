"""BERT Lab: fine-tune BERT-family models under every optimization choice, and watch what each choice does."""

import os

# Models and data come from local folders and packages only; never wait on (or reach) the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

__version__ = "0.2.0"
