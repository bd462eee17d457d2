"""trilemma: a reproducible pipeline of the fast-sampling diffusion papers.

DDPM (Ho et al. 2020), DDIM (Song et al. 2021), the probability-flow ODE (Song et al. 2021),
progressive distillation (Salimans & Ho 2022), guidance and its distillation, and the Denoising
Diffusion GAN (Xiao et al. 2022), on one teacher, one metric code and one clock.
"""

__version__ = "0.1.0"
