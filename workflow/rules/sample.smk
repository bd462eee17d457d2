rule sample:
    input:
        job_inputs(paths.BANK),
    output:
        paths.BANK,
    params:
        cfg=job_params(paths.BANK),
        cmd=job_shell(paths.BANK),
    threads: CFG["timing"]["threads"]
    resources:
        gpu=1,
    log:
        "results/{profile}/logs/sample/{model}/{spec}.log",
    shell:
        "{params.cmd} --no-progress 2>&1 | tee {log}"


rule evaluate:
    input:
        job_inputs(paths.BANK_METRICS),
    output:
        paths.BANK_METRICS,
    params:
        cfg=job_params(paths.BANK_METRICS),
        cmd=job_shell(paths.BANK_METRICS),
    log:
        "results/{profile}/logs/evaluate/{model}/{spec}.log",
    shell:
        "OMP_NUM_THREADS=1 {params.cmd} 2>&1 | tee {log}"
