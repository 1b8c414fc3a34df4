#!/bin/sh
# Which torch recipe `make setup` uses: prints "cuda" when this machine has an NVIDIA GPU (the
# driver lists one under /proc/driver/nvidia/gpus, or `nvidia-smi -L` names one), else "cpu".
# PyPI's Linux torch is the CUDA build either way; "cpu" leaves out what only a GPU uses
# (requirements/torch-cpu-deps.txt, docs/install.md). The two paths can be pointed elsewhere for tests.
proc=${SENCLIP_NVIDIA_PROC:-/proc/driver/nvidia/gpus}
smi=${SENCLIP_NVIDIA_SMI:-nvidia-smi}
if [ -n "$(ls -A "$proc" 2>/dev/null)" ]; then
  echo cuda
elif "$smi" -L 2>/dev/null | grep -q '^GPU '; then
  echo cuda
else
  echo cpu
fi
