"""StyleGAN-XL's mapping network: StyleGAN3's, with pretrained class embeddings and a w_avg per class.

What differs from `gigajax.models.stylegan3.MappingNetwork` (official
`networks_stylegan3_resetting.MappingNetwork`):
- The label is not embedded by a dense layer of c. `argmax(c)` indexes a table `embed`
  `[1000, 320]` (an `nn.Embedding`; officially loaded from `in_embeddings/tf_efficientnet_lite0.pkl`),
  and `embed_proj` (a dense lrelu layer at learning rate 1) projects the row to `z_dim`, not `w_dim`.
  So the first layer takes `2 * z_dim` features (z and the projected label, each normalised to unit
  second moment), and every layer outputs `w_dim` (there is no `layer_features`).
- The table exists even when `c_dim == 0` (the official code always loads it), so unconditional
  state_dicts hold `mapping.embed.weight` too. It is then unused.
- `w_avg` is `[c_dim, w_dim]` when `c_dim > 0`: one centre per class, each tracked only from the
  samples of that class and used to truncate them (`[w_dim]`, the batch mean, otherwise).
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
from jax import lax

from gigajax.models.stylegan2.layers import FullyConnectedLayer, normalize_2nd_moment, torch_lerp
from gigajax.models.stylegan2.mapping import check_2d
from gigajax.ops._args import fail

NUM_EMBEDDINGS = 1000   # ImageNet classes: the rows of the official embedding table
EMBEDDING_DIM = 320     # width of EfficientNet-lite0's last block, whose features the table holds


class ClassEmbedding(nn.Module):
    """The class table, torch `nn.Embedding` style. Param `weight` `[num_embeddings, embedding_dim]`
    (rows are classes, as in torch; it is a lookup table, not a dense weight, so it is never
    transposed), init N(0, 1) like torch's `nn.Embedding` (= the official `rand_embedding=True`).

    Call: `()` -> the whole table; `(labels [N] int)` -> rows `[N, embedding_dim]`.
    """
    num_embeddings: int = NUM_EMBEDDINGS
    embedding_dim: int = EMBEDDING_DIM

    @nn.compact
    def __call__(self, labels=None):
        table = self.param("weight", nn.initializers.normal(1.0), (self.num_embeddings, self.embedding_dim))
        return table if labels is None else jnp.take(table, labels, axis=0)


def check_labels(c_dim, num_embeddings=NUM_EMBEDDINGS):
    """argmax(c) indexes the embedding table, so a model can have at most `num_embeddings` classes."""
    if isinstance(c_dim, bool) or not isinstance(c_dim, (int, np.integer)) or not 0 <= c_dim <= num_embeddings:
        fail("c_dim", c_dim, f"an integer in [0, {num_embeddings}] (argmax(c) indexes the "
             f"{num_embeddings}-row class embedding table)")


class MappingNetwork(nn.Module):
    """z `[N, z_dim]`, c `[N, c_dim]` (one-hot rows; only argmax(c) matters) -> ws `[N, num_ws, w_dim]`.

    x = normalize(z); with labels, y = normalize(embed_proj(embed[argmax(c)])) `[N, z_dim]` and
    x = concat(x, y); then `num_layers` dense lrelu layers at `lr_multiplier`, each to `w_dim`.

    Variables: params `embed` (ClassEmbedding, always), `embed_proj` (when c_dim > 0), `fc0` ...
    `fc{num_layers-1}`; buffer `w_avg`, `[c_dim, w_dim]` when c_dim > 0 else `[w_dim]`.

    `update_emas=True` (with `mutable=['buffers']`) moves w_avg towards this batch's w: per class,
    one sample at a time in batch order, w_avg[label] = lerp(w_i, w_avg[label], w_avg_beta) (so two
    samples of one class move it twice); without labels, towards the batch mean, as in StyleGAN3.
    `truncation_psi` pulls each sample's first `truncation_cutoff` ws (all when None) towards the
    w_avg row of its own class, w_avg + psi * (w - w_avg); the Python value 1 skips it.

    `rand_embedding` is the official flag, kept for configs: `init` always draws the table
    N(0, 1), which is what `rand_embedding=True` does. The official default (False) loads the
    pretrained table instead; here `gigajax.models.stylegan_xl.init_variables` puts it in (see
    `gigajax.compat.stylegan_xl_convert.load_class_embeddings`).
    """
    z_dim: int
    c_dim: int
    w_dim: int
    num_ws: int
    num_layers: int = 2
    lr_multiplier: float = 0.01
    w_avg_beta: float = 0.998
    rand_embedding: bool = False
    num_embeddings: int = NUM_EMBEDDINGS
    embedding_dim: int = EMBEDDING_DIM

    @nn.compact
    def __call__(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        check_labels(self.c_dim, self.num_embeddings)
        check_2d("z", z, self.z_dim, "z_dim")
        table = ClassEmbedding(self.num_embeddings, self.embedding_dim, name="embed")
        table()  # the table is a variable even without labels (official state_dict parity)

        x = normalize_2nd_moment(z.astype(jnp.float32))
        labels = None
        if self.c_dim > 0:
            check_2d("c", c, self.c_dim, "c_dim")
            if c.shape[0] != z.shape[0]:
                fail("c.shape", tuple(c.shape), f"[N={z.shape[0]} (as z), c_dim={self.c_dim}]")
            labels = jnp.argmax(c, axis=1)
            proj = FullyConnectedLayer(self.embedding_dim, self.z_dim, activation="lrelu", name="embed_proj")
            y = proj(table(labels))
            x = jnp.concatenate([x, normalize_2nd_moment(y)], axis=1)

        features = [x.shape[1]] + [self.w_dim] * self.num_layers
        for idx in range(self.num_layers):
            x = FullyConnectedLayer(features[idx], features[idx + 1], activation="lrelu",
                                    lr_multiplier=self.lr_multiplier, name=f"fc{idx}")(x)

        shape = (self.c_dim, self.w_dim) if self.c_dim > 0 else (self.w_dim,)
        w_avg = self.variable("buffers", "w_avg", jnp.zeros, shape, jnp.float32)
        if update_emas and not self.is_initializing():
            w_avg.value = _track(w_avg.value, lax.stop_gradient(x), labels, self.w_avg_beta)

        x = jnp.broadcast_to(x[:, None, :], (x.shape[0], self.num_ws, self.w_dim))
        if not (isinstance(truncation_psi, (int, float)) and truncation_psi == 1):
            centre = w_avg.value if labels is None else w_avg.value[labels][:, None, :]  # [w_dim] or [N, 1, w_dim]
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            x = x.at[:, :cutoff].set(torch_lerp(centre, x[:, :cutoff], truncation_psi))
        return x


def _track(w_avg, w, labels, beta):
    """The official w_avg update: the batch mean without labels; with labels, a sequential pass
    over the batch (a scan, so repeated classes compound exactly as the official loop does)."""
    if labels is None:
        return torch_lerp(jnp.mean(w, axis=0), w_avg, beta)

    def step(avg, sample):
        w_i, label = sample
        return avg.at[label].set(torch_lerp(w_i, avg[label], beta)), None

    return lax.scan(step, w_avg, (w, labels))[0]
