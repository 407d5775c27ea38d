/*===- simt_runtime.c - Runs GPU kernels on the CPU, for tests -----------===*
 *
 * Test support for simt.py and the fake CUDA driver: the kernels of
 * gpu.module @qwen_kernels, turned into CPU functions (block and thread ids
 * as arguments), run one block at a time with one coroutine (ucontext) per
 * GPU thread on the calling thread. gpu.barrier switches to the scheduler,
 * which resumes every thread of the block up to its next barrier before any
 * goes past it; an xor gpu.shuffle exchanges through a per-block array
 * between two barriers, so it needs every thread of the block to reach it.
 * A kernel whose barriers or shuffles sit in divergent control flow (some
 * threads finished while others wait) makes simt_launch fail (status 3)
 * instead of computing garbage. Shared memory is poisoned with NaN before
 * every block.
 *
 *===----------------------------------------------------------------------===*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

/* Generated per kernel: unpacks the slots and calls the kernel function. */
struct simt_block;
typedef void (*simt_wrapper)(void **slots, int64_t *dims, int64_t block, int64_t thread,
                             struct simt_block *ctx, void **shared);

enum { kMaxThreads = 1024, kStackBytes = 256 * 1024 };

typedef struct simt_block {
  ucontext_t scheduler;
  ucontext_t threads[kMaxThreads];
  char done[kMaxThreads];
  int64_t current, waiting;
  float exchange[kMaxThreads];
  /* the launch */
  simt_wrapper fn;
  void **slots;
  int64_t *dims;
  int64_t block;
  void *shared[8];
} simt_block;

void emu_barrier(simt_block *block) {
  ++block->waiting;
  swapcontext(&block->threads[block->current], &block->scheduler);
}

float emu_shuffle_xor(simt_block *block, float value, int32_t offset, int64_t thread) {
  block->exchange[thread] = value;
  emu_barrier(block);
  float result = block->exchange[thread ^ offset];
  emu_barrier(block);
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

static simt_block *running; /* the block whose threads are being resumed */
static char *stacks[kMaxThreads];

static void simt_thread_entry(void) {
  simt_block *b = running;
  int64_t t = b->current;
  b->fn(b->slots, b->dims, b->block, t, b, b->shared);
  b->done[t] = 1; /* returns to the scheduler through uc_link */
}

/* Runs `blocks` blocks of `threads` threads one after the other. Returns 0,
 * or 1 for a launch shape it cannot run, 2 when out of memory, 3 when the
 * threads of a block diverged at a barrier. */
int simt_launch(simt_wrapper fn, void **slots, int64_t *dims, int64_t blocks,
                int64_t threads, int64_t nshared, int64_t *sharedFloats) {
  if (threads > kMaxThreads || nshared > 8)
    return 1;
  if (blocks <= 0 || threads <= 0)
    return 0;
  simt_block *b = calloc(1, sizeof(simt_block));
  if (!b)
    return 2;
  int status = 0;
  b->fn = fn;
  b->slots = slots;
  b->dims = dims;
  for (int64_t s = 0; s < nshared; ++s)
    b->shared[s] = aligned_alloc(16, ((sharedFloats[s] * 4 + 15) / 16) * 16);
  for (int64_t t = 0; t < threads; ++t) {
    if (!stacks[t]) {
      void *stack = mmap(0, kStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (stack == MAP_FAILED) {
        status = 2;
        goto out;
      }
      stacks[t] = stack;
    }
  }
  running = b;
  for (int64_t block = 0; block < blocks && !status; ++block) {
    b->block = block;
    for (int64_t s = 0; s < nshared; ++s)
      memset(b->shared[s], 0xff, sharedFloats[s] * 4);
    for (int64_t t = 0; t < threads; ++t) {
      b->done[t] = 0;
      getcontext(&b->threads[t]);
      b->threads[t].uc_stack.ss_sp = stacks[t];
      b->threads[t].uc_stack.ss_size = kStackBytes;
      b->threads[t].uc_link = &b->scheduler;
      makecontext(&b->threads[t], simt_thread_entry, 0);
    }
    for (;;) {
      /* One phase: every live thread runs up to its next barrier or its end. */
      int64_t finished = 0;
      b->waiting = 0;
      for (int64_t t = 0; t < threads; ++t) {
        if (b->done[t]) {
          ++finished;
          continue;
        }
        b->current = t;
        swapcontext(&b->scheduler, &b->threads[t]);
        finished += b->done[t];
      }
      if (finished == threads)
        break;
      if (finished > 0) { /* some threads wait at a barrier the others never reach */
        status = 3;
        break;
      }
    }
  }
out:
  for (int64_t s = 0; s < nshared; ++s)
    free(b->shared[s]);
  free(b);
  return status;
}
