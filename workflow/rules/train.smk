rule train:
    input:
        job_inputs(paths.MODEL),
    output:
        paths.MODEL,
        paths.MODEL_CONFIG,
        paths.TRAIN_LOG,
    params:
        cfg=job_params(paths.MODEL),
        cmd=job_shell(paths.MODEL),
    # the small FC networks of DDGAN and the GAN baselines gain nothing from a second thread: one
    # thread each lets two of them train side by side
    threads: lambda wc: 1 if paths.parse_gan_model(wc.model) else rule_threads("train")
    # a training needs only the data, and it is the longest kind of job: ready trainings start before
    # waiting sample/evaluate jobs (longest first), so short jobs fill the cores at the end of the run
    # instead of one training running alone (the toy's last 12 s before this); the distillation chain
    # (priority 10, distill.smk) still goes first
    priority: 5
    resources:
        **rule_resources("train"),
    log:
        "results/{profile}/logs/train/{model}.log",
    shell:
        "OMP_NUM_THREADS={threads} {params.cmd} 2>&1 | tee {log}"
