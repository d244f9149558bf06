"""Make this folder importable (pytest's importlib mode does not: the tests share lyt_helpers.py), and run torch
on one thread: the models here are tiny, and on a shared 2-core machine two OpenMP threads mostly wait."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
torch.set_num_threads(1)
