"""Image data sources: CIFAR-10's archive format (checksum first, array-only unpickling), Fashion-MNIST's
IDX files (decompressed-content md5s; Debian's copy when installed), and the messages without a source."""
import gzip
import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import REPO, run_cmd
from trilemma.data import cifar10, fashion_mnist
from trilemma.data.images import DataSourceError, build_dataset, center_crop, to_float, to_uint8
from trilemma.schema.models import Cifar10, Data, FashionMnist, ImageData

DEBIAN = Path("/usr/share/datasets/fashion-mnist")


def _images(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n)


def test_cifar_archive_round_trip_and_checksum(tmp_path):
    train, test = _images(25, 0), _images(7, 1)
    md5 = cifar10.write_archive(tmp_path / "a.tar.gz", train, test)
    assert cifar10.write_archive(tmp_path / "b.tar.gz", train, test) == md5   # deterministic bytes
    out = cifar10.load(tmp_path / "a.tar.gz", md5)
    assert torch.equal(out["train"][0], torch.from_numpy(train[0]))            # batches concatenated in order
    assert out["train"][1].tolist() == train[1].tolist() and out["test"][1].tolist() == test[1].tolist()
    with pytest.raises(DataSourceError, match=r"has md5 .* expected 0{32}.*cifar-10-python.tar.gz"):
        cifar10.load(tmp_path / "a.tar.gz", "0" * 32)
    with pytest.raises(DataSourceError, match=r"missing.tar.gz not found; put the official archive"):
        cifar10.load(tmp_path / "missing.tar.gz")


def test_cifar_batches_cannot_run_code_even_with_the_right_checksum(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    raw = pickle.dumps({b"data": Evil(), b"labels": []}, protocol=2)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in cifar10.TRAIN_BATCHES + [cifar10.TEST_BATCH]:
            info = tarfile.TarInfo(f"{cifar10.FOLDER}/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    path = tmp_path / "evil.tar.gz"
    path.write_bytes(gzip.compress(buf.getvalue()))
    with pytest.raises(DataSourceError, match=r"refers to .*print: not a CIFAR-10 batch"):
        cifar10.load(path, cifar10.md5sum(path))


def _write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + np.array(array.shape, dtype=">i4").tobytes()
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def test_idx_files_parse_and_foreign_content_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (6, 28, 28)), "train-labels-idx1-ubyte": np.arange(6),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (3, 28, 28)), "t10k-labels-idx1-ubyte": np.arange(3)}
    for name, a in arrays.items():
        _write_idx(tmp_path / f"{name}.gz", a)
    out = fashion_mnist.load(tmp_path, verify=False)
    assert out["train"][0].shape == (6, 1, 28, 28) and out["test"][1].tolist() == [0, 1, 2]
    assert torch.equal(out["train"][0][:, 0], torch.from_numpy(arrays["train-images-idx3-ubyte"].astype(np.uint8)))
    with pytest.raises(DataSourceError, match="decompressed md5 .* != f4a8712d7a061bf5bd6d2ca38dc4d50a"):
        fashion_mnist.load(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataSourceError, match="t10k-labels-idx1-ubyte.*not found; install Debian"):
        fashion_mnist.load(tmp_path, verify=False)
    with pytest.raises(DataSourceError, match="bad magic"):
        fashion_mnist.parse_idx(b"\x00\x00\x09\x01" + bytes(8))


