"""Train (once) and cache the small classifier that guides StyleGAN-XL on datasets without a
pretrained classifier, such as the embedded mnist5k.

`trained_classifier(dataset, resolution)` returns (SmallCNN, variables, held-out accuracy). The
first call trains on a seeded random 90% of the dataset (Adam 2e-3, batch 64, 6 epochs, fixed seed, so the result is the same on every machine up to float rounding) and saves
the weights under $GIGAJAX_CACHE/classifiers/; later calls read them. A cached file whose
accuracy is below `min_accuracy` is an error, not a silent guide.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gigajax.models.classifier import SmallCNN
from gigajax.train.export import load_variables, save_variables

VERSION = 2


def _cache_file(dataset: str, resolution: int) -> Path:
    from gigajax.assets import cache_dir
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in dataset)
    return cache_dir() / "classifiers" / f"{safe}-{resolution}-v{VERSION}.npz"


def train_classifier(images: np.ndarray, labels: np.ndarray, num_classes: int, *, epochs: int = 6,
                     batch: int = 64, lr: float = 2e-3, seed: int = 0):
    """images uint8 [N, R, R, C], labels int [N] -> (SmallCNN, variables, held-out accuracy), with a
    random (seeded) 10% held out: datasets are often stored sorted by class."""
    n = len(images)
    n_val = max(n // 10, 1)
    perm = np.random.RandomState(seed).permutation(n)
    x = images[perm].astype(np.float32) / 127.5 - 1
    labels = np.asarray(labels)[perm]
    xt, yt, xv, yv = x[:-n_val], labels[:-n_val], x[-n_val:], labels[-n_val:]
    model = SmallCNN(num_classes)
    params = model.init(jax.random.PRNGKey(seed), jnp.asarray(xt[:1]))["params"]
    opt = optax.adam(lr)
    opt_state = opt.init(params)

    @jax.jit
    def step(params, opt_state, xb, yb):
        def loss_fn(p):
            logits = model.apply({"params": p}, xb)
            return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, yb))
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    predict = jax.jit(lambda p, xb: jnp.argmax(model.apply({"params": p}, xb), axis=1))
    rng = np.random.RandomState(seed)
    for _ in range(epochs):
        order = rng.permutation(len(xt))
        for i in range(len(xt) // batch):
            idx = order[i * batch:(i + 1) * batch]
            params, opt_state, _ = step(params, opt_state, jnp.asarray(xt[idx]), jnp.asarray(yt[idx]))
    correct = sum(int(jnp.sum(predict(params, jnp.asarray(xv[i:i + 256])) == jnp.asarray(yv[i:i + 256])))
                  for i in range(0, len(xv), 256))
    return model, {"params": params}, correct / len(xv)


def trained_classifier(dataset: str = "mnist5k", resolution: int | None = None, *, min_accuracy: float = 0.9,
                       verbose: bool = True):
    """(SmallCNN, variables, held-out accuracy) for `dataset` (a gigajax dataset spec with labels) at
    `resolution` (None = native), trained on first use and cached (module doc)."""
    from gigajax.data import open_source
    source = open_source(dataset, resolution=resolution, use_labels=True)
    if not source.num_classes:
        raise ValueError(f"trained_classifier: dataset {dataset!r} has no labels; classifier guidance needs them")
    res = source.resolution
    file = _cache_file(dataset, res)
    if file.exists():
        variables, meta = load_variables(file)
        variables = jax.tree.map(jnp.asarray, variables)
        model, acc = SmallCNN(int(meta["num_classes"])), float(meta["accuracy"])
    else:
        if verbose:
            print(f"training the guidance classifier for {dataset} at {res}x{res} (once; cached in {file.parent})",
                  flush=True)
        idx = np.arange(len(source))
        model, variables, acc = train_classifier(source.images(idx), source.labels(idx), source.num_classes)
        if acc < min_accuracy:
            raise ValueError(f"the guidance classifier for {dataset} reached only {acc:.3f} held-out accuracy "
                             f"(< {min_accuracy}); classifier guidance would mislead G. Train without it "
                             f"(cls_weight=0) or supply a classifier.")
        save_variables(file, variables, {"num_classes": source.num_classes, "accuracy": acc, "dataset": dataset,
                                         "resolution": res})
    if acc < min_accuracy:
        raise ValueError(f"the cached guidance classifier {file} has held-out accuracy {acc:.3f} < {min_accuracy}; "
                         f"delete it to retrain")
    return model, variables, acc
