"""The papers' experiments at small scale: the runner (`runner`: records, sampling and scoring,
training runs, curves, tables of shipped models, verdicts) and one module per paper (`ddim`,
`iddpm`, `adm`, `cascade`), each holding its rows, the paper's numbers and its claims, and
registering its experiments in `EXPERIMENTS`.

Written by hand (nbdev generates the modules, not this file): importing the package imports every
paper's module, so `EXPERIMENTS` is complete and each public name is here too
(`adm_edu.experiments.run_experiment`, `adm_edu.experiments.load_records`, ...)."""

from .runner import *  # noqa: F401,F403
from .ddim import *  # noqa: F401,F403
from .iddpm import *  # noqa: F401,F403
from .adm import *  # noqa: F401,F403
from .cascade import *  # noqa: F401,F403
