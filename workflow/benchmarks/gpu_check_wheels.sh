#!/usr/bin/env bash
# Wheels for running workflow/benchmarks/gpu_check.py on a CUDA machine without network whose Python (3.12 by
# default) has PyTorch, pandas, matplotlib, sacrebleu, sentencepiece, tqdm, PyYAML, requests and pytest but not
# Snakemake or jsonschema. Here, with PyPI reachable:
#     bash workflow/benchmarks/gpu_check_wheels.sh .whl [PYTHON_VERSION]
# There, before the check (--no-deps: the pins below are the whole set):
#     python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
# The pins are the versions this project is tested with: Snakemake 9.27.1, jsonschema, and what they need beyond
# such an image.
set -euo pipefail
dest=${1:?usage: gpu_check_wheels.sh FOLDER [PYTHON_VERSION]}
python_version=${2:-3.12}
pins=(
    snakemake==9.27.1 snakemake-interface-common==1.23.0 snakemake-interface-executor-plugins==9.4.0
    snakemake-interface-logger-plugins==2.1.0 snakemake-interface-report-plugins==1.3.0
    snakemake-interface-scheduler-plugins==2.0.2 snakemake-interface-storage-plugins==4.4.1
    jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1
    annotated-types==0.8.0 argparse-dataclass==2.0.0 conda-inject==1.3.2 configargparse==1.9.0
    connection-pool==0.0.3 docutils==0.22.4 dpath==2.2.0 fastjsonschema==2.22.3 gitdb==4.0.12 gitpython==3.2.1
    greenlet==3.5.6 humanfriendly==10.0 immutables==0.21 jupyter-core==5.9.1 nbformat==5.11.1
    platformdirs==4.14.9 pooch==1.9.0 pulp==3.3.2 pydantic==2.14.4 pydantic-core==2.50.5 smart-open==7.7.1
    smmap==5.0.3 sqlalchemy==2.0.58 sqlmodel==0.0.37 tenacity==9.2.1 throttler==1.2.3 traitlets==5.16.1
    typing-inspection==0.4.5 yte==1.9.4
)
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
mkdir -p "$dest"
for pin in "${pins[@]}"; do
    if ! python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$python_version" \
        --implementation cp "${platforms[@]}" -d "$dest" "$pin" 2>/dev/null; then
        # No wheel on PyPI: build one from the sdist. That suits a pure-Python package only: a compiled one would be
        # built for this machine's Python, not $python_version, and refused there.
        python3 -m pip wheel -q --no-deps --no-binary=:all: -w "$dest" "$pin"
        built=$(find "$dest" -iname "$(echo "${pin%%==*}" | tr - _)-${pin##*==}-*.whl")
        if [ -z "$built" ] || [[ "$built" != *-none-any.whl ]]; then
            echo "error: $pin has no wheel for Python $python_version on PyPI, and its sdist built ${built:-nothing}," \
                "not a pure-Python wheel: build it on a machine with Python $python_version" >&2
            exit 1
        fi
    fi
done
echo "$(find "$dest" -name '*.whl' | wc -l) wheels, $(du -sh "$dest" | cut -f1) in $dest"
