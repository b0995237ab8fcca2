"""adm_edu: DDIM, Improved DDPM and ADM (guided diffusion), one notebook per idea."""
__version__ = "0.1.0"

import warnings as _warnings

# fastai (imported by adm_edu.learner) calls torch.jit.script at import time, which recent torch
# marks deprecated: a FutureWarning about fastai's internals, not about anything a user can change.
_warnings.filterwarnings('ignore', message='.*torch.jit.script.*', category=FutureWarning)

# The sampling, ODE and loss chapters add methods to `Schedule` (`ddim_step`, `p_sample`,
# `vb_terms_bpd`, `training_losses`, ...) with fastcore's `@patch`, and the ODE chapter registers
# its samplers (`euler`, `heun`, `song`) in `adm_edu.sampling.SAMPLERS`; importing them here means
# those methods and samplers exist whichever adm_edu module a user imports first. They import
# only torch, numpy and fastcore.
from . import schedule, sampling, ode, losses  # noqa: E402,F401
