"""Code dependencies derived from imports (issue 16; ``codedeps.py``, ``dag_base.ENTRIES``).

Every job's declared code covers the import closure of its stage module (the verb's module in
``cli.VERBS``) and of every module it declares: an import added to any module a job runs becomes a
dependency of that job without a hand edit.  On the hand lists before (main at b2b2566) this failed
for 615 of the 879 jobs of the five profiles, 17 of their 18 (rule, verb) kinds: e.g. the report
(artifacts.py, data/images.py, sampling/registry.py undeclared, imported by stages/report.py and
reporting/figures.py), collect (artifacts.py), the toy's GAN train jobs (models/registry.py,
models/mlp.py, training/tasks/ddpm.py through stages/train.py), the image evaluate jobs
(training/loop.py, training/tasks/classifier.py through stages/feature_net.py) and guided stage one on
images (stages/train_gan.py, training/tasks/gan.py, models/ddgan_images.py through stages/train_images.py)."""
import ast

import pytest

from conftest import REPO
from trilemma import cli, codedeps, config, dag

PROFILES = ["toy", "ci", "ci_images", "fashion", "cifar10"]


@pytest.mark.parametrize("profile", PROFILES)
def test_every_job_declares_the_import_closure_of_its_code(profile):
    stale = {}
    for job in dag.jobs(config.load(profile, root=REPO)):
        declared = set(job.deps)
        stage = f"{codedeps.PKG}stages/{cli.VERBS[job.argv[1]][0]}.py"
        python = [d for d in declared if d.startswith(codedeps.PKG) and d.endswith(".py")]
        missing = set(codedeps.closure([stage, *python])) - declared
        if missing:
            stale[job.name] = sorted(missing)
    assert not stale, stale


def test_non_python_inputs_are_declared():
    jobs = {j.name: j for j in dag.jobs(config.load("toy", root=REPO))}
    assert "src/trilemma/reporting/paper_numbers.csv" in jobs["report"].deps


def test_closure_follows_imports_but_not_branches_nor_the_dag():
    # stages/collect.py imports artifacts at module level; evaluation/images imports models/classifier
    # inside a function (followed: not a branching module)
    assert "src/trilemma/artifacts.py" in codedeps.closure(["src/trilemma/stages/collect.py"])
    assert "src/trilemma/models/classifier.py" in codedeps.closure(["trilemma.evaluation.images"])
    # stages/train.py imports the GAN stage and the image modules only on those branches
    train = codedeps.closure(["src/trilemma/stages/train.py"])
    assert "src/trilemma/stages/train_gan.py" not in train and "src/trilemma/training/tasks/images.py" not in train
    assert not {"src/trilemma/config.py", "src/trilemma/dag.py", "src/trilemma/paths.py"} & set(train)
    assert "src/trilemma/training/runner.py" in train


def test_branching_modules_exist_and_the_closure_reads_no_module_twice():
    for name in codedeps.BRANCHING | codedeps.DAG_MODULES:
        assert codedeps.module_file(name) is not None, name
    for f in (REPO / "src/trilemma").rglob("*.py"):
        ast.parse(f.read_text())   # every module parses (the closure reads them all)



@pytest.mark.parametrize("profile", ["ci", "ci_images"])
def test_the_modality_modules_a_job_imports_by_name_are_its_dependencies(profile):
    """``modality.py`` names its metric function and report layout as strings (imported when used), which
    no import statement shows: the evaluate and report jobs' entries must name their modules."""
    from trilemma import modality

    cfg = config.load(profile, root=REPO)
    mod = modality.Images if profile == "ci_images" else modality.Points
    jobs = {j.name: j for j in dag.jobs(cfg)}
    evaluate = next(j for j in jobs.values() if j.stage == "evaluate")
    for dotted, job in ((mod.METRICS, evaluate), (mod.REPORT, jobs["report"])):
        modality._attr(dotted)   # it exists
        assert str(codedeps.module_file(dotted.rsplit(".", 1)[0]).relative_to(REPO)) in job.deps, (dotted, job.name)
