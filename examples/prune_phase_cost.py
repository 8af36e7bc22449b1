"""Where the time of one ``compare`` run's phase goes, in a fresh process (as ``--prune`` ran
every phase before each variant's model was kept): wall and CPU time of each piece. (Since
then a phase that ends before the last epoch no longer saves and reloads the model.)

Usage (one phase each; a later phase reads the checkpoint the one before wrote in OUT)::

    python examples/prune_phase_cost.py OUT cce 0 1 4 48 64 adam
    python examples/prune_phase_cost.py OUT cce 1 2 4 48 64 adam

Arguments: output folder, variant, first and last epoch of the phase, epochs of the run,
images (generated scenes), size, optimizer. Batch 4, seed 0. Figures in
examples/compare_advisor.md ("Pruning").
"""
# ruff: noqa: E402, E501, E741 - a measurement script: imports are timed

import resource
import sys
import time

T0w, T0c = time.perf_counter(), time.process_time()
marks = []


def mark(name, w0, c0):
    marks.append((name, time.perf_counter() - w0, time.process_time() - c0))


w, c = time.perf_counter(), time.process_time()
import tensorflow as tf  # noqa
import sm_pixel_ce  # noqa
from sm_pixel_ce.compare import experiment, training
from sm_pixel_ce.compare.options import CompareOptions
from sm_pixel_ce.compare.reading import read
from sm_pixel_ce.compare.splitting import split
from sm_pixel_ce.compare.counting import count
from sm_pixel_ce.compare.experiment import Task

mark("import TF + sm_pixel_ce", w, c)
root, variant, start, stop, epochs, images, size, opt = sys.argv[1:9]
start, stop, epochs = int(start), int(stop), int(epochs)
w, c = time.perf_counter(), time.process_time()
options = CompareOptions(
    images=int(images),
    size=int(size),
    epochs=epochs,
    variants=(variant,),
    optimizer=opt,
    batch_size=4,
    prune=True,
)
data = read(options, lambda l: None)
held = split(data.source, options.val_fraction, options.seed)
counts = count(held.train, options, lambda l: None)
mark("read/split/count data", w, c)


def wrap(mod, name, label):
    f = getattr(mod, name)

    def g(*a, **k):
        w, c = time.perf_counter(), time.process_time()
        try:
            return f(*a, **k)
        finally:
            mark(label, w, c)

    setattr(mod, name, g)


wrap(experiment, "initial_weights", "initial weights (build cce model)")
wrap(experiment, "load_checkpoint", "load checkpoint")
wrap(training, "_compiled_model", "build + compile variant model")
wrap(training, "training_dataset", "training dataset")
wrap(experiment, "_save_and_reload", "save + reload model, compare outputs")
wrap(experiment, "save_checkpoint", "save checkpoint")
wrap(training, "evaluate", "validation pass (each)")
w, c = time.perf_counter(), time.process_time()
r = experiment.train_task(
    held,
    options,
    root,
    Task(variant, 0, True, (start, stop)),
    counts,
    progress=False,
    log=lambda l: None,
)
mark("train_task total", w, c)
agg = {}
for name, dw, dc in marks:
    a = agg.setdefault(name, [0, 0, 0])
    a[0] += 1
    a[1] += dw
    a[2] += dc
print(
    f"phase {start}-{stop}: fit seconds {r['seconds']:.2f}; epoch train {[round(x, 2) for x in r['epoch_seconds']]}; first batch {[round(x, 2) for x in r['first_batch_seconds']]}"
)
for name, (n, dw, dc) in agg.items():
    print(f"  {name:<40} x{n}  wall {dw:6.2f} s  cpu {dc:6.2f} s")
ru = resource.getrusage(resource.RUSAGE_SELF)
print(
    f"  process total wall {time.perf_counter() - T0w:.2f} s cpu {ru.ru_utime + ru.ru_stime:.2f} s maxrss {ru.ru_maxrss / 1024:.0f} MB"
)
