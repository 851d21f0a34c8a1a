"""One torch thread for this folder: its tensors are small, and a second thread only waits on a busy machine."""

import torch

torch.set_num_threads(1)
