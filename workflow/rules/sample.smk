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
        **rule_resources("sample"),
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
    threads: rule_threads("evaluate")
    resources:
        **rule_resources("evaluate"),
    log:
        "results/{profile}/logs/evaluate/{model}/{spec}.log",
    shell:
        "OMP_NUM_THREADS={threads} {params.cmd} 2>&1 | tee {log}"
