"""StyleGAN-XL's generator (Sauer et al. 2022, "StyleGAN-XL: Scaling StyleGAN to Large Diverse
Datasets"), with the architecture, argument names and numerics of autonomousvision/stylegan-xl's
`training/networks_stylegan3_resetting.py` (MappingNetwork, Generator, SuperresGenerator).

The synthesis network is StyleGAN3's (`gigajax.models.stylegan3`: SynthesisInput, SynthesisLayer
and the layer schedule are reused unchanged). What StyleGAN-XL changes:
- Mapping (`mapping.py`): labels index a pretrained class-embedding table (`nn.Embedding(1000,
  320)`), projected to z_dim by `embed_proj`; the first layer takes 2 * z_dim features; w_avg is
  kept per class and truncation pulls each sample towards its own class's centre.
- Progressive growing (`design.py`, `SuperresGenerator`): a trained stem loses its critically
  sampled tail and gains `head_layers + 1` layers that continue its filter progression to
  `up_factor` times its resolution. Stages chain (16 -> 32 -> 64 -> ...), each on the previous one.

What the official training does with these networks (train.py, training/training_loop.py,
training/loss.py at 4241ff9), which a trainer must reproduce:
- Frozen in a superres stage (`--superres`, `train_head_only=True`): the whole mapping network
  (class table, embed_proj, fc*) and every synthesis layer that is not one of this stage's
  `head_layer_names`. NOT frozen: the synthesis `input` layer (its affine and mixing weight), because
  the official freeze loop walks `synthesis.layer_names`, which does not list it. `trainable_mask`
  returns exactly this. Frozen parameters get no gradient, so official Adam does not touch them.
- In the stem stage everything trains, including the class-embedding table (it is a parameter of
  the mapping network; only the rows of the dataset's classes receive gradients).
- A superres stage starts from the stem pickle's **G_ema** for both G and G_ema (`reinit_stem`
  also runs on every (re)start: the mapping network including w_avg, and the kept stem layers, are
  reloaded from the stem pickle, so a resumed stage picks up an improved stem; the input layer and
  the heads keep their trained values). `superres_variables` builds these initial variables.
- Buffers: `w_avg` is tracked (`update_emas=True` for the mapping in the D phase) in every stage,
  also while the mapping network is frozen. `magnitude_ema` is never tracked: the loss calls the
  synthesis network with `update_emas=False` ("enabling emas leads to collapse with PG"), so every
  layer's input gain stays 1 / sqrt(1) = 1 in StyleGAN-XL training; `magnitude_ema_beta` is set in
  train.py but has no effect. G_ema copies G's buffers after every step.
- Class embeddings: `mapping_kwargs.rand_embedding=False` in train.py, i.e. the table
  `in_embeddings/tf_efficientnet_lite0.pkl` from the official repository (a dill pickle of
  `{'embed': nn.Embedding(1000, 320)}`, ImageNet classes; the paper describes the rows as
  EfficientNet-lite0 features averaged per class; the repository holds no script that makes it).
  A dataset with c_dim <= 1000 classes simply uses rows 0..c_dim-1 (class k of CIFAR-10 starts
  from ImageNet class k's embedding). `init_variables(model, key, class_embeddings)` puts it in.

Differences of form, not of function, are StyleGAN3's (NHWC, HWIO, 'buffers' collection, filters
designed rather than stored; `gigajax.compat.stylegan_xl_convert` converts official state_dicts
both ways and `gigajax.compat.stylegan2_pkl.load_network` reads official pickles).
"""

from gigajax.models.stylegan_xl.design import SuperresPlan, kept_layers, superres_plan, superres_stage
from gigajax.models.stylegan_xl.generator import (Generator, SuperresGenerator, SuperresSynthesis, init_variables,
                                                  superres_variables, trainable_mask, with_class_embeddings)
from gigajax.models.stylegan_xl.mapping import ClassEmbedding, MappingNetwork

__all__ = ["ClassEmbedding", "Generator", "MappingNetwork", "SuperresGenerator", "SuperresPlan", "SuperresSynthesis",
           "init_variables", "kept_layers", "superres_plan", "superres_stage", "superres_variables", "trainable_mask",
           "with_class_embeddings"]
