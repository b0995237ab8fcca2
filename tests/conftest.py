import os
import torch
from hypothesis import settings

# Keep property tests quick and deterministic on the 2-core CI machine.
settings.register_profile('ci', max_examples=40, deadline=None, derandomize=True)
settings.load_profile(os.environ.get('HYPOTHESIS_PROFILE', 'ci'))
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
