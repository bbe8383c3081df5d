"""SynBench: score pretrained encoders on synthetic Gaussian tasks, without real data."""

import os

# Never reach the network for weights; a user may opt in with HF_HUB_OFFLINE=0.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

__version__ = "0.1.0"
