#!/usr/bin/env python3
"""The two ceilings of this GPU, measured through PyTorch (device machine):
device-to-device copy bandwidth (bytes read + written per second) and the
bf16 GEMM rate (8192^3 on random data), each the median of timed repeats
after warm-up, timed with CUDA events. Prints one JSON line."""
import json
import statistics

import torch


def timed(fn, repeat=20, warmup=3):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times)


def main():
    n = 1 << 30  # 1 GiB of bf16 per buffer: far past the 50 MB L2
    src = torch.randn(n // 2, device="cuda", dtype=torch.bfloat16)
    dst = torch.empty_like(src)
    copy_s = timed(lambda: dst.copy_(src))
    bandwidth = 2 * n / copy_s
    del src, dst
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    gemm_s = timed(lambda: a @ b)
    flops = 2 * 8192 ** 3 / gemm_s
    print(json.dumps({"device": torch.cuda.get_device_name(), "copy_bytes_per_s": bandwidth,
                      "bf16_gemm_flops_per_s": flops, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
