/*===- simt_runtime.c - Runs GPU kernels as CPU threads, for tests --------===*
 *
 * Test support for simt.py: the kernels of gpu.module @qwen_kernels, turned
 * into CPU functions (block and thread ids as arguments), run as one pthread
 * per GPU thread, one block at a time. gpu.barrier is a pthread barrier and
 * an xor gpu.shuffle exchanges through a per-block array between two
 * barriers, which needs every thread of the block to reach it: a kernel
 * whose shuffles or barriers sit in divergent control flow deadlocks here
 * instead of computing garbage. Shared memory is poisoned with NaN.
 *
 *===----------------------------------------------------------------------===*/
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  pthread_barrier_t barrier;
  float exchange[1024];
} simt_block;

void emu_barrier(simt_block *block) { pthread_barrier_wait(&block->barrier); }

float emu_shuffle_xor(simt_block *block, float value, int32_t offset, int64_t thread) {
  block->exchange[thread] = value;
  pthread_barrier_wait(&block->barrier);
  float result = block->exchange[thread ^ offset];
  pthread_barrier_wait(&block->barrier);
  return result;
}

/* f32 -> bf16 rounding to nearest even, as cvt.rn.bf16.f32 (compiler-rt's
 * __truncsfbf2, which the test does not link). */
__bf16 __truncsfbf2(float x) {
  uint32_t bits;
  memcpy(&bits, &x, 4);
  uint16_t half = (bits & 0x7fffffff) > 0x7f800000
                      ? (uint16_t)((bits >> 16) | 0x40)
                      : (uint16_t)((bits + 0x7fff + ((bits >> 16) & 1)) >> 16);
  __bf16 result;
  memcpy(&result, &half, 2);
  return result;
}

/* Generated per kernel: unpacks the slots and calls the kernel function. */
typedef void (*simt_wrapper)(void **slots, int64_t *dims, int64_t block, int64_t thread,
                             simt_block *ctx, void **shared);

typedef struct {
  simt_wrapper fn;
  void **slots;
  int64_t *dims;
  int64_t block, thread;
  simt_block *ctx;
  void **shared;
} simt_job;

static void *simt_run(void *arg) {
  simt_job *job = arg;
  job->fn(job->slots, job->dims, job->block, job->thread, job->ctx, job->shared);
  return 0;
}

int simt_launch(simt_wrapper fn, void **slots, int64_t *dims, int64_t blocks,
                int64_t threads, int64_t nshared, int64_t *sharedFloats) {
  if (threads > 1024 || nshared > 8)
    return 1;
  simt_block ctx;
  pthread_t ids[1024];
  simt_job jobs[1024];
  void *shared[8];
  for (int64_t b = 0; b < blocks; ++b) {
    pthread_barrier_init(&ctx.barrier, 0, (unsigned)threads);
    for (int64_t s = 0; s < nshared; ++s) {
      shared[s] = aligned_alloc(16, ((sharedFloats[s] * 4 + 15) / 16) * 16);
      memset(shared[s], 0xff, sharedFloats[s] * 4);
    }
    for (int64_t t = 0; t < threads; ++t) {
      jobs[t] = (simt_job){fn, slots, dims, b, t, &ctx, shared};
      if (pthread_create(&ids[t], 0, simt_run, &jobs[t]))
        return 2;
    }
    for (int64_t t = 0; t < threads; ++t)
      pthread_join(ids[t], 0);
    for (int64_t s = 0; s < nshared; ++s)
      free(shared[s]);
    pthread_barrier_destroy(&ctx.barrier);
  }
  return 0;
}