@pytest.mark.skipif(not DEBIAN.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_debian_fashion_mnist_files_verify_and_load():
    out = fashion_mnist.load(DEBIAN)
    (xtr, ytr), (xte, yte) = out["train"], out["test"]
    assert xtr.shape == (60000, 1, 28, 28) and xte.shape == (10000, 1, 28, 28) and xtr.dtype == torch.uint8
    assert torch.bincount(ytr).tolist() == [6000] * 10 and torch.bincount(yte).tolist() == [1000] * 10
    assert ytr[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]   # the dataset's documented first labels


def test_scaling_quantisation_and_crop():
    x = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    assert torch.equal(to_uint8(to_float(x)), x)                       # exact round trip
    assert to_float(x).min() == -1 and to_float(x).max() == 1
    assert to_uint8(torch.tensor([-3.0, 3.0, 0.0])).tolist() == [0, 255, 128]
    assert torch.equal(center_crop(x, 8), x[..., 4:12, 4:12])
    train, test = (x.repeat(5, 1, 1, 1), torch.arange(5)), (x.repeat(3, 1, 1, 1), torch.arange(3))
    tensors, meta = build_dataset("fashion_mnist", train, test, Data.model_construct(
        num_train=4, num_eval=9, image=ImageData(crop=8)), {})
    assert tensors["train"].shape == (4, 1, 8, 8) and tensors["eval"].shape == (3, 1, 8, 8)
    assert meta["data_dim"] == [1, 8, 8] and meta["num_classes"] == 10


def test_fetch_data_without_a_source_says_which_file_to_put_where(repo_copy):
    profile = repo_copy / "config/profiles/ci_images.yaml"
    cfg = yaml.safe_load(profile.read_text())
    cfg["data"]["cifar10"]["archive"] = "external/nowhere/cifar-10-python.tar.gz"
    profile.write_text(yaml.safe_dump(cfg))
    proc = run_cmd(["trilemma", "fetch-data", "--profile", "ci_images", "--dataset", "cifar10", "--out", "x.safetensors"],
                   cwd=repo_copy, check=False)
    assert proc.returncode == 2
    assert "external/nowhere/cifar-10-python.tar.gz not found; put the official archive" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_image_profiles_validate_and_plan_their_jobs():
    from conftest import REPO
    from trilemma import config, dag

    def stages(profile):
        counts = {}
        for job in dag.jobs(config.load(profile, root=REPO)):
            counts[job.stage] = counts.get(job.stage, 0) + 1
        return counts

    cifar = stages("cifar10")
    # DDPM teacher's grid + PD students and DDIM on teacher_pd (<= 1024 / 256 steps) + DDGAN's T values
    # + guidance: CFG teacher at the reference steps and the 4-step student for 5 w, then for 3 grid w the
    # teacher at the grid steps, the other grid students and the stochastic sampler
    assert cifar["reference_stats"] == 1 and "feature_net" not in cifar
    # 3: DPM-Solver++ at 5/10/20 NFE; 3: consistency distillation at 1, 2 and 4 steps (issue 18)
    # + 3: the floor (held-out test images) and the two ceilings (shuffled pixels, blur)
    assert cifar["sample"] == 36 + 3 + 9 + 9 + 4 + (5 + 5 + 3 * 3 + 3 * 2 + 3) + 3 + 3
    assert cifar["guided_stage1"] == 1 and cifar["distill"] == 11 + 8 + 1 and cifar["guidance_table"] == 1
    fashion = stages("fashion")
    assert fashion["feature_net"] == 1 and fashion["reference_stats"] == 1
    assert fashion["sample"] == 82 + 3 + 6 + 7 + 1 + (5 + 5 + 3 * 2 + 3 * 1 + 3) + 3 + 3   # CD at 1, 2, 4 steps; floor, ceilings
    assert fashion["guided_stage1"] == 1 and fashion["distill"] == 6 + 4 + 1 and fashion["guidance_table"] == 1
    jobs = {j.name: j for j in dag.jobs(config.load("fashion", root=REPO))}
    ev = jobs["evaluate-teacher_ddpm-ddim-eta0-quadratic-s4"]
    assert "results/fashion/reference/fashion_mnist-feature_net.safetensors" in ev.deps
    assert "results/fashion/feature_net/model.safetensors" in ev.deps
    assert jobs["feature_net"].committed == ("results/fashion/feature_net.json",)


def test_image_settings_must_fit_the_dataset():
    from conftest import REPO
    from trilemma import config

    cfg = config.load("ci_images", root=REPO)
    mlp = {"kind": "mlp", "hidden": 8, "depth": 1, "emb_dim": 8}
    bad = {**cfg, "teacher": {**cfg["teacher"], "model": mlp}}
    with pytest.raises(config.ConfigError, match="does not fit data.name 'cifar10'"):
        config.validate(bad)
    mixed = {**cfg, "teacher": {**cfg["teacher"], "model": {**cfg["teacher"]["model"], "kind": "mlp"}}}
    with pytest.raises(config.ConfigError, match=r"teacher.model: unknown key\(s\) \['unet'\]"):
        config.validate(mixed)   # the model is a discriminated union on kind: an MLP has no `unet`
    no_fn = {k: v for k, v in cfg.items() if k != "feature_net"}
    with pytest.raises(config.ConfigError, match="feature_net: missing"):
        config.validate(no_fn)
    toy = config.load(root=REPO)
    assert "feature_net" not in toy and "images" not in toy["evaluation"]       # optional for the toy
    g = cfg["guidance"]
    with_cg = {**cfg, "guidance": {**g, "eval": {**g["eval"], "classifier_scales": [1.0]}}}
    with pytest.raises(config.ConfigError, match="classifier guidance is not built for image profiles"):
        config.validate(with_cg)
    mlp_cfg = {**cfg, "guidance": {**g, "teacher": {**g["teacher"], "model": toy["guidance"]["teacher"]["model"]}}}
    with pytest.raises(config.ConfigError, match="guidance.teacher.model: image profiles need"):
        config.validate(mlp_cfg)


def test_w_conditioned_unet_student_starts_as_the_cfg_teachers_conditional_model():
    """Guided stage one on images: the U-Net with w_cond, every teacher weight copied, equals the
    teacher's conditional prediction at initialisation for any w (the w embedding ends at zero)."""
    from trilemma.diffusion.denoiser import Denoiser
    from trilemma.diffusion.schedules import schedule_from_config
    from trilemma.models.registry import build_model
    from trilemma.stages.guided_stage1 import w_student

    torch.manual_seed(0)
    model = {"kind": "unet", "num_classes": 10, "unet": {"preset": "tiny", "num_classes": 10}}
    info = {"model": model, "data_dim": [3, 8, 8], "parameterization": "x"}
    sched = schedule_from_config({"name": "cosine_logsnr", "logsnr_min": -20.0, "logsnr_max": 20.0})
    teacher = Denoiser(build_model(model, [3, 8, 8]).eval(), sched, "x")
    for p in teacher.net.parameters():          # move off the zero-initialised output layers
        p.data.add_(0.2 * torch.randn_like(p))
    student, student_model = w_student(teacher, info, w_emb_dim=16)   # the U-Net's w_cond; w_emb_dim is the MLP's
    assert student_model["unet"]["w_cond"] and student_model["num_classes"] == 10
    x, t, y = torch.randn(4, 3, 8, 8), torch.full((4,), 0.5, dtype=torch.float64), torch.arange(4)
    with torch.no_grad():
        want = teacher(x, t, {"y": y})[0]
        got = student.eval()(x, t, {"y": y, "w": torch.tensor([0.0, 1.0, 2.5, 4.0])})[0]
    assert torch.allclose(got, want, atol=1e-5)
    last = student.net.w_emb[-1]
    assert last.weight.abs().sum() == 0 and last.bias.abs().sum() == 0
    with torch.no_grad():                      # and w does reach the output once the embedding is trained
        last.weight.add_(0.2 * torch.randn_like(last.weight))
        moved = student(x, t, {"y": y, "w": torch.tensor([0.0, 1.0, 2.5, 4.0])})[0]
    assert (moved - want).abs().max() > 1e-3


def test_training_batch_scales_and_flips_half_the_images():
    from trilemma.data.images import training_batch

    x = torch.randint(0, 256, (400, 1, 4, 4), dtype=torch.uint8)
    out = training_batch(x, torch.Generator().manual_seed(0), hflip=True)
    same = (out == to_float(x)).flatten(1).all(1)
    mirrored = (out == to_float(x).flip(-1)).flatten(1).all(1)
    assert bool((same | mirrored).all()) and 150 < int(mirrored.sum()) < 250
    assert torch.equal(training_batch(x, torch.Generator(), hflip=False), to_float(x))


@pytest.mark.parametrize("preset", ["tiny", "fashion", "cifar10"])
def test_unet_output_depends_on_time_and_label(preset):
    """The res blocks add the time (+ label) embedding per channel before a GroupNorm; with one
    channel per group the norm would subtract it again and the network could not see t or y (the
    tiny preset's ch 16 did, before ``unet.norm_groups``). DDPM's 32 groups stay for ch >= 128."""
    from trilemma.models.unet import norm_groups
    from trilemma.models.registry import build_model

    assert norm_groups(128) == 32 and norm_groups(256) == 32 and norm_groups(16) == 4
    torch.manual_seed(0)
    arch = {"preset": preset, "num_classes": 10, "ch_mult": [1, 2], "num_res_blocks": 1, "attn_resolutions": []}
    net = build_model({"kind": "unet", "num_classes": 10, "unet": arch}, [3, 8, 8]).eval()
    for p in net.parameters():                 # off the zero-initialised output layers
        p.data.add_(0.1 * torch.randn_like(p))
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        base = net(x, torch.full((2,), 10.0), {"y": torch.tensor([1, 2])})
        other_t = net(x, torch.full((2,), 900.0), {"y": torch.tensor([1, 2])})
        other_y = net(x, torch.full((2,), 10.0), {"y": torch.tensor([5, 6])})
    assert (base - other_t).abs().max() > 1e-3 and (base - other_y).abs().max() > 1e-3


@pytest.fixture
def file_urls(monkeypatch):
    """file:// URLs through torchvision's downloader (no server, no port): it reads the HTTP
    response's ``length``, which urllib's file responses lack."""
    import urllib.response
    monkeypatch.setattr(urllib.response.addinfourl, "length", None, raising=False)


def _fake_fashion(directory, rng):
    """The four IDX files with random content; returns their decompressed md5s (fashion_mnist.FILES's form)."""
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (6, 28, 28)), "train-labels-idx1-ubyte": np.arange(6),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (3, 28, 28)), "t10k-labels-idx1-ubyte": np.arange(3)}
    directory.mkdir(parents=True, exist_ok=True)
    for name, a in arrays.items():
        _write_idx(directory / f"{name}.gz", a)
    return {name: hashlib.md5(gzip.decompress((directory / f"{name}.gz").read_bytes())).hexdigest() for name in arrays}


