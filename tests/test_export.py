"""gigajax.train.export (a stage's G_ema handed to the next) and the cached guidance classifier."""

import jax.numpy as jnp
import numpy as np
import pytest

from gigajax.models.classifier import SmallCNN
from gigajax.train.classifier import train_classifier, trained_classifier
from gigajax.train.export import load_variables, save_variables


def test_round_trip_and_errors(tmp_path):
    variables = {"params": {"a": {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, "b": np.float32(2.5)},
                 "buffers": {"w_avg": jnp.ones((4,))}}
    path = save_variables(tmp_path / "sub" / "v.npz", variables, {"kimg": 1.5, "stage": 0})
    got, meta = load_variables(path)
    assert meta == {"kimg": 1.5, "stage": 0}
    np.testing.assert_array_equal(got["params"]["a"]["w"], variables["params"]["a"]["w"])
    assert float(got["params"]["b"]) == 2.5 and got["buffers"]["w_avg"].shape == (4,)
    assert [p.name for p in path.parent.iterdir()] == ["v.npz"]          # no temporary file left behind
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="not a gigajax variables file"):
        load_variables(tmp_path / "other.npz")
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match="unreadable"):
        load_variables(tmp_path / "broken.npz")


def test_classifier_training(tmp_path):
    rng = np.random.RandomState(0)
    labels = rng.randint(0, 3, 120)
    images = np.zeros((120, 8, 8, 1), np.uint8)
    for k in range(3):                     # a trivially separable toy set: the class is a bright row
        images[labels == k, 2 * k + 1, :, 0] = 255
    model, variables, acc = train_classifier(images, labels, 3, epochs=30, batch=16, lr=1e-2)
    assert isinstance(model, SmallCNN) and acc >= 0.9
    logits = model.apply(variables, jnp.zeros((2, 8, 8, 1)))
    assert logits.shape == (2, 3)
    with pytest.raises(ValueError, match=r"\[N, H, W, C\]"):
        model.apply(variables, jnp.zeros((8, 8, 1)))


def test_guidance_classifier_needs_labels(tmp_path):
    path = tmp_path / "unlabelled.npz"
    np.savez(path, images=np.zeros((4, 8, 8, 1), np.uint8))
    with pytest.raises(ValueError, match="no labels"):
        trained_classifier(str(path))
