"""What the papers show that the sample banks do not (issue 19): DDIM's deterministic sampler as a map
(inversion, consistency, interpolation; :mod:`trilemma.deck.ddim_map`) and DDGAN's true denoising
distribution, exact on the toy mixture (:mod:`trilemma.deck.denoising`).  Each study is one cached DAG
job (``trilemma deck-study``; :mod:`trilemma.dag_deck`)."""
