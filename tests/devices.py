"""The devices a test can run on: CPU always, CUDA where a GPU is present (marked ``cuda``; see conftest.py
for how a CPU CI treats those, and scripts/gpu_check.sh for the run on a GPU machine)."""

import pytest
import torch

NO_CUDA = "needs a CUDA GPU (torch.cuda.is_available() is False here); scripts/gpu_check.sh runs it on one"
CUDA_MARKS = (pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA))
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA_MARKS)]
