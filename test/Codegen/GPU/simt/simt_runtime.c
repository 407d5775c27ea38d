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
 * every block. An ldmatrix row address outside the block's shared memory or
 * not 16-byte aligned (a fault on the GPU) makes it fail with status 4.
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
  int64_t sharedBytes[8];
  int fault; /* set by a warp collective the GPU would fault on */
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
 * threads of a block diverged at a barrier, 4 when a warp collective would
 * fault on the GPU. */
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
  for (int64_t s = 0; s < nshared; ++s)
    b->sharedBytes[s] = sharedFloats[s] * 4;
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
      if (b->fault) {
        status = 4;
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

/*===- Tensor cores: nvgpu.ldmatrix and nvgpu.mma.sync ---------------------===*
 *
 * Warp collectives, like the shuffle: every lane posts its operands, a
 * barrier, every lane computes its own result registers from the whole
 * warp's operands (the PTX ISA layouts below), a second barrier (so no lane
 * overwrites the posted operands before all have read them). The results
 * wait in `fragment` until simt.py's code reads them one register at a time.
 * The block runs on one OS thread, one block at a time: static state is
 * enough.
 *
 *===----------------------------------------------------------------------===*/

static int64_t posted_address[kMaxThreads];
static uint32_t posted_a[kMaxThreads][4], posted_b[kMaxThreads][2];
static uint32_t fragment[kMaxThreads][4];

/* ldmatrix.sync.aligned.m8n8.{x1,x2,x4}{.trans}.shared.b16: lanes 8i..8i+7
 * give the row addresses of matrix i (16 bytes each); register i of lane l
 * holds row l/4, columns 2*(l%4) and 2*(l%4)+1 of matrix i (low half
 * first), or with .trans the same of the transposed matrix: rows 2*(l%4)
 * and 2*(l%4)+1 of column l/4. */
void emu_ldmatrix(simt_block *block, int64_t thread, int64_t address, int32_t tiles,
                  int32_t transpose) {
  posted_address[thread] = address;
  emu_barrier(block);
  int64_t warp = thread & ~31, lane = thread & 31;
  for (int64_t row = 0; row < 8 * tiles; ++row) {
    /* rows of 16 bytes, 16-byte aligned, in the block's shared memory */
    int64_t a = posted_address[warp + row], inside = 0;
    for (int s = 0; s < 8 && block->shared[s]; ++s)
      inside |= a >= (int64_t)(intptr_t)block->shared[s] &&
                a + 16 <= (int64_t)(intptr_t)block->shared[s] + block->sharedBytes[s];
    if (a % 16 || !inside) {
      block->fault = 1;
      emu_barrier(block);
      return;
    }
  }
  for (int32_t i = 0; i < tiles; ++i) {
    uint16_t half[2];
    for (int j = 0; j < 2; ++j) {
      int64_t row = transpose ? 2 * (lane % 4) + j : lane / 4;
      int64_t col = transpose ? lane / 4 : 2 * (lane % 4) + j;
      const uint16_t *p = (const uint16_t *)(intptr_t)posted_address[warp + 8 * i + row];
      half[j] = p[col];
    }
    fragment[thread][i] = (uint32_t)half[0] | (uint32_t)half[1] << 16;
  }
  emu_barrier(block);
}

static double b16_value(uint16_t bits, int32_t bf16) {
  if (bf16) {
    uint32_t wide = (uint32_t)bits << 16;
    float f;
    memcpy(&f, &wide, 4);
    return f;
  }
  int exponent = (bits >> 10) & 31, mantissa = bits & 1023;
  double sign = bits >> 15 ? -1.0 : 1.0;
  if (exponent == 31)
    return mantissa ? __builtin_nan("") : sign * __builtin_inf();
  if (exponent == 0)
    return sign * mantissa * 0x1p-24;
  return sign * (1024 + mantissa) * __builtin_ldexp(1.0, exponent - 25);
}

static double b16_element(const uint32_t *registers, int i, int32_t bf16) {
  return b16_value((uint16_t)(registers[i / 2] >> (16 * (i % 2))), bf16);
}

/* mma.sync.aligned.m16n8k{16,8}.row.col.f32.{f16,bf16}.{f16,bf16}.f32,
 * dtype 0 = f16, 1 = bf16. With groupID g = lane/4 and t = lane%4, element
 * i of a lane's fragment sits at (PTX ISA, "Matrix Fragments for
 * mma.m16n8k16 / mma.m16n8k8", f16/bf16 multiplicands, f32 accumulators):
 *   A m16n8k16 a0..a7: row g + 8*((i/2)%2), col 2t + i%2 + 8*(i/4)
 *   B m16n8k16 b0..b3: row (k) 2t + i%2 + 8*(i/2), col (n) g
 *   A m16n8k8  a0..a3: row g + 8*(i/2),     col 2t + i%2
 *   B m16n8k8  b0..b1: row (k) 2t + i,      col (n) g
 *   C/D c0..c3:        row g + 8*(i/2),     col 2t + i%2
 * Two b16 elements per 32-bit register, the lower index in the low half.
 * The products are exact in double; each result is rounded to f32 once. */
void emu_mma_sync(simt_block *block, int64_t thread, int32_t k, int32_t dtype, uint32_t a0,
                  uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0, uint32_t b1, float c0,
                  float c1, float c2, float c3) {
  uint32_t a[4] = {a0, a1, a2, a3}, b[2] = {b0, b1};
  memcpy(posted_a[thread], a, sizeof a);
  memcpy(posted_b[thread], b, sizeof b);
  emu_barrier(block);
  int64_t warp = thread & ~31, lane = thread & 31;
  double A[16][16], B[16][8];
  for (int64_t l = 0; l < 32; ++l) {
    int64_t g = l / 4, t = l % 4;
    for (int i = 0; i < k / 2; ++i) {
      int64_t row = k == 16 ? g + 8 * ((i / 2) % 2) : g + 8 * (i / 2);
      int64_t col = 2 * t + i % 2 + (k == 16 ? 8 * (i / 4) : 0);
      A[row][col] = b16_element(posted_a[warp + l], i, dtype);
    }
    for (int i = 0; i < k / 4; ++i) {
      int64_t row = k == 16 ? 2 * t + i % 2 + 8 * (i / 2) : 2 * t + i;
      B[row][g] = b16_element(posted_b[warp + l], i, dtype);
    }
  }
  float c[4] = {c0, c1, c2, c3};
  int64_t g = lane / 4, t = lane % 4;
  for (int i = 0; i < 4; ++i) {
    int64_t row = g + 8 * (i / 2), col = 2 * t + i % 2;
    double sum = c[i];
    for (int j = 0; j < k; ++j)
      sum += A[row][j] * B[j][col];
    float d = (float)sum;
    memcpy(&fragment[thread][i], &d, 4);
  }
  emu_barrier(block);
}

int32_t emu_fragment(simt_block *block, int64_t thread, int32_t i) {
  (void)block;
  return (int32_t)fragment[thread][i];
}

float emu_fragment_f32(simt_block *block, int64_t thread, int32_t i) {
  (void)block;
  float f;
  memcpy(&f, &fragment[thread][i], 4);
  return f;
}
