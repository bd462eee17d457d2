# Issue 19: one job per study of DDIM as a map and of DDGAN's true denoising distribution
# (trilemma deck-study; src/trilemma/dag_deck.py). Table and figure are committed; the report embeds them.


rule deck:
    input:
        job_inputs(paths.fmt(paths.TABLE, profile="{profile}", table="deck_{study}")),
    output:
        paths.fmt(paths.TABLE, profile="{profile}", table="deck_{study}"),
        paths.fmt(paths.FIGURE, profile="{profile}", figure="deck_{study}"),
    params:
        cfg=job_params(paths.fmt(paths.TABLE, profile="{profile}", table="deck_{study}")),
        cmd=job_shell(paths.fmt(paths.TABLE, profile="{profile}", table="deck_{study}")),
    wildcard_constraints:
        study="inversion|consistency|interpolation|denoising",
    threads: 1
    resources:
        **rule_resources("deck"),
    log:
        "results/{profile}/logs/deck/{study}.log",
    shell:
        "OMP_NUM_THREADS={threads} {params.cmd} 2>&1 | tee {log}"
