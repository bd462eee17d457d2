rule collect:
    input:
        job_inputs(paths.METRICS_CSV),
    output:
        paths.METRICS_CSV,
        paths.HEADLINE,
    params:
        cfg=job_params(paths.METRICS_CSV),
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
        *[
            report(
                paths.fmt(paths.FIGURE, profile="{profile}", figure=name),
                caption=f"../report/{name}.rst",
                category="Figures",
            )
            for name in dag.report_figures(CFG)
        ],
        *[
            report(
                paths.fmt(paths.TABLE, profile="{profile}", table=name),
                caption=f"../report/{name}_table.rst",
                category="Tables",
            )
            for name in dag.report_tables(CFG)
        ],
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
