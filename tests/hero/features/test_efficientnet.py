"""The EfficientNet-Lite0 weights load strictly into our module and classify rendered images as ImageNet would."""

import numpy as np
import pytest
import torch

from hero.features.efficientnet import EfficientNetLite0, default_weights_path, fuse_batchnorm, load_efficientnet_lite0, preprocess

S = 224
# ImageNet class indices
CROSSWORD, MAZE, TENNIS_BALL, TRAFFIC_LIGHT = 918, 646, 852, 920


def crossword():
    rng = np.random.default_rng(0)
    img = np.full((S, S, 3), 255, np.uint8)
    n, c = 15, S // 15
    for i in range(n):
        for j in range(n):
            if rng.random() < 0.2:
                img[i * c:(i + 1) * c, j * c:(j + 1) * c] = 0
    for k in range(n + 1):
        img[min(k * c, S - 1), :] = 0
        img[:, min(k * c, S - 1)] = 0
    return img


def maze():
    rng = np.random.default_rng(1)
    n, c = 12, S // 12
    img = np.full((S, S, 3), 255, np.uint8)
    for i in range(n):
        for j in range(n):
            if rng.random() < 0.5:
                img[i * c:(i + 1) * c, j * c:j * c + 3] = 0
            else:
                img[i * c:i * c + 3, j * c:(j + 1) * c] = 0
    return img


def tennis_ball():
    yy, xx = np.mgrid[:S, :S]
    img = np.full((S, S, 3), (40, 120, 40), np.uint8)
    img[(yy - 112) ** 2 + (xx - 112) ** 2 < 70 ** 2] = (200, 230, 60)
    return img


def traffic_light():
    img = np.full((S, S, 3), (200, 220, 240), np.uint8)
    img[20:204, 80:144] = (30, 30, 30)
    yy, xx = np.mgrid[:S, :S]
    for k, col in enumerate([(255, 0, 0), (255, 200, 0), (0, 255, 0)]):
        img[(yy - (50 + k * 60)) ** 2 + (xx - 112) ** 2 < 22 ** 2] = col
    return img


@pytest.fixture(scope="module")
def model():
    return load_efficientnet_lite0()


def test_weights_load_strictly_with_296_keys():
    state = torch.load(default_weights_path(), map_location="cpu", weights_only=True)
    assert len(state) == 296
    assert set(state) == set(EfficientNetLite0().state_dict())
    state.pop("_fc.bias")
    with pytest.raises(RuntimeError, match="Missing key"):
        EfficientNetLite0().load_state_dict(state, strict=True)


def test_rendered_images_get_their_imagenet_class(model):
    """Drawn test images: a crossword grid, a maze, a yellow-green ball on grass, a traffic light. A wrong
    preprocessing, padding or BN eps scrambles these (each is top-1 only with everything right)."""
    imgs = np.stack([crossword(), maze(), tennis_ball(), traffic_light()])
    with torch.no_grad():
        probs = model(preprocess(torch.from_numpy(imgs))).softmax(-1)
    top1 = probs.argmax(-1).tolist()
    assert top1 == [CROSSWORD, MAZE, TENNIS_BALL, TRAFFIC_LIGHT]
    assert probs[0, CROSSWORD] > 0.9 and probs[1, MAZE] > 0.5
    # stable under a horizontal flip (ImageNet training used flips)
    with torch.no_grad():
        flipped = model(preprocess(torch.from_numpy(imgs[:, :, ::-1].copy()))).argmax(-1).tolist()
    assert flipped[:2] == [CROSSWORD, MAZE]


def test_any_input_size_and_fused_batchnorm_match(model):
    x = preprocess(torch.from_numpy(np.stack([maze()[:120, :160], crossword()[:120, :160]])))
    fused = fuse_batchnorm(load_efficientnet_lite0())
    with torch.no_grad():
        fmap = model.feature_map(x)
        assert fmap.shape == (2, 1280, 4, 5)  # ceil(120/32), ceil(160/32): TF SAME padding
        torch.testing.assert_close(fused.feature_map(x), fmap, atol=1e-3, rtol=1e-3)
