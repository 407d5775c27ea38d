/* Memory read bandwidth of this machine, for the decode roofline: every
 * thread streams its share of a 1 GiB buffer with 32-byte loads. Prints GB/s.
 * Benchmark tool only; not part of the product. */
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(void) {
  size_t bytes = (size_t)1 << 30, n = bytes / sizeof(float);
  float *a = aligned_alloc(64, bytes);
#pragma omp parallel for
  for (size_t i = 0; i < n; i++) a[i] = (float)(i & 1023);
  double best = 0;
  float sink = 0;
  for (int r = 0; r < 15; r++) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    float total = 0;
#pragma omp parallel reduction(+ : total)
    {
      /* Four independent sums: one add chain would be latency-bound (one
       * 32-byte add per 4 cycles) and report the core, not the memory. */
      __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
#pragma omp for schedule(static)
      for (size_t i = 0; i < n; i += 32) {
        s0 = _mm256_add_ps(s0, _mm256_load_ps(a + i));
        s1 = _mm256_add_ps(s1, _mm256_load_ps(a + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_load_ps(a + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_load_ps(a + i + 24));
      }
      __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
      float f[8];
      _mm256_storeu_ps(f, s);
      total += f[0];
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    sink += total;
    double seconds = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
    if (bytes / seconds / 1e9 > best) best = bytes / seconds / 1e9;
  }
  printf("{\"read_gb_s\": %.2f, \"threads\": %d, \"sink\": %g}\n", best, omp_get_max_threads(), sink > 0 ? 1.0 : 0.0);
  free(a);
  return 0;
}
