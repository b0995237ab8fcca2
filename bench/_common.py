"""Shared helpers of the bench/ scripts: timing (median of timed runs after warm-up, interleaved so
that load from other processes hits ours and the baseline alike), peak memory (growth of ru_maxrss),
the hardware description and the JSON fragment each script writes with `--json PATH` (collected by
bench/run_all.py, i.e. `make bench`)."""

import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def maxrss_mib() -> float:
    """Peak resident set size of this process so far, MiB (ru_maxrss is KiB on Linux, bytes on
    macOS)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**20 if sys.platform == 'darwin' else r / 1024


def sync(device=None):
    import torch

    if device is not None and torch.device(device).type == 'cuda':
        torch.cuda.synchronize()


def interleaved(fns: dict, warmup: int = 1, repeats: int = 3, device=None) -> dict:
    """Run each callable in `fns` `warmup` times, then `repeats` rounds of one timed call each, in
    turn (A B A B ...). Returns {name: [seconds, ...]}; use the median."""
    for _ in range(warmup):
        for f in fns.values():
            f()
    sync(device)
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            sync(device)
            times[k].append(time.perf_counter() - t0)
    return times


def med(xs):
    return statistics.median(xs)


def cpu_model() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            return next(l.split(':', 1)[1].strip() for l in f if l.startswith('model name'))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def hardware(device=None) -> dict:
    """What the figures were measured on: adm_edu's one-line description, the CPU model and its bf16
    capabilities."""
    import torch
    from adm_edu.device import describe_device, cpu_flags, cpu_has_native_bf16

    fl = cpu_flags()
    return dict(
        describe_device=describe_device(device or 'cpu'),
        cpu_model=cpu_model(),
        cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        torch=torch.__version__,
        python=platform.python_version(),
        avx512_bf16='avx512_bf16' in fl,
        amx_bf16='amx_bf16' in fl,
        avx512f='avx512f' in fl,
        native_bf16=cpu_has_native_bf16(),
        torch_cpu_capability=getattr(torch.backends.cpu, 'get_cpu_capability', lambda: '?')(),
    )


def figure(
    name: str,
    ratio: float,
    ours=None,
    baseline=None,
    unit: str = '',
    higher_is_better: bool = True,
    note: str = '',
) -> dict:
    """One benchmark figure: `ratio` = ours / baseline measured in the same run (absolute values as
    context). `higher_is_better` says which direction is good for the ratio."""
    sig = lambda v: None if v is None else float(f"{float(v):.4g}")
    return dict(
        name=name,
        ratio=sig(ratio),
        ours=sig(ours),
        baseline=sig(baseline),
        unit=unit,
        higher_is_better=higher_is_better,
        note=note,
    )


def write_json(path, bench: str, figures: list, context: dict | None = None):
    """Write this script's fragment: {'bench', 'figures': [...], 'context': {...}} (merged by
    bench/run_all.py)."""
    if not path:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'w') as f:
        json.dump(dict(bench=bench, figures=figures, context=context or {}), f, indent=1)


# An AVX2-only CPU on any x86 machine: oneDNN (convolutions, matmuls) and ATen's vectorised kernels
# capped at AVX2, read when torch is imported, so set in a child process's environment
# (adm_edu.device.isa_cap_allows_bf16 sees it too).
AVX2_CAP = {'ONEDNN_MAX_CPU_ISA': 'AVX2', 'ATEN_CPU_CAPABILITY': 'avx2'}


def spawn(target, *args, env: dict | None = None):
    """Run target(*args, queue) in a fresh 'spawn' process (with `env` added to its environment) and
    return what it puts on the queue; a child that fails raises SystemExit naming it."""
    import multiprocessing as mp

    ctx = mp.get_context('spawn')
    q = ctx.Queue()
    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        p = ctx.Process(target=target, args=(*args, q))
        p.start()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    r = q.get()
    p.join()
    if p.exitcode:
        raise SystemExit(f"{target.__name__}{args} failed (exit {p.exitcode})")
    return r


def release_memory_mode():
    """Before a peak-memory measurement: glibc returns every block of 64 KiB or more to the system
    at free (adm_edu.device.tune_malloc('release')), so the growth of ru_maxrss is the peak of live
    memory, not the heap's layout."""
    from adm_edu.device import tune_malloc

    return tune_malloc('release')
