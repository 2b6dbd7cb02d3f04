"""Tools for trained generators, as NVlabs' StyleGAN2/3 scripts offer them (gen_images.py,
style_mixing.py, gen_video.py, projector.py), for gigajax training runs and NVlabs pickles:

    python -m gigajax.tools generate        --network RUN_OR_PKL --seeds 0-7 --trunc 0.7 --outdir out
    python -m gigajax.tools truncation-grid --network ... --seeds 0-5 --psis 1,0.7,0.5,0 --outdir out
    python -m gigajax.tools style-mixing    --network ... --rows 85,100,75 --cols 55,821 --outdir out
    python -m gigajax.tools interpolate     --network ... --seeds 0-3 --frames 30 --outdir out
    python -m gigajax.tools project         --network ... --target face.png --outdir out

Modules: `network` (load_generator), `sampler` (seeds, labels, jitted map/synthesize), `grids`
(truncation and style-mixing grids), `interpolate` (latent walks -> GIF), `projector` (image ->
W). Seeds are NVlabs' (np.random.RandomState(seed).randn(z_dim)), so they pick the same latents.
"""

from gigajax.tools.grids import style_mixing_grid, truncation_grid
from gigajax.tools.interpolate import interpolation_gif, interpolation_ws, render_frames, save_gif
from gigajax.tools.network import load_generator
from gigajax.tools.projector import Projection, project, save_projection
from gigajax.tools.sampler import Sampler, parse_range, seed_z

__all__ = ["Projection", "Sampler", "interpolation_gif", "interpolation_ws", "load_generator", "parse_range",
           "project", "render_frames", "save_gif", "save_projection", "seed_z", "style_mixing_grid",
           "truncation_grid"]
