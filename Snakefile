# trilemma: the Snakemake front-end of the DAG defined once in src/trilemma/dag.py.
#
#   snakemake --cores all                         # the default (toy) profile
#   snakemake --cores all --config profile=NAME   # another profile (config/profiles/NAME.yaml)
#   snakemake --report results/toy/report.html    # offline HTML report of the figures
#
# Every rule runs the same `trilemma <verb>` command as the matching DVC stage (dvc.yaml); code is
# a declared input at the grain of the module that computes each artifact.
from snakemake.utils import min_version

min_version("9.0")

import sys

import yaml
from trilemma import config as trilemma_config, dag, paths

configfile: "params.yaml"

report: "workflow/report/workflow.rst"

PROFILE = config.get("profile", "toy")
try:  # schema + cross-key validation: a bad config stops here, before any job, with one message
    CFG = trilemma_config.load(PROFILE)
except trilemma_config.ConfigError as exc:
    sys.exit(f"snakemake: {exc}")   # SystemExit: Snakemake prints it without a stack trace


def _check_overrides():
    """Hyperparameters come from the profile files only (params.yaml is the toy's, generated), so the verbs see them too."""
    base = yaml.safe_load(open("params.yaml"))
    extra = {k: v for k, v in config.items() if k != "profile" and base.get(k) != v}
    if extra:
        sys.exit(
            f"snakemake --config/--configfile overrides {sorted(extra)} would not reach the trilemma "
            "verbs; put them in config/profiles/<name>.yaml and pass --config profile=<name>")


_check_overrides()
JOBS = dag.by_output(CFG)


# A warm start for local runs: one server imports torch once and forks a worker per job
# (src/trilemma/jobserver.py; TRILEMMA_NO_JOBSERVER=1 turns it off). Cluster jobs start as usual.
_JOB_SERVER = []

onstart:
    if workflow.local_exec:
        from trilemma import jobserver
        _JOB_SERVER.append(jobserver.start())


def _stop_job_server():
    from trilemma import jobserver
    for server in _JOB_SERVER:
        jobserver.stop(server)


onsuccess:
    _stop_job_server()

onerror:
    _stop_job_server()


def job_for(pattern):
    """The DAG job whose output is ``pattern`` filled with the rule's wildcards."""
    return lambda wc: JOBS[pattern.format(**wc)]


wildcard_constraints:
    profile=PROFILE,
    model=r"[a-z0-9_]+",
    spec=r"[a-z0-9_.\-]+",


rule all:
    default_target: True
    input:
        dag.final_targets(CFG),


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/distill.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/deck.smk"
include: "workflow/rules/images.smk"
