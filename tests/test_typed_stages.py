"""Stages read typed sections (issue 17) without changing a job: every training job of the ci and
ci_images DAGs keeps its fingerprint (the resume state it accepts) and its model.json (the artifact
DVC hashes) byte for byte.

Each training job runs in-process in DAG order, with the loop replaced by test_runner's stub (the
networks' initial weights; nothing trains), and this records what the runner hashes and publishes:
the fingerprint, the dict it hashes (``what``, for the diff), the model.json written and the
feature net's summary.  tests/golden/typed_stages.json holds the same records taken on the code
before the stages read typed sections (main at 66bb101, where they read ``config.load``'s dict);
``python tests/test_typed_stages.py --write`` takes them again.  The students' fingerprints hold
their teachers' weight digests, so the initial weights (network construction and seeding) are
checked too."""
import itertools
import json
import sys
from pathlib import Path

import pytest
from safetensors import safe_open

from conftest import REPO, copy_repo
from test_runner import PROFILES, job_ids, training_jobs, untrained
from trilemma import cli, config, dag
from trilemma.stages import consistency, distill, guided_stage1
from trilemma.training import runner
from trilemma.training.loop import LoopConfig

GOLDEN = Path(__file__).parent / "golden" / "typed_stages.json"
FINGERPRINT = runner.fingerprint
STUDENT_STAGES = (distill, guided_stage1, consistency)   # they hash their teacher's weights (file_digest)


def content_digest(path) -> str:
    """The teacher's digest in a student's fingerprint, from its tensors and meta (the digest
    ``save_tensors`` records): the file's bytes are not reproducible (safetensors writes the header's
    metadata in a random key order)."""
    with safe_open(str(path), "pt") as f:
        return f.metadata()["sha256"]


def written(model_json: dict) -> str:
    """model.json's text as ``artifacts.save_json`` writes it."""
    return json.dumps(model_json, indent=2, sort_keys=True) + "\n"


def plain(value):
    """``value`` as the JSON it is hashed and written as (tuples become lists)."""
    return json.loads(json.dumps(value))


def run_job(argv: list[str], mp: pytest.MonkeyPatch) -> dict:
    """Run one training job with the stub loop; its fingerprint, hashed dict, model.json and summary."""
    seen = {}

    def fingerprint(what):
        seen["what"] = what
        return FINGERPRINT(what)

    def train(*args, **kwargs):
        seen["fingerprint"] = kwargs["fingerprint"]
        return untrained(*args, **kwargs)

    mp.setattr(runner, "fingerprint", fingerprint)
    mp.setattr(runner, "train", train)
    for stage in STUDENT_STAGES:
        mp.setattr(stage, "file_digest", content_digest)
    assert cli.main(argv) == 0, argv
    out = Path(argv[argv.index("--out") + 1])
    record = {"fingerprint": seen["fingerprint"], "what": plain(seen["what"]),
              "model_json": json.loads(out.with_name("model.json").read_text())}
    if "--summary" in argv:
        record["summary"] = json.loads(Path(argv[argv.index("--summary") + 1]).read_text())
    return record


def capture(repo: Path) -> dict:
    """{profile: {job name: record}} of every training job of ``PROFILES``, run in ``repo`` (a copy)."""
    mp = pytest.MonkeyPatch()
    mp.chdir(repo)
    try:
        records = {}
        for profile in PROFILES:
            fetch = next(j for j in dag.jobs(config.load(profile)) if j.stage == "fetch_data")
            assert cli.main(list(fetch.argv[1:])) == 0
            records[profile] = {job.name: run_job(list(job.argv[1:]), mp) for job in training_jobs(profile)}
        return records
    finally:
        mp.undo()


@pytest.mark.parametrize("profile", config.profiles(REPO))
def test_typed_reads_are_the_dict_reads(profile):
    """What the stages read by attribute equals what they read from the dict before: every training
    block's loop (``LoopConfig.from_config``, typed or plain) and every round's ``updates`` and ``lr``
    (the key ``dag.round_key`` declares in the round's job)."""
    plain, typed = config.load(profile, root=REPO), config.load_typed(profile, root=REPO)
    blocks = [("teacher", "train"), ("distill", "teacher", "train"), ("guidance", "teacher", "train"),
              ("guidance", "stage1", "train"), ("ddgan", "train"), ("feature_net", "train")]
    for path in [p for p in blocks if p[0] in plain]:
        block = typed
        for key in path:
            block = getattr(block, key)
        assert LoopConfig.from_config(block) == LoopConfig.from_config(config.section(plain, ".".join(path))), path
    for chain in dag.CHAIN_PREFIX:
        for n, field in itertools.product(dag.student_steps(plain, chain), ("updates", "lr")):
            want = config.section(plain, dag.round_key(plain, field, n, chain))
            got = getattr(typed, chain).rounds.round_value(field, n)
            assert (got, type(got)) == (want, type(want)), (chain, n, field)


@pytest.fixture(scope="module")
def captured(tmp_path_factory):
    return capture(copy_repo(tmp_path_factory.mktemp("typed") / "repo"))


def test_the_goldens_cover_every_training_job():
    golden = json.loads(GOLDEN.read_text())
    assert {p: sorted(golden[p]) for p in PROFILES} == {p: sorted(j.name for j in training_jobs(p)) for p in PROFILES}


@pytest.mark.parametrize("profile,name", job_ids(), ids=[f"{p}-{n}" for p, n in job_ids()])
def test_fingerprint_and_model_json_unchanged(captured, profile, name):
    want, got = json.loads(GOLDEN.read_text())[profile][name], captured[profile][name]
    assert got["what"] == want["what"]
    assert got["fingerprint"] == want["fingerprint"]
    assert written(got["model_json"]) == written(want["model_json"])   # the bytes save_json writes
    assert got.get("summary") == want.get("summary")


if __name__ == "__main__":   # python tests/test_typed_stages.py --write: take the goldens (on the code before)
    import tempfile
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_typed_stages.py --write")
    with tempfile.TemporaryDirectory() as tmp:
        records = capture(copy_repo(Path(tmp) / "repo"))
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(records, indent=1) + "\n")
    print(f"wrote {GOLDEN}: {sum(len(r) for r in records.values())} jobs")
