"""Issue 19: DDIM inversion and interpolation (``sampling/ddim_inversion.py``, ``sampling/interpolation.py``)
against closed forms, DDGAN's true denoising distribution (``deck/denoising.py``) against Monte Carlo and
its two limits, and the studies' place in the DAG (``dag_deck.py``).  The exact denoiser's own checks
(eps*, the posterior's mean against DDPM Eq. 7) are in tests/test_oracle.py; this file adds the whole
posterior against draws, binned by x_t, on DDGAN's chain."""
import copy
import math

import pytest
import torch

from conftest import REPO
from test_oracle import binned_z, toy
from trilemma import config, dag, dag_deck
from trilemma.deck import denoising
from trilemma.diffusion.continuous import CosineLogSNRSchedule, uniform_grid
from trilemma.diffusion.oracle import GaussianMixture, OracleDenoiser
from trilemma.diffusion.schedules import DiscreteSchedule, linear_betas
from trilemma.diffusion.timesteps import ddim_uniform, sampling_grid
from trilemma.evaluation.features2d import FourierFeatures
from trilemma.sampling.ddim_inversion import invert_ddim, reconstruct_ddim
from trilemma.sampling.interpolation import lerp, slerp

DDPM = DiscreteSchedule(linear_betas(1e-4, 0.02, 1000))
DDGAN = {"beta_min": 0.1, "beta_max": 20.0}


def gaussian(mu=(0.5, -1.0), std=0.7) -> GaussianMixture:
    """q(x_0) = N(mu, std^2 I): one component, so the oracle's eps* is the closed form
    sigma_t (x_t - alpha_t mu) / (alpha_t^2 std^2 + sigma_t^2)."""
    return GaussianMixture(torch.tensor([mu], dtype=torch.float64), std, torch.ones(1, dtype=torch.float64),
                           torch.zeros(1, dtype=torch.long))


def test_inversion_of_gaussian_data_follows_the_exact_ode_and_converges_with_steps():
    """For Gaussian data the probability-flow ODE (DDIM Eq. 14) is linear: x_t = alpha_t mu + sqrt(v_t) / s
    (x_0 - mu), v_t = alpha_t^2 s^2 + sigma_t^2.  Inversion with S steps encodes to within the Euler error,
    and encode-decode returns x_0 with an error that falls as S grows."""
    mix = gaussian()
    oracle = OracleDenoiser(mix, DDPM)
    x_0 = mix.sample(400, torch.Generator().manual_seed(0))
    enc, rec = {}, {}
    for S in (10, 50, 250):
        ts = sampling_grid(ddim_uniform(1000, S))
        alpha, sigma = DDPM.alpha_sigma_float(float(ts[0]))     # x_T at the grid's last time, tau_(S-1)
        exact_T = alpha * mix.means[0] + math.sqrt(alpha ** 2 * mix.std ** 2 + sigma ** 2) / mix.std * (x_0 - mix.means[0])
        x_T, back = reconstruct_ddim(oracle, x_0, ts)
        enc[S], rec[S] = float((x_T - exact_T).abs().max()), float(((back - x_0) ** 2).mean())
    assert enc[250] < enc[50] / 3 < enc[10] / 9 and enc[250] < 0.05, enc    # Euler: first order in 1 / S
    assert rec[250] < rec[50] / 3 < rec[10] / 9 and rec[250] < 1e-3, rec


class TimeOnlyEps(torch.nn.Module):
    """A network whose eps is a constant vector c (the zero network, c = 0, is x0_hat = x_t / alpha_t).
    The encoding step s -> t is then the affine map x_t = (alpha_t / alpha_s)(x_s - sigma_s c) + sigma_t c
    and the decoding step t -> s is x_s = (alpha_s / alpha_t)(x_t - sigma_t c) + sigma_s c, its exact inverse
    (a c depending on x or on t breaks this: the encoder evaluates eps at s, the decoder at t).  So
    encode-decode is the identity at every S, not only to Euler accuracy, on a grid ending at clean data."""

    def __init__(self, schedule, c):
        super().__init__()
        self.schedule, self.c = schedule, c

    def forward(self, x_t, t, cond=None):
        alpha, sigma = self.schedule.alpha_sigma_float(float(t))
        eps = self.c.to(x_t.dtype).expand_as(x_t)
        return (x_t - sigma * eps) / alpha, eps


