"""A tiny MLP GAN for trainer tests: fast to compile, and it exercises every phase kind
(main phases, a lazy R1 phase with interval 4, a BatchNorm-free EMA'd G, and labels).

Runnable as an experiment: python tests/toy_gan.py --workdir DIR [--config.KEY=VALUE ...]
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from gigajax import losses
from gigajax.train import GANRecipe, Phase
from gigajax.train.config import base_config

VARIANTS = {"default": "mnist5k, 2-layer MLPs, for tests"}


class G(nn.Module):
    shape: tuple

    @nn.compact
    def __call__(self, z, c):
        x = nn.leaky_relu(nn.Dense(32)(jnp.concatenate([z, c], -1)), 0.2)
        h, w, ch = self.shape
        return jnp.tanh(nn.Dense(h * w * ch)(x)).reshape(-1, h, w, ch)


class D(nn.Module):
    @nn.compact
    def __call__(self, x, c):
        x = jnp.concatenate([x.reshape(x.shape[0], -1), c], -1)
        return nn.Dense(1)(nn.leaky_relu(nn.Dense(32)(x), 0.2))[:, 0]


class ToyRecipe(GANRecipe):
    def __init__(self, spec, z_dim=8, lr=2e-3, r1_gamma=1.0, r1_interval=4, blowup_at=-1):
        self.z_dim, self.c_dim = z_dim, spec.c_dim
        self.g, self.d = G((spec.resolution, spec.resolution, spec.channels)), D()
        self.lr, self.gamma, self.interval = lr, r1_gamma, r1_interval
        self.blowup_at = blowup_at   # >= 0: G's loss is NaN from this nimg on (tests the guard)
        self.phases = (Phase("Gmain", "G", self.g_loss), Phase("Dmain", "D", self.d_loss),
                       Phase("Dreg", "D", self.r1_loss, interval=r1_interval))

    def init(self, key, batch):
        kg, kd = jax.random.split(key)
        n = batch["image"].shape[0]
        z = jnp.zeros((n, self.z_dim))
        return {"G": self.g.init(kg, z, batch["label"]), "D": self.d.init(kd, batch["image"], batch["label"])}

    def optimizers(self):
        return {"G": optax.adam(self.lr, 0.5), "D": optax.adam(self.lr, 0.5)}

    def generate(self, g_variables, z, c, key):
        return self.g.apply(g_variables, z, c)

    def _fake(self, params, batch, key):
        z = jax.random.normal(key, (batch["image"].shape[0], self.z_dim))
        return self.g.apply({"params": params["G"]}, z, batch["label"])

    def g_loss(self, params, colls, aux, batch, key):
        logits = self.d.apply({"params": params["D"]}, self._fake(params, batch, key), batch["label"])
        loss = losses.nonsaturating_g(logits).mean()
        if self.blowup_at >= 0:
            loss = loss * jnp.where(aux["nimg_proxy"] >= self.blowup_at, jnp.nan, 1.0)
        return loss, ({"fake_score": logits.mean()}, colls, aux)

    def d_loss(self, params, colls, aux, batch, key):
        fake = jax.lax.stop_gradient(self._fake(params, batch, key))
        real_logits = self.d.apply({"params": params["D"]}, batch["image"], batch["label"])
        fake_logits = self.d.apply({"params": params["D"]}, fake, batch["label"])
        aux = {**aux, "nimg_proxy": aux["nimg_proxy"] + batch["image"].shape[0]}
        return losses.logistic_d(real_logits, fake_logits).mean(), ({"real_score": real_logits.mean()}, colls, aux)

    def r1_loss(self, params, colls, aux, batch, key):
        d_fn = lambda x: self.d.apply({"params": params["D"]}, x, batch["label"])
        pen = losses.r1_penalty(d_fn, batch["image"]).mean()
        return pen * (self.gamma / 2) * self.interval, ({"r1": pen}, colls, aux)

    def init_aux(self):
        return {"nimg_proxy": jnp.zeros((), jnp.int32)}


def get_config(variant="default"):
    c = base_config()
    c.total_kimg = 2.0
    c.batch_size = 32
    c.snapshot_kimg = 0.64
    c.log_every = 10
    c.grid_rows, c.grid_cols = 4, 4
    c.ema_kimg = 0.5
    c.ema_rampup = 0.05
    c.model = ml_collections.ConfigDict(dict(z_dim=8, lr=2e-3, r1_gamma=1.0, r1_interval=4, blowup_at=-1))
    return c


def build(config, spec):
    return ToyRecipe(spec, **config.model)


if __name__ == "__main__":
    from gigajax.train.cli import main
    main(get_config, build, VARIANTS, doc=__doc__)
