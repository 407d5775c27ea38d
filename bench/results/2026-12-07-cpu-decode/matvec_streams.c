#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
// y[n] = sum_k x[k] * W[n,k], W bf16 row-major. Variants of access order.
static inline __m512 ld(const uint16_t *p) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}
static int K = 1024; static long N;
static float hsum(__m512 v) { return _mm512_reduce_add_ps(v); }
// R rows interleaved, prefetch distance PD bytes (0 = none), linear over the tile.
#define TILE(R)                                                                   \
  static void tile##R(const uint16_t *W, const float *x, float *y, long n0, long n1, int pd) { \
    for (long n = n0; n + R <= n1; n += R) {                                      \
      __m512 acc[R];                                                              \
      for (int j = 0; j < R; ++j) acc[j] = _mm512_setzero_ps();                   \
      const uint16_t *base = W + n * K;                                           \
      for (int k = 0; k < K; k += 32) {                                           \
        if (pd) for (int j = 0; j < R; ++j) _mm_prefetch((const char *)(base + (long)k * R + j * 32) + pd, _MM_HINT_T0); \
        __m512 x0 = _mm512_loadu_ps(x + k), x1 = _mm512_loadu_ps(x + k + 16);    \
        for (int j = 0; j < R; ++j) {                                             \
          acc[j] = _mm512_fmadd_ps(x0, ld(base + (long)j * K + k), acc[j]);       \
          acc[j] = _mm512_fmadd_ps(x1, ld(base + (long)j * K + k + 16), acc[j]);  \
        }                                                                         \
      }                                                                           \
      for (int j = 0; j < R; ++j) y[n + j] = hsum(acc[j]);                        \
    }                                                                             \
  }
TILE(1) TILE(2) TILE(4) TILE(8)
// one row at a time, 4 accumulators
static void seq1(const uint16_t *W, const float *x, float *y, long n0, long n1, int pd) {
  for (long n = n0; n < n1; ++n) {
    const uint16_t *r = W + n * K;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int k = 0; k < K; k += 64) {
      if (pd) { _mm_prefetch((const char *)(r + k) + pd, _MM_HINT_T0); _mm_prefetch((const char *)(r + k + 32) + pd, _MM_HINT_T0); }
      a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + k), ld(r + k), a0);
      a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + k + 16), ld(r + k + 16), a1);
      a2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + k + 32), ld(r + k + 32), a2);
      a3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + k + 48), ld(r + k + 48), a3);
    }
    y[n] = hsum(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  }
}
static void row2acc(const uint16_t *W, const float *x, float *y, long n0, long n1, int pd) {
  for (long n = n0; n < n1; ++n) {
    const uint16_t *r = W + n * K;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0;
    for (int k = 0; k < K; k += 32) {
      a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + k), ld(r + k), a0);
      a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + k + 16), ld(r + k + 16), a1);
    }
    y[n] = hsum(_mm512_add_ps(a0, a1));
  }
}
static void row1acc(const uint16_t *W, const float *x, float *y, long n0, long n1, int pd) {
  for (long n = n0; n < n1; ++n) {
    const uint16_t *r = W + n * K;
    __m512 a0 = _mm512_setzero_ps();
    for (int k = 0; k < K; k += 16)
      a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + k), ld(r + k), a0);
    y[n] = hsum(a0);
  }
}
typedef void (*fn_t)(const uint16_t *, const float *, float *, long, long, int);
int main(int argc, char **argv) {
  K = atoi(argv[1]);
  long bytes = 512l << 20; N = bytes / 2 / K;
  uint16_t *W = aligned_alloc(64, bytes);
  float *x = aligned_alloc(64, K * 4), *y = aligned_alloc(64, N * 4);
#pragma omp parallel for
  for (long i = 0; i < bytes / 2; ++i) W[i] = 0x3f80 + (i & 7);
  for (int k = 0; k < K; ++k) x[k] = 1.0f / (k + 1);
  struct { const char *name; fn_t f; int pd; } v[] = {
    {"row1acc", row1acc, 0}, {"row2acc", row2acc, 0}, {"tile4", tile4, 0}, {"tile4+pf1k", tile4, 1024}, {"tile4+pf4k", tile4, 4096},
    {"tile1", tile1, 0}, {"tile2", tile2, 0}, {"tile8", tile8, 0}, {"tile8+pf2k", tile8, 2048},
    {"seq1", seq1, 0}, {"seq1+pf1k", seq1, 1024}, {"seq1+pf2k", seq1, 2048},
  };
  int nv = sizeof v / sizeof v[0];
  double best[32] = {0}; static double cpu[32][100];
  for (int round = 0; round < atoi(argv[2]); ++round)
    for (int i = 0; i < nv; ++i) {
      struct timespec c0, c1; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
      double t0 = omp_get_wtime();
#pragma omp parallel
      {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        long per = (N / nt) & ~7l;
        long a = t * per, b = t == nt - 1 ? N : a + per;
        v[i].f(W, x, y, a, b, v[i].pd);
      }
      double s = omp_get_wtime() - t0, gbs = bytes / s / 1e9;
      clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
      double cs = (c1.tv_sec - c0.tv_sec) + (c1.tv_nsec - c0.tv_nsec) * 1e-9;
      double cg = bytes / cs / 1e9 * omp_get_max_threads();
      if (gbs > best[i]) best[i] = gbs;
      cpu[i][round] = cg;
    }
  int R = atoi(argv[2]);
  for (int i = 0; i < nv; ++i) {
    for (int a = 0; a < R; ++a) for (int b = a + 1; b < R; ++b) if (cpu[i][b] < cpu[i][a]) { double t = cpu[i][a]; cpu[i][a] = cpu[i][b]; cpu[i][b] = t; }
    printf("K=%d %-12s best wall %.2f GB/s  cpu-time-median %.2f GB/s per-busy-thread-set\n", K, v[i].name, best[i], cpu[i][R/2]);
  }
  return 0;
}
