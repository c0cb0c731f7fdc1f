#!/usr/bin/env bash
# The GPU checks of one session, in one script (a rented GPU machine is short-lived).
# Usage: OUT=folder bash benchmarks/gpu_session.sh   (wheels of missing packages in .whl/)
# 1. tests/test_gpu.py; 2. the KS batch CPU-vs-CUDA benchmark; 3. Gray–Scott 256² on numpy,
# torch CPU and CUDA (issue 7); 3b. exponential Rosenbrock on small CUDA states; 4. training
# digits16_unet on the GPU; 5. the learned-model benchmark on it.  Each stage logs to $OUT
# and has its own time limit, so one failing stage does not cost the others.
set -u
OUT=${OUT:-results/gpu}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
python3 -c "import torch, sys; print(sys.version.split()[0], torch.__version__, torch.cuda.get_device_name())" >> "$OUT/gpu.txt" 2>&1
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py > "$OUT/test_gpu.log" 2>&1
echo "test_gpu rc $?"; tail -3 "$OUT/test_gpu.log"
timeout 90 python3 benchmarks/ks_batch_device.py > "$OUT/ks_batch_device.md" 2>&1
echo "ks rc $?"; tail -6 "$OUT/ks_batch_device.md"
timeout ${GS_SECONDS:-240} python3 benchmarks/gray_scott_device.py > "$OUT/gray_scott_device.md" 2>&1
echo "gray-scott rc $?"; cat "$OUT/gray_scott_device.md"
timeout ${RB_SECONDS:-150} python3 benchmarks/rosenbrock_torch.py --quick --device cuda > "$OUT/rosenbrock_torch.md" 2>&1
echo "rosenbrock rc $?"; cat "$OUT/rosenbrock_torch.md"
timeout 220 python3 -m expint.diffusion.pretrained.train digits16_unet --device cuda --steps ${STEPS:-20000} \
  --lr 1e-3 --max-seconds ${TRAIN_SECONDS:-180} --out "$OUT" > "$OUT/train.log" 2>&1
echo "train rc $?"; tail -c 300 "$OUT/train.log"; echo
if [ -f "$OUT/digits16_unet.npz" ]; then
  cp "$OUT/digits16_unet.npz" expint/diffusion/pretrained/
  timeout ${BENCH_SECONDS:-250} python3 benchmarks/diffusion_learned.py --model digits16_unet --device cuda \
    --batch 512 --opt-evals ${OPT_EVALS:-100} --out "$OUT" > "$OUT/diffusion_learned_digits16_unet.md" 2>&1
  echo "bench rc $?"; tail -40 "$OUT/diffusion_learned_digits16_unet.md"
fi
