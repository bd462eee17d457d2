# Progressive distillation rounds (Salimans & Ho 2022, Algorithm 2): one job per round, each round's
# model the next round's input (dag.round_jobs). One thread each, so a round trains while the
# previous round's banks are sampled and evaluated on the other core. The chain is the critical path
# of the distillation part, so a ready round (and guided distillation's stage one, which heads its chain)
# starts before any waiting sample/evaluate job. The same
# rule runs the stage-two rounds of guided distillation (guided_s<N>, Meng et al. 2023, Algorithm 2),
# after guided_stage1 (Algorithm 1: the w-conditioned student guided_w of the CFG teacher), and consistency
# distillation of the PD teacher (Song et al. 2023, Algorithm 2: the model cd, `trilemma consistency-distill`).
ruleorder: distill > guided_stage1 > train


rule distill:
    input:
        job_inputs(paths.MODEL),
    output:
        paths.MODEL,
        paths.MODEL_CONFIG,
        paths.TRAIN_LOG,
    params:
        cfg=job_params(paths.MODEL),
        cmd=job_shell(paths.MODEL),
    wildcard_constraints:
        model=r"(pd|guided)_s[0-9]+|cd",
    threads: 1
    priority: 10
    resources:
        **rule_resources("distill"),
    log:
        "results/{profile}/logs/distill/{model}.log",
    shell:
        "OMP_NUM_THREADS={threads} {params.cmd} --no-progress 2>&1 | tee {log}"


rule guided_stage1:
    input:
        job_inputs(paths.MODEL),
    output:
        paths.MODEL,
        paths.MODEL_CONFIG,
        paths.TRAIN_LOG,
    params:
        cfg=job_params(paths.MODEL),
        cmd=job_shell(paths.MODEL),
    wildcard_constraints:
        model=dag.GUIDED_STUDENT,
    threads: 1
    priority: 10
    resources:
        **rule_resources("guided_stage1"),
    log:
        "results/{profile}/logs/guided_stage1/{model}.log",
    shell:
        "OMP_NUM_THREADS={threads} {params.cmd} --no-progress 2>&1 | tee {log}"
