"""Image metrics through torch-fidelity: sanity in a classifier's feature space (a set against itself,
against a shifted copy), and the Inception path with a generated weights file of the right
architecture (random values: it loads and runs; no FID from it means anything)."""
import pytest
import torch

from trilemma.artifacts import ArtifactError, save_model
from trilemma.evaluation import images as ev_images
from trilemma.models.classifier import build_classifier
from trilemma.schema.models import Evaluation, ImageEvaluation

EVI = ImageEvaluation.model_validate({"extractor": "feature_net", "reference": "train", "batch_size": 64,
                                     "isc_splits": 2, "kid_subsets": 5, "kid_subset_size": 50})
EV = Evaluation.model_validate({"hq_num_std": 3.0, "mode_min_share": 0.1, "prc_neighborhood": 3,
                                "max_prc_samples": 1000, "bootstrap": 2})


@pytest.fixture(scope="module")
def feature_net_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("feature_net")
    model = {"channels": [8, 16], "features": 16, "dropout": 0.0}
    torch.manual_seed(0)
    net = build_classifier(model, 1, 10)
    save_model(d / "model.safetensors", net.state_dict(),
               {"name": "feature_net", "method": "classifier", "model": model, "data_dim": [1, 12, 12],
                "num_classes": 10})
    return d


def _metrics(spec, gen, real):
    device = torch.device("cpu")
    ref = ev_images.reference_tensors(ev_images.extract(spec, real, 64, device), spec, 1000, seed=0)
    return ev_images.image_metrics(ev_images.extract(spec, gen, 64, device), ref, spec, EV, EVI, seed=0)


def test_fid_of_a_set_against_itself_is_zero_and_a_shift_is_larger(feature_net_dir):
    g = torch.Generator().manual_seed(0)
    real = (torch.rand(200, 1, 12, 12, generator=g) * 200).to(torch.uint8)
    spec = ev_images.extractor_spec(EVI, feature_net_dir)
    assert spec["feature_space"].startswith("feature_net") and len(spec["key"]) == 64
    same = _metrics(spec, real, real)
    assert abs(same["fd"]) < 1e-6 and same["precision"] == 1.0 and same["recall"] == 1.0
    shifted = [_metrics(spec, (real.int() + s).clamp(0, 255).to(torch.uint8), real) for s in (10, 40)]
    assert 0 < shifted[0]["fd"] < shifted[1]["fd"]
    assert abs(same["kid"]) < shifted[1]["kid"]


def test_dataset_wrapper_gives_torch_fidelity_uint8_rgb():
    ds = ev_images.UInt8Images(torch.arange(2 * 4 * 4, dtype=torch.uint8).reshape(2, 1, 4, 4))
    item = ds[1]
    assert item.dtype == torch.uint8 and item.shape == (3, 4, 4) and torch.equal(item[0], item[2])
    with pytest.raises(ValueError):
        ev_images.UInt8Images(torch.zeros(2, 3, 4, 4))


@pytest.fixture(scope="module")
def random_inception(tmp_path_factory):
    """A weights file with Inception-v3-compat's architecture and random values (made without a download)."""
    import torch_fidelity.feature_extractor_inceptionv3 as inc

    mp = pytest.MonkeyPatch()
    mp.setattr(inc, "load_state_dict_from_url", lambda *a, **k: None)
    mp.setattr(inc.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None)
    torch.manual_seed(0)
    net = inc.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    mp.undo()
    path = tmp_path_factory.mktemp("inception") / "weights-random.pth"
    torch.save(net.state_dict(), path)
    return path


def test_inception_weights_are_checked_then_load_and_run(random_inception):
    sha = ev_images.sha256sum(random_inception)
    cfg = {**EVI.plain(), "extractor": "inception", "inception": {"weights": str(random_inception), "sha256": sha}}
    spec = ev_images.extractor_spec(ImageEvaluation.model_validate(cfg))
    x = (torch.rand(3, 3, 32, 32) * 255).to(torch.uint8)
    feats = ev_images.extract(spec, x, 3, torch.device("cpu"))
    assert feats["2048"].shape == (3, 2048) and feats["logits_unbiased"].shape == (3, 1008)
    with pytest.raises(ArtifactError, match=f"sha256 {sha} != configured 0000"):
        ev_images.extractor_spec(ImageEvaluation.model_validate(
            {**cfg, "inception": {"weights": str(random_inception), "sha256": "0" * 64}}))
    with pytest.raises(ArtifactError, match="Inception weights not found at .*nothing is downloaded"):
        ev_images.extractor_spec(ImageEvaluation.model_validate(
            {**cfg, "inception": {"weights": "/nonexistent/w.pth", "sha256": sha}}))
