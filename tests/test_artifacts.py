"""Artifacts are data: round trips, and clear errors on truncated or foreign files (no unpickling)."""
import pickle

import pytest
import torch

from conftest import REPO, run_cmd
from trilemma.artifacts import ArtifactError, load_model, load_state, load_tensors, save_model, save_state, save_tensors
from trilemma.models.registry import build_model

MODEL_JSON = {"name": "m", "method": "ddpm", "model": {"kind": "mlp", "hidden": 8, "depth": 1, "emb_dim": 4},
              "schedule": {"name": "linear", "beta_start": 1e-4, "beta_end": 0.02, "num_steps": 10},
              "parameterization": "eps", "data_dim": 2}


def make_model(tmp_path):
    net = build_model(MODEL_JSON["model"], 2)
    save_model(tmp_path / "model.safetensors", net.state_dict(), MODEL_JSON)
    return net


def test_model_round_trip(tmp_path):
    net = make_model(tmp_path)
    den, info = load_model(tmp_path)
    assert info == MODEL_JSON
    for (k, a), (k2, b) in zip(net.state_dict().items(), den.net.state_dict().items()):
        assert k == k2 and torch.equal(a, b)


def test_tensors_round_trip_with_meta(tmp_path):
    save_tensors(tmp_path / "x.safetensors", {"a": torch.arange(6).reshape(2, 3)}, {"kind": "bank", "nfe": 4})
    t, meta = load_tensors(tmp_path / "x.safetensors")
    assert torch.equal(t["a"], torch.arange(6).reshape(2, 3)) and meta == {"kind": "bank", "nfe": 4}


def test_truncated_file_names_the_file(tmp_path):
    make_model(tmp_path)
    f = tmp_path / "model.safetensors"
    f.write_bytes(f.read_bytes()[:50])
    with pytest.raises(ArtifactError, match="model.safetensors.*truncated, damaged or foreign"):
        load_model(tmp_path)


def test_flipped_tensor_byte_is_detected_and_names_the_rebuild(tmp_path):
    """Safetensors has no checksum: a flipped byte in a tensor loaded as a wrong value before the digest."""
    f = tmp_path / "results/ci/samples/m/s.safetensors"
    save_tensors(f, {"x": torch.zeros(100)}, {"kind": "bank"})
    data = bytearray(f.read_bytes())
    data[-7] ^= 0x40   # inside x's bytes
    f.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"s.safetensors: damaged .*snakemake --cores all --config profile=ci "
                                            r"--forcerun results/ci/samples/m/s.safetensors"):
        load_tensors(f)


def test_a_file_without_digest_is_refused(tmp_path):
    from safetensors.torch import save_file
    save_file({"x": torch.zeros(3)}, str(tmp_path / "old.safetensors"), metadata={"trilemma": "{}"})
    with pytest.raises(ArtifactError, match="old.safetensors: no content digest"):
        load_tensors(tmp_path / "old.safetensors")


def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path):
    stale = tmp_path / ".x.safetensors.abc123.tmp"
    stale.write_bytes(b"half")
    save_tensors(tmp_path / "x.safetensors", {"a": torch.ones(2)})
    assert not stale.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["x.safetensors"]


class Boom:
    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('x')",))


def test_foreign_pickle_is_refused_without_running_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_model(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(pickle.dumps(Boom()))
    with pytest.raises(ArtifactError, match="model.safetensors"):
        load_model(tmp_path)
    torch.save({"x": Boom()}, tmp_path / "state.pt")
    with pytest.raises(ArtifactError, match="state.pt"):
        load_state(tmp_path / "state.pt")
    assert not (tmp_path / "PWNED").exists()


def test_resume_state_round_trip(tmp_path):
    state = {"step": 3, "rng": torch.Generator().manual_seed(1).get_state(), "w": {"a": torch.ones(2)}}
    save_state(tmp_path / "s.pt", state)
    back = load_state(tmp_path / "s.pt")
    assert back["step"] == 3 and torch.equal(back["rng"], state["rng"])


def test_cli_truncated_checkpoint_is_a_clear_error(tmp_path):
    make_model(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 10)
    proc = run_cmd(["trilemma", "sample", "--model-dir", str(tmp_path), "--spec", "ddim-eta0-uniform-s10",
                    "--out", str(tmp_path / "bank.safetensors")], cwd=REPO, check=False)
    assert proc.returncode == 2
    assert "model.safetensors" in proc.stderr and "Traceback" not in proc.stderr
