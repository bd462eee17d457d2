# Image profiles only: the feature-space classifier and the cached real-side statistics.


rule feature_net:
    input:
        job_inputs(paths.FEATURE_NET),
    output:
        paths.FEATURE_NET,
        paths.FEATURE_NET_CONFIG,
        paths.FEATURE_NET_LOG,
        paths.FEATURE_NET_SUMMARY,
    params:
        cfg=job_params(paths.FEATURE_NET),
        cmd=job_shell(paths.FEATURE_NET),
    threads: rule_threads("feature_net")
    resources:
        **rule_resources("feature_net"),
    log:
        "results/{profile}/logs/feature_net.log",
    shell:
        "OMP_NUM_THREADS={threads} {params.cmd} --no-progress 2>&1 | tee {log}"


rule reference_stats:
    input:
        job_inputs(paths.REFERENCE),
    output:
        paths.REFERENCE,
    params:
        cfg=job_params(paths.REFERENCE),
        cmd=job_shell(paths.REFERENCE),
    wildcard_constraints:
        extractor="feature_net|inception",
    threads: rule_threads("reference_stats")
    resources:
        **rule_resources("reference_stats"),
    log:
        "results/{profile}/logs/reference_stats/{dataset}-{extractor}.log",
    shell:
        "OMP_NUM_THREADS={threads} {params.cmd} 2>&1 | tee {log}"


# Image profiles with guidance: tables/guidance.md from metrics.csv (the 2-D profiles' report writes
# theirs; dag_guidance.table_jobs).
if dag.guidance.table_outputs(CFG):

    rule guidance_table:
        input:
            job_inputs(paths.fmt(paths.TABLE, profile="{profile}", table="guidance")),
        output:
            paths.fmt(paths.TABLE, profile="{profile}", table="guidance"),
        params:
            cfg=job_params(paths.fmt(paths.TABLE, profile="{profile}", table="guidance")),
            cmd=job_shell(paths.fmt(paths.TABLE, profile="{profile}", table="guidance")),
        threads: rule_threads("report")
        resources:
            **rule_resources("report"),
        log:
            "results/{profile}/logs/guidance_table.log",
        shell:
            "{params.cmd} 2>&1 | tee {log}"
