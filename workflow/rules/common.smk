# Helpers shared by the rules: a rule's inputs, config params and command all come from its DAG job.


def job_inputs(pattern):
    find = job_for(pattern)
    return lambda wc: list(find(wc).deps)


def job_params(pattern):
    find = job_for(pattern)
    return lambda wc: find(wc).param_values(CFG)


def job_shell(pattern):
    find = job_for(pattern)
    return lambda wc: find(wc).shell


def rule_threads(rule):
    return dag.resources(CFG, rule)["threads"]


def rule_resources(rule):
    """gpu, runtime, mem_mb of ``resources.<rule>`` (or ``resources.default``) in the config."""
    return {k: v for k, v in dag.resources(CFG, rule).items() if k != "threads"}