class PointwiseEps(torch.nn.Module):
    """eps = 0.5 tanh(x_t) (1 + t / 1000): nonlinear in x and t, but acting coordinate by coordinate, so a
    sample's shape cannot matter to anything computed from it."""

    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule

    def forward(self, x_t, t, cond=None):
        alpha, sigma = self.schedule.alpha_sigma_float(float(t))
        eps = 0.5 * torch.tanh(x_t) * (1 + float(t) / 1000)
        return (x_t - sigma * eps) / alpha, eps


def test_the_ddim_map_studies_treat_an_image_as_one_sample():
    """Inversion, consistency and interpolation of (N, C, H, W) images equal the same studies of the
    flattened (N, C*H*W) rows: per-sample errors and distances reduce over the whole image, and slerp
    interpolates the flattened latent (the images' shell is |z|^2 / d = 1 over all pixels)."""
    from trilemma.deck import ddim_map
    net = PointwiseEps(DDPM)
    g = torch.Generator().manual_seed(3)
    x_img = torch.randn(6, 3, 4, 4, generator=g, dtype=torch.float64)
    flat = x_img.flatten(1)
    a, b = ddim_map.inversion(net, x_img, 7), ddim_map.inversion(net, flat, 7)
    assert a.keys() == b.keys() and all(a[k] == pytest.approx(b[k], rel=1e-12, nan_ok=True) for k in a), (a, b)
    ta, da = ddim_map.consistency(net, x_img, [5, 20], None)
    tb, db = ddim_map.consistency(net, flat, [5, 20], None)
    assert ta.drop(columns="spacing").equals(tb.drop(columns="spacing")) and torch.equal(da[5].flatten(1), db[5])
    assert float(ta["rms_mean"].iloc[0]) == pytest.approx(float(ta["mean"].iloc[0]) / 48 ** 0.5)
    z0, z1 = torch.randn(2, 2, 3, 4, 4, generator=g, dtype=torch.float64)
    pa, pb = ddim_map.interpolation(net, z0, z1, 5, 6), ddim_map.interpolation(net, z0.flatten(1), z1.flatten(1), 5, 6)
    for kind in ("slerp", "linear"):
        assert torch.equal(pa[kind][0], pb[kind][0])
        assert pa[kind][1].shape == (5, 2, 3, 4, 4) and torch.equal(pa[kind][1].flatten(2), pb[kind][1])
    assert ddim_map.norm_profile(pa).equals(ddim_map.norm_profile(pb))


@pytest.mark.parametrize("schedule,grid", [(DDPM, lambda S: sampling_grid(ddim_uniform(1000, S))),
                                           (CosineLogSNRSchedule(), uniform_grid)])
@pytest.mark.parametrize("c", [(0.0, 0.0), (0.3, -1.2)])
def test_inversion_is_exact_when_eps_does_not_depend_on_x(schedule, grid, c):
    net = TimeOnlyEps(schedule, torch.tensor(c, dtype=torch.float64))
    x_0 = torch.randn(50, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    a_0, s_0 = schedule.alpha_sigma_float(float(grid(1)[-1]))   # the grid's clean end: t = -1 (exact) or t = 0
    for S in (1, 7, 100):                                         # (logSNR 20: sigma_0 = 4.5e-5, x0_hat != x_0)
        x_T, back = reconstruct_ddim(net, x_0, grid(S))
        assert torch.allclose(back, (x_0 - s_0 * net.c) / a_0, atol=1e-9), (S, float((back - x_0).abs().max()))
    alpha, sigma = schedule.alpha_sigma_float(float(grid(7)[0]))
    assert torch.allclose(invert_ddim(net, x_0, grid(7)), alpha * x_0 + sigma * net.c, atol=1e-9)


def test_slerp_stays_on_the_shell_and_hits_its_endpoints():
    g = torch.Generator().manual_seed(2)
    a = torch.linspace(0, 1, 11, dtype=torch.float64)
    for d in (2, 784):
        z0, z1 = torch.randn(2, 64, d, generator=g, dtype=torch.float64)
        path = slerp(z0, z1, a)
        assert torch.allclose(path[0], z0, atol=1e-10) and torch.allclose(path[-1], z1, atol=1e-10)
        lo = torch.minimum(z0.norm(dim=-1), z1.norm(dim=-1)) - 1e-9
        hi = torch.maximum(z0.norm(dim=-1), z1.norm(dim=-1)) + 1e-9
        assert ((path.norm(dim=-1) >= lo) & (path.norm(dim=-1) <= hi)).all()
        # equal norms: White's formula, norm constant
        u1 = z1 / z1.norm(dim=-1, keepdim=True) * z0.norm(dim=-1, keepdim=True)
        theta = torch.arccos((z0 * u1).sum(-1, keepdim=True) / (z0.norm(dim=-1, keepdim=True) ** 2))
        white = (torch.sin((1 - a[:, None, None]) * theta) * z0 + torch.sin(a[:, None, None] * theta) * u1) / torch.sin(theta)
        assert torch.allclose(slerp(z0, u1, a), white, atol=1e-8)
        mid = lerp(z0, z1, torch.tensor([0.5], dtype=torch.float64))[0]
        if d == 784:   # the linear midpoint falls off the shell: E|z|^2/d = 1/2
            assert abs(float((mid ** 2).mean()) - 0.5) < 0.02 and abs(float((path[5] ** 2).mean()) - 1.0) < 0.02
    z0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)   # nearly antipodal, unequal norms: still bounded
    z1 = torch.tensor([[-3.0, 1e-5]], dtype=torch.float64)
    assert float(slerp(z0, z1, a).norm(dim=-1).max()) <= 3.0 + 1e-9


