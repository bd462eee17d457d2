rule fetch_data:
    input:
        job_inputs(paths.DATA),
    output:
        paths.DATA,
    params:
        cfg=job_params(paths.DATA),
        cmd=job_shell(paths.DATA),
    threads: rule_threads("fetch_data")
    resources:
        **rule_resources("fetch_data"),
    log:
        "results/{profile}/logs/fetch_data/{dataset}.log",
    shell:
        "{params.cmd} 2>&1 | tee {log}"