def _fashion(src: dict):
    return fashion_mnist.load_source(FashionMnist.model_validate(src))


def _cifar10(src: dict):
    return cifar10.load_source(Cifar10.model_validate(src))


def test_fashion_mnist_downloads_what_the_source_dir_lacks(tmp_path, monkeypatch, file_urls):
    """source_dir empty + download: the four .gz files come from the mirror (a file:// URL here) into
    download_dir, with their decompressed md5s verified; without download nothing is fetched; a
    mirror without the files, or with foreign content, fails with the manual instructions."""
    mirror = tmp_path / "mirror"
    monkeypatch.setattr(fashion_mnist, "FILES", _fake_fashion(mirror, np.random.default_rng(1)))
    src = {"source_dir": str(tmp_path / "empty"), "download": True, "download_dir": str(tmp_path / "dl"),
           "mirror": mirror.as_uri()}
    out = _fashion(src)
    assert out["train"][0].shape == (6, 1, 28, 28) and out["test"][1].tolist() == [0, 1, 2]
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == sorted(f"{n}.gz" for n in fashion_mnist.FILES)
    with pytest.raises(DataSourceError, match="not found; install Debian"):
        _fashion({**src, "download": False})
    with pytest.raises(DataSourceError, match=r"could not download file://.*nowhere/train-images-idx3-ubyte.gz"):
        _fashion({**src, "download_dir": str(tmp_path / "dl2"), "mirror": (tmp_path / "nowhere").as_uri()})
    assert not list((tmp_path / "dl2").glob("*.part"))          # nothing half-written is left
    foreign = tmp_path / "foreign"
    _fake_fashion(foreign, np.random.default_rng(2))
    with pytest.raises(DataSourceError, match="decompressed md5"):
        _fashion({**src, "download_dir": str(tmp_path / "dl3"), "mirror": foreign.as_uri()})
    assert list((tmp_path / "dl3").iterdir()) == []            # refused files are not kept for the next run
    (tmp_path / "dl" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b\x08")   # a truncated .gz
    with pytest.raises(DataSourceError, match="t10k-labels-idx1-ubyte.gz: cannot read it"):
        _fashion(src)


def test_cifar10_archive_is_downloaded_when_missing_and_md5_checked(tmp_path, file_urls):
    tiny = REPO / "tests" / "data" / "tiny-cifar-10-python.tar.gz"
    md5 = cifar10.md5sum(tiny)
    src = {"archive": str(tmp_path / "ext" / "cifar-10-python.tar.gz"), "md5": md5, "download": True, "url": tiny.as_uri()}
    out = _cifar10(src)
    assert torch.equal(out["train"][0], cifar10.load(tiny, md5)["train"][0])
    assert cifar10.md5sum(tmp_path / "ext" / "cifar-10-python.tar.gz") == md5
    bad = {**src, "archive": str(tmp_path / "ext2" / "c.tar.gz"), "md5": "0" * 32}
    with pytest.raises(DataSourceError, match=r"could not download file://.*File not found or corrupted"):
        _cifar10(bad)
    assert not (tmp_path / "ext2" / "c.tar.gz").exists() and not list((tmp_path / "ext2").glob("*.part"))
    with pytest.raises(DataSourceError, match="not found; put the official archive"):
        _cifar10({**bad, "download": False})
