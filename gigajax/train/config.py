"""The trainer's config keys, shared by every experiment.

Every experiment's `get_config(variant)` starts from `base_config()` and adds a `model`
sub-config, so the flat keys below can always be overridden from the command line
(`--config.total_kimg=50`).
"""

import ml_collections


def base_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    # --- the flat keys every experiment has ---
    c.experiment = ""           # the experiments.<name> that built the run (set by its command line; tools read it)
    c.total_kimg = 100.0        # train until this many thousand real images were shown to D
    c.batch_size = 64           # global batch, split over the mesh's 'data' axis
    c.seed = 0                  # parameters, noise, data order and the sample grid all derive from it
    c.snapshot_kimg = 20.0      # checkpoint + sample grid every this many kimg (and at the end)
    c.dataset = "mnist5k"       # see gigajax.data.open_source: mnist5k, animal-mnist, PATH, tfds:NAME
    # --- data ---
    c.resolution = 0            # 0 = the dataset's own resolution
    c.use_labels = False        # conditional models set True
    c.xflip = False             # dataset x-flip augmentation (doubles the epoch, as in StyleGAN)
    # --- trainer ---
    c.ema_kimg = 0.0            # G_ema half-life in kimg; 0 disables EMA (G_ema tracks G exactly)
    c.ema_rampup = 0.0          # >0: half-life limited to cur_kimg * ema_rampup (StyleGAN2: 0.05)
    c.keep_checkpoints = 3      # orbax keeps the newest N snapshots
    c.log_every = 50            # steps between log lines (JSONL, TensorBoard, progress bar)
    c.max_nonfinite = 20        # stop after this many consecutive steps with a non-finite loss/grad
    c.grid_rows = 10
    c.grid_cols = 10
    c.prefetch = 2
    # --- metrics (gigajax.metrics.compute names, e.g. ('fid10k', 'kid10k')) at every snapshot
    # after the first; logged as 'metric/<name>' to JSONL/TensorBoard and drawn in metrics.png ---
    c.metrics = ()
    c.model = ml_collections.ConfigDict()
    return c