@pytest.mark.parametrize("T,i", [(4, 0), (4, 2), (2, 1)])
def test_denoising_posterior_matches_forward_draws_binned_by_x_t(T, i):
    """x_0 ~ q, x_(i-1) ~ q(x_(i-1) | x_0), x_i = sqrt(1 - beta_i) x_(i-1) + sqrt(beta_i) noise (DDGAN's pairs):
    in every cell of x_i the draws' mean and second moment match the closed-form mixture's."""
    oracle = denoising.exact_chain(toy(), denoising.ddgan_schedule_config(DDGAN, T))
    sched, g, n = oracle.schedule, torch.Generator().manual_seed(10 * T + i), 200_000
    x_0 = oracle.mixture.sample(n, g)
    a_s, s_s = sched.alpha_sigma_float(float(i - 1))
    x_s = a_s * x_0 + s_s * torch.randn(x_0.shape, generator=g, dtype=torch.float64)
    beta = float(sched.betas[i])
    x_t = math.sqrt(1 - beta) * x_s + math.sqrt(beta) * torch.randn(x_0.shape, generator=g, dtype=torch.float64)
    w, m, c = oracle.posterior(x_t, float(i), float(i - 1))
    mean = (w[:, :, None] * m).sum(1)
    second = (w[:, :, None] * (m ** 2 + c)).sum(1)
    z1 = binned_z(x_t, x_s - mean)
    z2 = binned_z(x_t, x_s ** 2 - second)
    assert z1.numel() >= 20 and z1.abs().max() < 5.0 and z2.abs().max() < 5.0, (z1.abs().max(), z2.abs().max())


def test_true_conditional_is_the_data_at_T1_and_nearly_gaussian_at_T1000():
    mix = toy()
    one = denoising.exact_chain(mix, denoising.ddgan_schedule_config(DDGAN, 1))
    x_1 = denoising.step_points(one, 8, torch.Generator().manual_seed(3))[1]
    w, m, c = one.posterior(x_1, 0.0, -1.0)          # T = 1: q(x_0 | x_1) is the data mixture
    assert (w - 1 / 25).abs().max() < 0.1 / 25 and (m - mix.means).abs().max() < 0.02 and abs(c / mix.std ** 2 - 1) < 1e-3
    phi = FourierFeatures(seed=0, width=64, lengthscale=0.1)
    far = denoising.summary(denoising.distances(one, [], phi, 4, 800, seed=0)).iloc[0]
    many = denoising.exact_chain(mix, denoising.ddgan_schedule_config(DDGAN, 1000))
    near = denoising.summary(denoising.distances(many, [], phi, 16, 800, seed=0)).iloc[0]
    assert far["gaussian"] > 5 * far["floor"]                 # one step: the Gaussian misses the modes
    assert near["gaussian"] < near["floor"] + 3 * near["floor_ci"] + 1e-3   # 1000 steps: as good as a redraw
    idx, x_t = denoising.step_points(many, 64, torch.Generator().manual_seed(4))
    for j in range(0, 64, 8):                                  # between-component spread << the shared variance
        mean, cov = denoising.best_gaussian(many, x_t[j], int(idx[j]))
        _, _, c = many.posterior(x_t[j:j + 1], float(idx[j]), float(idx[j] - 1))
        assert float(torch.trace(cov)) / (2 * c) - 1 < 0.1


# ----------------------------------------------------------------------------- the DAG
def _jobs(cfg):
    return {j.name: j for j in dag.jobs(cfg)}


