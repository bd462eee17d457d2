rule collect:
    input:
        job_inputs(paths.METRICS_CSV),
    output:
        paths.METRICS_CSV,
    params:
        cmd=job_shell(paths.METRICS_CSV),
    threads: rule_threads("collect")
    resources:
        **rule_resources("collect"),
    log:
        "results/{profile}/logs/collect.log",
    shell:
        "{params.cmd} 2>&1 | tee {log}"


rule report:
    input:
        job_inputs(paths.REPORT),
    output:
        report(
            paths.fmt(paths.FIGURE, profile="{profile}", figure="fid_vs_time"),
            caption="../report/fid_vs_time.rst",
            category="Figures",
        ),
        report(
            paths.fmt(paths.FIGURE, profile="{profile}", figure="samples"),
            caption="../report/samples.rst",
            category="Figures",
        ),
        report(
            paths.fmt(paths.TABLE, profile="{profile}", table="ddim"),
            caption="../report/ddim_table.rst",
            category="Tables",
        ),
        report(
            paths.fmt(paths.TABLE, profile="{profile}", table="fast_sampling"),
            caption="../report/fast_sampling_table.rst",
            category="Tables",
        ),
        report(
            paths.fmt(paths.TABLE, profile="{profile}", table="distillation"),
            caption="../report/distillation_table.rst",
            category="Tables",
        ),
        report(
            paths.fmt(paths.FIGURE, profile="{profile}", figure="fid_vs_steps"),
            caption="../report/fid_vs_steps.rst",
            category="Figures",
        ),
        report(
            paths.fmt(paths.TABLE, profile="{profile}", table="ddgan"),
            caption="../report/ddgan_table.rst",
            category="Tables",
        ),
        paths.REPORT,
    params:
        cfg=job_params(paths.REPORT),
        cmd=job_shell(paths.REPORT),
    threads: rule_threads("report")
    resources:
        **rule_resources("report"),
    log:
        "results/{profile}/logs/report.log",
    shell:
        "{params.cmd} 2>&1 | tee {log}"
