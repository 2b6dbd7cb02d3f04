"""Image grids of the StyleGAN papers: the truncation trick and style mixing.

Both return float32 images in [-1, 1] in row-major grid order, ready for
`gigajax.train.grid.save_grid(images, rows, cols, path)` (1 px black gutters).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from gigajax.tools.sampler import Sampler, parse_range

DEFAULT_PSIS = (1.0, 0.7, 0.5, 0.0)
DEFAULT_COL_STYLES = "0-6"


def truncation_grid(sampler: Sampler, seeds: Sequence[int], psis: Sequence[float] = DEFAULT_PSIS, *,
                    class_idx: int | None = None, truncation_cutoff: int | None = None,
                    noise_mode: str = "const") -> np.ndarray:
    """float32 [len(seeds) * len(psis), H, W, C]: row i is seed i, column j its image at
    truncation psi_j (w_avg + psi (w - w_avg), on the first `truncation_cutoff` ws if given).
    psi = 0 gives every seed the image of w_avg (StyleGAN's truncation figure)."""
    seeds, psis = list(seeds), [float(p) for p in psis]
    if not seeds or not psis:
        raise ValueError(f"truncation_grid needs at least one seed and one psi; got seeds={seeds}, psis={psis}")
    per_psi = [sampler.seed_ws(seeds, class_idx, psi, truncation_cutoff) for psi in psis]   # [P][S, L, D]
    ws = np.stack(per_psi, axis=1).reshape(len(seeds) * len(psis), sampler.num_ws, sampler.w_dim)
    return sampler.images(ws, noise_mode=noise_mode)


def resolve_styles(col_styles: str | Sequence[int], num_ws: int) -> list[int]:
    """Style (ws) indices from '0-6' or a list, clipped to [0, num_ws): NVlabs' default '0-6'
    (the coarse and middle styles of a 1024 G) then means "up to 32x32" at any resolution."""
    return sorted({s for s in parse_range(col_styles, "col_styles") if s < num_ws})


def mix_styles(row_ws: np.ndarray, col_ws: np.ndarray, styles: Sequence[int]) -> np.ndarray:
    """row_ws [R, L, D], col_ws [C, L, D] -> [R * C, L, D], row-major: cell (r, c) is row_ws[r]
    with the ws at `styles` taken from col_ws[c]."""
    r, c = len(row_ws), len(col_ws)
    mixed = np.repeat(np.asarray(row_ws)[:, None], c, axis=1).copy()          # [R, C, L, D]
    idx = list(styles)
    mixed[:, :, idx] = np.asarray(col_ws)[None][:, :, idx]
    return mixed.reshape(r * c, *row_ws.shape[1:])


def style_mixing_grid(sampler: Sampler, row_seeds: Sequence[int], col_seeds: Sequence[int],
                      col_styles: str | Sequence[int] = DEFAULT_COL_STYLES, *, truncation_psi: float = 1.0,
                      class_idx: int | None = None, noise_mode: str = "const") -> np.ndarray:
    """float32 [(R + 1) * (C + 1), H, W, C] for R row seeds and C column seeds, as NVlabs'
    style_mixing.py lays it out: the top row holds the column sources, the left column the row
    sources, the corner is black, and cell (r, c) is row seed r's ws with the `col_styles`
    indices (clipped to num_ws) taken from column seed c. psi truncates every source first."""
    row_seeds, col_seeds = list(row_seeds), list(col_seeds)
    if not row_seeds or not col_seeds:
        raise ValueError(f"style_mixing_grid needs row and column seeds; got rows={row_seeds}, cols={col_seeds}")
    styles = resolve_styles(col_styles, sampler.num_ws)
    ws = sampler.seed_ws(row_seeds + col_seeds, class_idx, truncation_psi)
    row_ws, col_ws = ws[:len(row_seeds)], ws[len(row_seeds):]
    R, C = len(row_seeds), len(col_seeds)
    images = sampler.images(np.concatenate([row_ws, col_ws, mix_styles(row_ws, col_ws, styles)]),
                            noise_mode=noise_mode)
    row_img, col_img, cells = images[:R], images[R:R + C], images[R + C:].reshape(R, C, *images.shape[1:])
    corner = -np.ones_like(images[:1])
    top = np.concatenate([corner, col_img])                                     # [C + 1, H, W, C]
    body = np.concatenate([row_img[:, None], cells], axis=1)                    # [R, C + 1, H, W, C]
    return np.concatenate([top, body.reshape(R * (C + 1), *images.shape[1:])])