def test_study_jobs_read_their_own_keys_so_a_step_list_reruns_only_its_job():
    cfg = config.load(root=REPO)
    changed = copy.deepcopy(cfg)
    changed["deck"]["inversion"]["steps"] = [10, 100]
    before, after = _jobs(cfg), _jobs(changed)
    assert before.keys() == after.keys()
    differ = [n for n in before if before[n].param_values(cfg) != after[n].param_values(changed)
              or before[n].argv != after[n].argv or before[n].deps != after[n].deps]
    assert differ == ["deck-inversion"]
    report = before["report"]
    for study in dag_deck.STUDIES:      # the report embeds each table and figure, so it follows them
        assert before[f"deck-{study}"].committed == dag_deck.outputs(cfg, study)
        assert set(dag_deck.outputs(cfg, study)) <= set(report.deps)
    inv, den = before["deck-inversion"].deps, before["deck-denoising"].deps
    assert "results/toy/models/pd_s4/model.safetensors" in inv and "src/trilemma/sampling/ddim_inversion.py" in inv
    assert "results/toy/models/ddgan_t4_seed0/model.safetensors" in den and "src/trilemma/sampling/ddim.py" not in den
    assert "results/toy/models/ddgan_t1000_seed0/model.safetensors" not in den


@pytest.mark.parametrize("profile", ["ci_images", "fashion", "cifar10"])
def test_image_profiles_run_the_ddim_map_studies_on_their_unet(profile):
    """DDIM's map (inversion, consistency, interpolation) on every image profile; the exact denoising study
    needs a closed-form density, so none there.  The jobs depend on the U-Net and the image scaling."""
    cfg = config.load(profile, root=REPO)
    jobs = {n: j for n, j in _jobs(cfg).items() if n.startswith("deck-")}
    assert sorted(jobs) == ["deck-consistency", "deck-interpolation", "deck-inversion"]
    for job in jobs.values():
        assert {"src/trilemma/models/unet.py", "src/trilemma/data/images.py"} <= set(job.deps)
    students = [d for d in jobs["deck-inversion"].deps if "/models/pd_s" in d and d.endswith(".safetensors")]
    assert len(students) == len(dag_deck.inversion_students(cfg)) > 0


def test_studies_are_off_when_disabled():
    cfg = config.load(root=REPO)
    cfg["deck"]["enabled"] = False
    assert not [n for n in _jobs(cfg) if n.startswith("deck-")] and dag_deck.report_section(cfg, None, None) == []
    cfg = config.load(root=REPO)
    cfg["data"]["name"] = "swissroll"          # no closed form: no denoising study
    assert dag_deck.studies(cfg) == ["inversion", "consistency", "interpolation"]


def test_the_ddpm_step_of_the_exact_denoiser_has_the_true_conditionals_mean():
    """(c) of the denoising study: the DDPM step is q(x_(i-1) | x_t, x_0 = x̂_0), linear in x_0, so with the
    exact x̂_0 = E[x_0 | x_t] its mean is the true conditional's mean E[x_(i-1) | x_t] (the best Gaussian's),
    exactly at the last step (no noise) and within Monte Carlo error before it; its variance is the
    posterior's c alone, below the true conditional's.  The teacher's time with the chain's noise level is
    the chain's own index when the two schedules are the same."""
    from trilemma.sampling.ddgan import ChainTable
    mix = toy()
    chain = denoising.exact_chain(mix, denoising.ddgan_schedule_config(DDGAN, 4))
    table = ChainTable(chain.schedule)
    g = torch.Generator().manual_seed(5)
    for i in range(4):
        assert denoising.teacher_time(chain.schedule, chain.schedule, i) == pytest.approx(i, abs=1e-9)
        x_t = denoising.step_points_at(chain, i, 1, g)[0]
        mean, cov = denoising.best_gaussian(chain, x_t, i)
        draws = denoising.ddpm_conditional(chain, table, float(i), x_t, i, 4000, g)
        _, _, c = chain.posterior(x_t.reshape(1, -1), float(i), float(i - 1))
        if i == 0:
            assert torch.allclose(draws, mean.expand_as(draws).double(), atol=1e-5)
        else:
            se = (c ** 0.5) / 4000 ** 0.5
            assert (draws.mean(0) - mean).abs().max() < 4 * se, (i, draws.mean(0), mean)
            assert draws.var(0).mean() == pytest.approx(c, rel=0.1) and float(torch.trace(cov)) / 2 >= c
