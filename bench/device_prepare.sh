#!/usr/bin/env bash
# Here, before a device call (this machine has the package registries; the GPU machine has nothing
# outside it): put what bench/device_check.sh needs and the device image lacks into two gitignored
# folders that the call carries.
#   .whl/      wheels for Python 3.12 (the device's python3): torch-fidelity and jsonschema's family
#              (trilemma.config validates with jsonschema); torch, torchvision, numpy, scipy, PyYAML,
#              safetensors and tqdm are in the device image (KINDS.md's package list)
#   .devdata/  the Fashion-MNIST IDX files (Debian's dataset-fashion-mnist, or FASHION_DIR)
# Then, with the device tool:  run(command="bash bench/device_check.sh", carry=[".whl", ".devdata"],
#                                  timeout_s=590)
set -euo pipefail
cd "$(dirname "$0")/.."
FASHION_DIR=${FASHION_DIR:-/usr/share/datasets/fashion-mnist}
rm -rf .whl .devdata
mkdir -p .whl .devdata/fashion-mnist
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl torch-fidelity==0.4.0 jsonschema==4.26.0 jsonschema-specifications==2025.9.1 \
  referencing==0.37.0 rpds-py==2026.9.1
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  test -f "$FASHION_DIR/$f.gz" || { echo "missing $FASHION_DIR/$f.gz: apt-get install dataset-fashion-mnist, or set FASHION_DIR" >&2; exit 1; }
  cp "$FASHION_DIR/$f.gz" .devdata/fashion-mnist/
done
du -sh .whl .devdata
