#!/usr/bin/env bash
# A whole profile through the real Slurm executor: a fresh copy of the repository's tracked files (no
# results/<profile> in it), a one-node cluster (tests/slurm/onenode.sh), the README's Slurm command
# with each model chain grouped into one job, then its metrics.csv against the committed one, equal
# up to the timing columns (time_per_100_s, device).  Not part of `make test`: the toy takes about
# 30 minutes on 2 cores (200 sbatch jobs of seconds each); run it with nothing else on the cores.
#
#   tests/slurm/whole_profile.sh [PROFILE] [WORKDIR]      # defaults: toy, /tmp/whole_profile
set -euo pipefail
PROFILE=${1:-toy}
W=$(realpath -m "${2:-/tmp/whole_profile}")
REPO=$(cd "$(dirname "$0")/../.." && pwd)
[ -f "$REPO/results/$PROFILE/metrics.csv" ] || { echo "no committed results/$PROFILE/metrics.csv to compare with" >&2; exit 2; }
rm -rf "$W" && mkdir -p "$W/repo"
(cd "$REPO" && git ls-files -z | xargs -0 cp --parents -t "$W/repo")
rm -rf "$W/repo/results/$PROFILE"
(cd "$W/repo" && git init -q && git add -A && git -c user.email=ci@localhost -c user.name=ci commit -qm snapshot)
export PATH="$REPO/.venv/bin:$PATH" DVC_NO_ANALYTICS=1
start=$(date +%s)
(cd "$W/repo" && "$REPO/tests/slurm/onenode.sh" "$W/cluster" snakemake --profile workflow/profiles/slurm \
    --config profile="$PROFILE" \
    --groups train=models distill=models guided_stage1=models collect=report report=report \
    --slurm-status-command squeue --slurm-no-account --max-status-checks-per-second 2) > "$W/run.log" 2>&1 \
  || { echo "snakemake through Slurm failed; see $W/run.log" >&2; tail -20 "$W/run.log" >&2; exit 1; }
echo "through Slurm: $(( $(date +%s) - start )) s wall, $(grep -c 'SLURM jobid' "$W/run.log") sbatch jobs"
python - "$REPO/results/$PROFILE/metrics.csv" "$W/repo/results/$PROFILE/metrics.csv" <<'PY'
import sys
import pandas as pd
timing, key = ["time_per_100_s", "device"], ["model", "spec"]
a, b = (pd.read_csv(p).drop(columns=timing).sort_values(key).reset_index(drop=True) for p in sys.argv[1:])
pd.testing.assert_frame_equal(a, b)
print(f"metrics.csv: {len(b)} rows equal to the committed ones up to {timing}")
PY
