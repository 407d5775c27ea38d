#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static inline __m512 ld(const uint16_t *p) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}
static int K; static long N;
#define XS (K + 16)
#define TILE(R)                                                                   \
  static void t##R(const uint16_t *W, const float *x, float *y, long n0, long n1) { \
    for (long n = n0; n + R <= n1; n += R) {                                      \
      __m512 acc[4][R];                                                           \
      for (int i = 0; i < 4; ++i) for (int j = 0; j < R; ++j) acc[i][j] = _mm512_setzero_ps(); \
      const uint16_t *base = W + n * K;                                           \
      for (int k = 0; k < K; k += 16) {                                           \
        __m512 w[R];                                                              \
        for (int j = 0; j < R; ++j) w[j] = ld(base + (long)j * K + k);            \
        for (int i = 0; i < 4; ++i) { __m512 xv = _mm512_loadu_ps(x + i * XS + k); \
          for (int j = 0; j < R; ++j) acc[i][j] = _mm512_fmadd_ps(xv, w[j], acc[i][j]); } \
      }                                                                           \
      for (int i = 0; i < 4; ++i) for (int j = 0; j < R; ++j) y[i * N + n + j] = _mm512_reduce_add_ps(acc[i][j]); \
    }                                                                             \
  }
TILE(1) TILE(2) TILE(4)
typedef void (*fn_t)(const uint16_t *, const float *, float *, long, long);
int main(int argc, char **argv) {
  K = atoi(argv[1]);
  long bytes = 512l << 20; N = bytes / 2 / K;
  uint16_t *W = aligned_alloc(64, bytes);
  float *x = aligned_alloc(64, 4 * XS * 4), *y = aligned_alloc(64, 4 * N * 4);
#pragma omp parallel for
  for (long i = 0; i < bytes / 2; ++i) W[i] = 0x3f80 + (i & 7);
  for (int k = 0; k < 4 * XS; ++k) x[k] = 1.0f / (k + 1);
  struct { const char *name; fn_t f; } v[] = {{"4x1", t1}, {"4x2", t2}, {"4x4", t4}};
  int nv = 3, R = atoi(argv[2]);
  static double cpu[8][100], wall[8][100];
  for (int round = 0; round < R; ++round)
    for (int i = 0; i < nv; ++i) {
      struct timespec c0, c1; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
      double t0 = omp_get_wtime();
#pragma omp parallel
      { int t = omp_get_thread_num(), nt = omp_get_num_threads(); long per = (N / nt) & ~7l;
        long a = t * per, b = t == nt - 1 ? N : a + per; v[i].f(W, x, y, a, b); }
      double s = omp_get_wtime() - t0;
      clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
      double cs = (c1.tv_sec - c0.tv_sec) + (c1.tv_nsec - c0.tv_nsec) * 1e-9;
      cpu[i][round] = bytes / cs / 1e9 * omp_get_max_threads(); wall[i][round] = bytes / s / 1e9;
    }
  for (int i = 0; i < nv; ++i) {
    for (int a = 0; a < R; ++a) for (int b = a + 1; b < R; ++b) { if (cpu[i][b] < cpu[i][a]) { double t = cpu[i][a]; cpu[i][a] = cpu[i][b]; cpu[i][b] = t; } if (wall[i][b] < wall[i][a]) { double t = wall[i][a]; wall[i][a] = wall[i][b]; wall[i][b] = t; } }
    printf("K=%d %s  wall median %.2f best %.2f GB/s   cpu-time median %.2f GB/s\n", K, v[i].name, wall[i][R/2], wall[i][R-1], cpu[i][R/2]);
  }
}
