#!/usr/bin/env python3
"""Numerics check of the GPU kernels without a GPU (test support, stdlib only).

  simt.py lower CANON.mlir OUT     gpu.module @qwen_kernels (canonical text, as
                                   printed after --qwen-gpu-lower-kernels) ->
                                   OUT/emu.mlir: one func.func per kernel that
                                   a CPU thread runs (block / thread ids as
                                   arguments, gpu.barrier and xor gpu.shuffle
                                   as calls into simt_runtime.c, workgroup
                                   buffers as pointers), OUT/wrappers.c and
                                   OUT/kernels.json
  simt.py module NAME < IN > OUT   prints the nested `module @NAME` of IN
  simt.py check SOURCE.mlir OUT [RUNS [BOUNDS]]
                                   runs every generated kernel (OUT/emu.so) and
                                   the same source kernel compiled by the CPU
                                   codegen (OUT/cpu.so) on the same random
                                   inputs of SOURCE's @step and compares all
                                   outputs (per output, over the elements
                                   either side wrote, so in-place KV caches
                                   and linear-attention states count only
                                   what a kernel changed; int32 outputs must
                                   be equal); pack kernels are compared bit
                                   for bit with a rounding done here (FP8
                                   packs: e4m3 codes and scales against
                                   HF's act_quant, fp8_act_quant). Prints
                                   one line per kernel, then PASS or FAIL.
                                   RUNS (default 3,2): the requests' numbers
                                   of tokens, in step order (token_seq), e.g.
                                   1,70,1 for a long prefill between two
                                   decode tokens; at most 4 requests.
                                   When every run is 1 (a decode-only
                                   step, T == B), a kernel's decode
                                   variant NAME_decode (grid from the
                                   launch's decode variant) is checked
                                   too, against the CPU's NAME: whole
                                   (splits 1), then split-K in 3 and 32
                                   parts merged by NAME_decode_combine
                                   (printed "NAME_decode x3"); a cuBLASLt
                                   GEMM's decode variant (FP8) whole. With
                                   KV caches, RUNS other than 3,2 get
                                   consistent paged inputs: request r
                                   continues a cached prefix of
                                   PREFIXES[r] tokens (17, 5, 40, 31 with
                                   pages of 16: every chunk starts inside
                                   a page, the last one just before a
                                   multiple of 32), its tokens at the
                                   next positions, and its
                                   block-table row lists the pages it needs
                                   out of a shuffled pool (unused entries
                                   point at spare pages). bf16 / f16 KV
                                   caches hold rounded random values; the
                                   elements either side changed must be
                                   equal bit for bit.
                                   BOUNDS (default: every kernel 1e-6): a
                                   comma list NAME=REL of looser bounds on
                                   the relative error of some kernels (the
                                   tensor-core attention tiles round q and
                                   p to the cache dtype).
                                   When OUT/kernels.json has the sampler's
                                   qk_argmax, it is checked too (argmax
                                   below, vocab from SOURCE's @step result).
  simt.py argmax OUT VOCAB         runs qk_argmax (OUT/emu.so) on rows of
                                   VOCAB logits (random, repeated maxima at
                                   spread positions, many ties, NaNs, all
                                   NaN, -inf, +-0, +inf) and compares with
                                   the host argmax of runtime/src/sampling.cpp
                                   (lowest index of the largest non-NaN
                                   logit, 0 if all are NaN): equal ids.
  simt.py topk OUT VOCAB           runs qk_topk (OUT/emu.so) on the rows of
                                   argmax and more (ties at the cut, signed
                                   zeros everywhere, fewer non-NaN logits
                                   than candidates, -inf among them) and
                                   compares with the exact top candidates
                                   (logit descending then id ascending, NaN
                                   left out, -0 == +0, padded with -inf and
                                   id -1): equal ids, logits bit for bit.
                                   `check` runs it too when OUT/kernels.json
                                   has qk_topk.
  simt.py gemm-check OUT           runs every tensor-core GEMM tile
                                   mma_{nt,nn}_{f16,bf16}[_k8][_nvvm] of
                                   OUT/emu.so (lower-to-ptx-mma.mlir: one
                                   block, A 64x64, B 64x64 as B^T (nt) or B
                                   (nn), C 64x64 f32) on random inputs and
                                   compares C with a host GEMM of the same
                                   rounded inputs: every element within
                                   1e-6 of sum_k |a_ik b_kj|. PASS or FAIL.

Tensor cores: `lower` also emulates nvgpu.ldmatrix (m8n8 b16, x1 / x2 / x4,
with or without .trans) and nvgpu.mma.sync (m16n8k16 f16 / bf16 and
m16n8k8 f16 / bf16, f32 accumulators; also nvvm.mma.sync on .b32
registers, which a bf16 kernel needs: upstream convert-nvgpu-to-nvvm cannot
lower a bf16 nvgpu.mma.sync, and on vector<2xf16> registers for f16, as
passes/Codegen/GPU/AttentionMma.cpp emits them) as warp collectives, like a shuffle:
every lane passes its row address or its fragment registers to
simt_runtime.c, which gathers the warp's 32 lanes between two barriers and
computes each lane's result registers with the fragment layouts of the PTX
ISA (products exact, sums in double, each result rounded to f32 once);
they need every thread of the block to reach them. Workgroup buffers may
have any static shape and element type.
"""
import ctypes
import heapq
import json
import math
import random
import re
import struct
import sys


def lower(canon_path, out):
    text = open(canon_path).read()
    start = text.index('gpu.module @qwen_kernels')
    lines = text[text.index('{', text.index(']', start)) + 1:].split('\n')
    emitted = ['module {',
               'func.func private @emu_barrier(!llvm.ptr)',
               'func.func private @emu_shuffle_xor(!llvm.ptr, f32, i32, index) -> f32']
    emitted += NVGPU_DECLARATIONS
    kernels = {}
    header = re.compile(r'\s*gpu\.func @(\w+)\((.*?)\)( workgroup\((.*?)\))? kernel '
                        r'attributes \{known_block_size = array<i32: (\d+), 1, 1>\} \{')
    i = 0
    while i < len(lines):
        line = lines[i]
        if 'memref.global' in line:
            emitted.append(line.strip())
        match = header.match(line)
        i += 1
        if not match:
            continue
        name, params, workgroup, block = match.group(1), match.group(2), match.group(4), int(match.group(5))
        shared = []
        params += ', %emu_bid: index, %emu_tid: index, %emu_ctx: !llvm.ptr'
        prologue = ['%emu_zero = arith.constant 0 : index']
        for k, (arg, shape, element) in enumerate(workgroup_attributions(workgroup or '')):
            floats, setup = workgroup_prologue(k, arg, shape, element)
            shared.append(floats)
            params += ', %%emu_sh%d: !llvm.ptr' % k
            prologue += setup
        # i64 parameters: T, B, P, R, then a kernel's extra scalars (the
        # split count of a split-K decode kernel).
        kernels[name] = {'slots': params.count('!llvm.ptr') - 1 - len(shared), 'block': block,
                         'dims': params.count(': i64'),
                         'shared': shared}
        emitted.append('func.func @%s(%s) {' % (name, params))
        emitted += prologue
        while not lines[i].strip().startswith('gpu.return'):
            l = lines[i].replace(', #gpu.address_space<workgroup>', '')
            l = re.sub(r'(%\w+) = gpu.block_id\s+x', r'\1 = arith.addi %emu_bid, %emu_zero : index', l)
            l = re.sub(r'(%\w+) = gpu.thread_id\s+x', r'\1 = arith.addi %emu_tid, %emu_zero : index', l)
            l = re.sub(r'^(\s*)gpu.barrier', r'\1func.call @emu_barrier(%emu_ctx) : (!llvm.ptr) -> ()', l)
            l = re.sub(r'(%\w+), %\w+ = gpu.shuffle\s+xor (%[\w#]+), (%\w+), %\w+ : f32',
                       r'\1 = func.call @emu_shuffle_xor(%emu_ctx, \2, \3, %emu_tid) : '
                       r'(!llvm.ptr, f32, i32, index) -> f32', l)
            l = re.sub(r'llvm.call_intrinsic "llvm.nvvm.sqrt.rn.f"\((%[\w#]+)\) : \(f32\) -> f32',
                       r'math.sqrt \1 : f32', l)
            if 'nvgpu.' in l or 'nvvm.mma.sync' in l:
                emitted += emulate_nvgpu(l, i)
                i += 1
                continue
            if 'gpu.' in l:
                sys.exit('simt.py: no emulation for: ' + l.strip())
            emitted.append(l)
            i += 1
        emitted += ['return', '}']
    emitted.append('}')
    open(out + '/emu.mlir', 'w').write('\n'.join(emitted) + '\n')
    json.dump(kernels, open(out + '/kernels.json', 'w'), indent=1)
    with open(out + '/wrappers.c', 'w') as c:
        c.write('#include <stdint.h>\n')
        for name, info in kernels.items():
            n, s, d = info['slots'], len(info['shared']), info['dims']
            c.write('void %s(%s);\n' % (name, ', '.join(['void*'] * n + ['int64_t'] * (d + 2) +
                                                        ['void*'] * (1 + s))))
            args = (['slots[%d]' % i for i in range(n)] + ['dims[%d]' % i for i in range(d)] +
                    ['block', 'thread', 'ctx'] + ['shared[%d]' % i for i in range(s)])
            c.write('void wrap_%s(void **slots, int64_t *dims, int64_t block, int64_t thread, '
                    'void *ctx, void **shared) { %s(%s); }\n' % (name, name, ', '.join(args)))


def nested_module(name):
    text = sys.stdin.read()
    start = text.index('module @' + name)
    depth = 0
    for i in range(text.rindex('{', start, text.index('\n', start)), len(text)):
        depth += {'{': 1, '}': -1}.get(text[i], 0)
        if depth == 0:
            print(text[start:i + 1])
            return
    sys.exit('simt.py: unbalanced module @' + name)


#===----------------------------------------------------------------------===#
# Workgroup buffers and tensor cores (nvgpu.ldmatrix, nvgpu.mma.sync)
#===----------------------------------------------------------------------===#
#
# Workgroup attributions of any static shape and element type become a
# pointer parameter (simt_launch allocates them, 16-byte aligned, sizes in
# floats) wrapped in a memref descriptor. The warp-level matrix ops are warp
# collectives, like a shuffle: each lane passes its operands (its row
# address for ldmatrix, its fragment registers for mma.sync) to
# simt_runtime.c, which gathers the warp's 32 lanes between two barriers,
# computes every lane's result registers with the PTX ISA fragment layouts
# and hands them back one register at a time (emu_fragment). Like a shuffle,
# they need every thread of the block to reach them.

ELEMENT_BYTES = {'f32': 4, 'i32': 4, 'f16': 2, 'bf16': 2, 'i16': 2, 'i8': 1}
# mma.sync element types: the `dtype` operand of emu_mma_sync.
MMA_TYPES = {'f16': 0, 'bf16': 1}

NVGPU_DECLARATIONS = [
    'func.func private @emu_ldmatrix(!llvm.ptr, index, i64, i32, i32)',
    'func.func private @emu_mma_sync(!llvm.ptr, index, i32, i32, i32, i32, i32, i32, i32, i32, '
    'f32, f32, f32, f32)',
    'func.func private @emu_fragment(!llvm.ptr, index, i32) -> i32',
    'func.func private @emu_fragment_f32(!llvm.ptr, index, i32) -> f32']


def workgroup_attributions(text):
    """(arg, shape, element type) of each workgroup attribution, in order."""
    return [(arg, [int(d) for d in shape.split('x')], element) for arg, shape, element in
            re.findall(r'(%\w+) : memref<((?:\d+x)*\d+)x(\w+), '
                       r'#gpu.address_space<workgroup>>', text)]


def workgroup_prologue(k, arg, shape, element):
    """Size in floats, and the lines that make ARG a row-major memref over
    the k-th shared pointer parameter."""
    rank = len(shape)
    descriptor = ('!llvm.struct<(ptr, ptr, i64, array<%d x i64>, array<%d x i64>)>' % (rank, rank))
    strides = [1] * rank
    for d in range(rank - 2, -1, -1):
        strides[d] = strides[d + 1] * shape[d + 1]
    fields = [('%%emu_sh%d' % k, '0'), ('%%emu_sh%d' % k, '1'), ('0', '2')]
    fields += [(str(n), '3, %d' % d) for d, n in enumerate(shape)]
    fields += [(str(n), '4, %d' % d) for d, n in enumerate(strides)]
    previous = '%%emu_u%d' % k
    lines = ['%s = llvm.mlir.undef : %s' % (previous, descriptor)]
    for f, (value, position) in enumerate(fields):
        if not value.startswith('%'):
            constant = '%%emu_c%d_%d' % (k, f)
            lines.append('%s = llvm.mlir.constant(%s : i64) : i64' % (constant, value))
            value = constant
        current = '%%emu_d%d_%d' % (k, f)
        lines.append('%s = llvm.insertvalue %s, %s[%s] : %s' %
                     (current, value, previous, position, descriptor))
        previous = current
    lines.append('%s = builtin.unrealized_conversion_cast %s : %s to memref<%sx%s>' %
                 (arg, previous, descriptor, 'x'.join(map(str, shape)), element))
    size = ELEMENT_BYTES[element] * strides[0] * shape[0]
    return (size + 3) // 4, lines


def rows_to_vector(p, result, rows, element):
    """RESULT = the vector<Nx2xELEMENT> of the N vector<2xELEMENT> ROWS, built
    as the LLVM array the CPU lowering makes of it (vector.insert or
    vector.from_elements covering a whole 2-D vector fold to a ub.poison that
    the CPU lowering does not convert)."""
    array = '!llvm.array<%d x vector<2x%s>>' % (len(rows), element)
    out = ['%sarray = llvm.mlir.poison : %s' % (p, array)]
    previous = '%sarray' % p
    for r, row in enumerate(rows):
        out.append('%sarray%d = llvm.insertvalue %s, %s[%d] : %s' % (p, r, row, previous, r, array))
        previous = '%sarray%d' % (p, r)
    out.append('%s = builtin.unrealized_conversion_cast %s : %s to vector<%dx2x%s>' %
               (result, previous, array, len(rows), element))
    return out


def emulate_nvgpu(line, number):
    """The lines that emulate one nvgpu op or nvvm.mma.sync (canonical text,
    workgroup memory space already dropped); exits on an op or form it does
    not know."""
    p = '%%emu_nv%d_' % number
    ldmatrix = re.match(r'\s*(%\w+) = nvgpu\.ldmatrix (%\w+)\[(.*?)\] \{numTiles = (\d+) : i32, '
                        r'transpose = (true|false)\} : memref<((?:\d+x)*\d+)x(\w+)> -> '
                        r'vector<(\d+)x2x(\w+)>$', line)
    mma = re.match(r'\s*(%\w+) = nvgpu\.mma\.sync\((%[\w#]+), (%[\w#]+), (%[\w#]+)\) '
                   r'\{mmaShape = \[16, 8, (16|8)\]\} : \(vector<(\d)x2x(b?f16)>, '
                   r'vector<(\d)x2x(b?f16)>, vector<2x2xf32>\) -> vector<2x2xf32>$', line)
    out = []
    if ldmatrix:
        result, memref, indices, tiles, transpose, shape, element, rows, vtype = ldmatrix.groups()
        shape = [int(d) for d in shape.split('x')]
        indices = [x.strip() for x in indices.split(',')]
        if (ELEMENT_BYTES.get(element) != 2 or element != vtype or int(rows) != int(tiles) or
                int(tiles) not in (1, 2, 4) or len(indices) != len(shape)):
            sys.exit('simt.py: no emulation for: ' + line.strip())
        mtype = 'memref<%sx%s>' % ('x'.join(map(str, shape)), element)
        out.append('%sbase = memref.extract_aligned_pointer_as_index %s : %s -> index' %
                   (p, memref, mtype))
        offset = indices[0]
        for d in range(1, len(shape)):
            out.append('%ss%d = arith.constant %d : index' % (p, d, shape[d]))
            out.append('%sm%d = arith.muli %s, %ss%d : index' % (p, d, offset, p, d))
            out.append('%so%d = arith.addi %sm%d, %s : index' % (p, d, p, d, indices[d]))
            offset = '%so%d' % (p, d)
        out += ['%stwo = arith.constant 2 : index' % p,
                '%sbytes = arith.muli %s, %stwo : index' % (p, offset, p),
                '%saddr = arith.addi %sbase, %sbytes : index' % (p, p, p),
                '%saddr64 = arith.index_cast %saddr : index to i64' % (p, p),
                '%stiles = arith.constant %s : i32' % (p, tiles),
                '%strans = arith.constant %d : i32' % (p, transpose == 'true'),
                'func.call @emu_ldmatrix(%%emu_ctx, %%emu_tid, %saddr64, %stiles, %strans) : '
                '(!llvm.ptr, index, i64, i32, i32) -> ()' % (p, p, p)]
        for r in range(int(tiles)):
            out += ['%sr%d = arith.constant %d : i32' % (p, r, r),
                    '%sw%d = func.call @emu_fragment(%%emu_ctx, %%emu_tid, %sr%d) : '
                    '(!llvm.ptr, index, i32) -> i32' % (p, r, p, r),
                    '%sb%d = vector.broadcast %sw%d : i32 to vector<1xi32>' % (p, r, p, r),
                    '%sh%d = vector.bitcast %sb%d : vector<1xi32> to vector<2x%s>' %
                    (p, r, p, r, element)]
        out += rows_to_vector(p, result, ['%sh%d' % (p, r) for r in range(int(tiles))], element)
        return out
    if mma:
        result, a, b, c, k, arows, atype, brows, btype = mma.groups()
        k, arows, brows = int(k), int(arows), int(brows)
        if atype != btype or (arows, brows) != ((4, 2) if k == 16 else (2, 1)):
            sys.exit('simt.py: no emulation for: ' + line.strip())
        registers = []
        for name, value, rows, count in (('a', a, arows, 4), ('b', b, brows, 2)):
            for r in range(count):
                if r >= rows:
                    registers.append('%szero' % p)
                    continue
                out += ['%s%s%dv = vector.extract %s[%d] : vector<2x%s> from vector<%dx2x%s>' %
                        (p, name, r, value, r, atype, rows, atype),
                        '%s%s%dw = vector.bitcast %s%s%dv : vector<2x%s> to vector<1xi32>' %
                        (p, name, r, p, name, r, atype),
                        '%s%s%d = vector.extract %s%s%dw[0] : i32 from vector<1xi32>' %
                        (p, name, r, p, name, r)]
                registers.append('%s%s%d' % (p, name, r))
        for r in range(4):
            out.append('%sc%d = vector.extract %s[%d, %d] : f32 from vector<2x2xf32>' %
                       (p, r, c, r // 2, r % 2))
        out += ['%szero = arith.constant 0 : i32' % p,
                '%sk = arith.constant %d : i32' % (p, k),
                '%stype = arith.constant %d : i32' % (p, MMA_TYPES[atype]),
                'func.call @emu_mma_sync(%%emu_ctx, %%emu_tid, %sk, %stype, %s, %s) : (!llvm.ptr, '
                'index, i32, i32, i32, i32, i32, i32, i32, i32, f32, f32, f32, f32) -> ()' %
                (p, p, ', '.join(registers), ', '.join('%sc%d' % (p, r) for r in range(4)))]
        for r in range(4):
            out += ['%sr%d = arith.constant %d : i32' % (p, r, r),
                    '%sd%d = func.call @emu_fragment_f32(%%emu_ctx, %%emu_tid, %sr%d) : '
                    '(!llvm.ptr, index, i32) -> f32' % (p, r, p, r)]
        out += ['%srow0 = vector.from_elements %sd0, %sd1 : vector<2xf32>' % (p, p, p),
                '%srow1 = vector.from_elements %sd2, %sd3 : vector<2xf32>' % (p, p, p)]
        out += rows_to_vector(p, result, ['%srow0' % p, '%srow1' % p], 'f32')
        return out
    nvvm = re.match(r'\s*(%\w+) = nvvm\.mma\.sync A\[(.*?)\]\s+B\[(.*?)\]\s+C\[(.*?)\]\s+'
                    r'\{layoutA = #nvvm.mma_layout<row>, layoutB = #nvvm.mma_layout<col>, '
                    r'(?:multiplicandAPtxType = #nvvm.mma_type<(b?f16)>, '
                    r'multiplicandBPtxType = #nvvm.mma_type<(b?f16)>, )?'
                    r'shape = #nvvm.shape<m = 16, n = 8, k = (16|8)>\} : '
                    r'\((i32|vector<2xf16>), (i32|vector<2xf16>), f32\) -> '
                    r'!llvm.struct<\(f32, f32, f32, f32\)>$', line)
    if nvvm:
        # nvvm.mma.sync on .b32 registers (how a bf16 kernel reaches PTX),
        # or f16 ones on vector<2xf16> (bitcast to .b32 here).
        result, a, b, c, atype, btype, k, aform, bform = nvvm.groups()
        # (The types are left out where the operands imply them: f16.)
        atype = atype or ('f16' if aform == 'vector<2xf16>' else None)
        btype = btype or ('f16' if bform == 'vector<2xf16>' else None)
        a, b, c = [[x.strip() for x in group.split(',')] for group in (a, b, c)]
        for name, regs, form in (('a', a, aform), ('b', b, bform)):
            if form == 'i32':
                continue
            for r, value in enumerate(regs):
                word = '%s%sw%d' % (p, name, r)
                out += ['%sv = vector.bitcast %s : vector<2xf16> to vector<1xi32>' % (word, value),
                        '%s = vector.extract %sv[0] : i32 from vector<1xi32>' % (word, word)]
                regs[r] = word
        k = int(k)
        if atype != btype or (len(a), len(b), len(c)) != ((4, 2, 4) if k == 16 else (2, 1, 4)):
            sys.exit('simt.py: no emulation for: ' + line.strip())
        out += ['%szero = arith.constant 0 : i32' % p,
                '%sk = arith.constant %d : i32' % (p, k),
                '%stype = arith.constant %d : i32' % (p, MMA_TYPES[atype]),
                'func.call @emu_mma_sync(%%emu_ctx, %%emu_tid, %sk, %stype, %s, %s) : (!llvm.ptr, '
                'index, i32, i32, i32, i32, i32, i32, i32, i32, f32, f32, f32, f32) -> ()' %
                (p, p, ', '.join((a + ['%szero' % p] * 4)[:4] + (b + ['%szero' % p] * 2)[:2]),
                 ', '.join(c))]
        struct = '!llvm.struct<(f32, f32, f32, f32)>'
        previous = '%ss' % p
        out.append('%s = llvm.mlir.poison : %s' % (previous, struct))
        for r in range(4):
            current = result if r == 3 else '%ss%d' % (p, r)
            out += ['%sr%d = arith.constant %d : i32' % (p, r, r),
                    '%sd%d = func.call @emu_fragment_f32(%%emu_ctx, %%emu_tid, %sr%d) : '
                    '(!llvm.ptr, index, i32) -> f32' % (p, r, p, r),
                    '%s = llvm.insertvalue %sd%d, %s[%d] : %s' %
                    (current, p, r, previous, r, struct)]
            previous = current
        return out
    sys.exit('simt.py: no emulation for: ' + line.strip())


#===----------------------------------------------------------------------===#
# argmax (the sampler's qk_argmax)
#===----------------------------------------------------------------------===#

def host_argmax(row):
    """runtime/src/sampling.cpp's argmax: NaN never wins, -0 == +0."""
    best = -math.inf
    for x in row:
        best = x if x > best else best
    for i, x in enumerate(row):
        if x == best:
            return i
    return 0


def argmax_rows(vocab):
    rng = random.Random(7)
    nan, inf = float('nan'), math.inf
    rows = []

    def gauss():
        return [rng.gauss(0, 1) for _ in range(vocab)]

    rows.append(gauss())                                   # plain random
    row = gauss()                                          # the max 4 times, spread
    for p in sorted(rng.sample(range(vocab), min(4, vocab)), reverse=True):
        row[p] = 9.5
    rows.append(row)
    row = gauss()                                          # ties at the end
    row[-1] = row[max(0, vocab - 2)] = 8.0
    rows.append(row)
    rows.append([float(rng.randrange(4)) for _ in range(vocab)])  # many ties
    rows.append([0.0] * vocab)                             # all equal
    row = gauss()                                          # NaNs, first one too
    for p in rng.sample(range(vocab), min(vocab, 1 + vocab // 10)) + [0]:
        row[p] = nan
    row[vocab // 2] = row[vocab - 1] = 7.0
    rows.append(row)
    rows.append([nan] * vocab)                             # all NaN: 0
    row = [nan if rng.random() < 0.5 else -inf for _ in range(vocab)]
    row[0], row[-1] = nan, -inf                            # only -inf and NaN
    rows.append(row)
    row = [-abs(x) - 1.0 for x in gauss()]                 # -0 and +0 tie
    row[vocab - 1], row[vocab // 3] = 0.0, -0.0
    rows.append(row)
    row = gauss()                                          # +inf twice
    row[vocab // 5], row[(4 * vocab) // 5] = inf, inf
    rows.append(row)
    row = [-1.0] * vocab                                   # the max in the last column
    row[-1] = 3.0
    rows.append(row)
    return rows


def check_argmax(emu, info, vocab):
    rows = argmax_rows(vocab)
    R = len(rows)
    logits = (ctypes.c_float * (R * vocab))(*[x for row in rows for x in row])
    ids = (ctypes.c_int32 * R)(*([-1] * R))
    # The reference sees the f32 values the kernel reads.
    expected = [host_argmax(logits[r * vocab:(r + 1) * vocab]) for r in range(R)]
    slots = (ctypes.c_void_p * 2)(ctypes.addressof(logits), ctypes.addressof(ids))
    status = emu.simt_launch(getattr(emu, 'wrap_qk_argmax'), slots,
                             (ctypes.c_int64 * 4)(R, R, 1, R), ctypes.c_int64(R),
                             ctypes.c_int64(info['block']), ctypes.c_int64(len(info['shared'])),
                             (ctypes.c_int64 * 8)(*info['shared']))
    assert status == 0, 'simt_launch failed'
    bad = sum(1 for u, v in zip(expected, ids) if u != v)
    print('%-20s vocab %d, %d rows, block %d: %s' % (
        'qk_argmax', vocab, R, info['block'],
        'ids equal' if bad == 0 else 'wrong %d: got %s, want %s' % (bad, list(ids), expected)))
    return bad == 0


def argmax(out, vocab):
    kernels = json.load(open(out + '/kernels.json'))
    ok = check_argmax(ctypes.CDLL(out + '/emu.so'), kernels['qk_argmax'], vocab)
    print('PASS' if ok else 'FAIL')
    return 0 if ok else 1


#===----------------------------------------------------------------------===#
# topk (the sampler's qk_topk)
#===----------------------------------------------------------------------===#

TOPK_COUNT = 256  # kTopCandidates of passes/Codegen/GPU/GpuKernelEmitter.h


def host_topk(row, count):
    """The best `count` (logit, id): logit descending, then id ascending;
    NaN left out; -0 == +0 (Python's float order); padded with (-inf, -1)."""
    order = heapq.nsmallest(count, (i for i, x in enumerate(row) if x == x),
                            key=lambda i: (-row[i], i))
    return [(row[i], i) for i in order] + [(-math.inf, -1)] * (count - len(order))


def topk_rows(vocab):
    rng = random.Random(11)
    nan, inf = float('nan'), math.inf
    rows = argmax_rows(vocab)
    rows.append([round(rng.gauss(0, 1), 1) for _ in range(vocab)])   # ties at the cut
    rows.append([0.0 if rng.random() < 0.5 else -0.0 for _ in range(vocab)])  # +-0 only
    row = [nan] * vocab                                    # fewer non-NaN than C
    for p in rng.sample(range(vocab), min(vocab, 100)):
        row[p] = rng.choice([-inf, -inf, rng.gauss(0, 1), 0.0, -0.0])
    rows.append(row)
    row = [float(i % 300) for i in range(vocab)]           # many equal maxima
    rows.append(row)
    return rows


def bits(x):
    return struct.unpack('<I', struct.pack('<f', x))[0]


def check_topk(emu, info, vocab, count=TOPK_COUNT):
    rows = topk_rows(vocab)
    R = len(rows)
    logits = (ctypes.c_float * (R * vocab))(*[x for row in rows for x in row])
    top_logits = (ctypes.c_float * (R * count))(*([float('nan')] * (R * count)))
    top_ids = (ctypes.c_int32 * (R * count))(*([-7] * (R * count)))
    slots = (ctypes.c_void_p * 3)(ctypes.addressof(logits), ctypes.addressof(top_logits),
                                  ctypes.addressof(top_ids))
    status = emu.simt_launch(getattr(emu, 'wrap_qk_topk'), slots,
                             (ctypes.c_int64 * 4)(R, R, 1, R), ctypes.c_int64(R),
                             ctypes.c_int64(info['block']), ctypes.c_int64(len(info['shared'])),
                             (ctypes.c_int64 * 8)(*info['shared']))
    assert status == 0, 'simt_launch failed'
    wrong = []
    for r in range(R):
        # The reference sees the f32 values the kernel reads.
        expected = host_topk(logits[r * vocab:(r + 1) * vocab], count)
        got = [(top_logits[r * count + j], top_ids[r * count + j]) for j in range(count)]
        if [(bits(x), i) for x, i in expected] != [(bits(x), i) for x, i in got]:
            j = next(j for j in range(count) if (bits(expected[j][0]), expected[j][1]) !=
                     (bits(got[j][0]), got[j][1]))
            wrong.append('row %d slot %d: got %r, want %r' % (r, j, got[j], expected[j]))
    print('%-20s vocab %d, %d rows, block %d: %s' % (
        'qk_topk', vocab, R, info['block'],
        'candidates equal' if not wrong else 'wrong %d: %s' % (len(wrong), '; '.join(wrong))))
    return not wrong


def topk(out, vocab):
    kernels = json.load(open(out + '/kernels.json'))
    ok = check_topk(ctypes.CDLL(out + '/emu.so'), kernels['qk_topk'], vocab)
    print('PASS' if ok else 'FAIL')
    return 0 if ok else 1


#===----------------------------------------------------------------------===#
# check
#===----------------------------------------------------------------------===#

def to_bf16(x):
    bits = struct.unpack('<I', struct.pack('<f', x))[0]
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) & 0xFFFF


def to_f16(x):
    return struct.unpack('<H', struct.pack('<e', x))[0]


def f32(x):
    return struct.unpack('<f', struct.pack('<f', x))[0]


def e4m3_value(code):
    """float8_e4m3fn code -> value (no infinities; S.1111.111 is NaN)."""
    e, m = (code >> 3) & 15, code & 7
    if e == 15 and m == 7:
        return float('nan')
    v = math.ldexp(m, -9) if e == 0 else math.ldexp(8 + m, e - 10)
    return -v if code & 0x80 else v


E4M3_POSITIVE = sorted((e4m3_value(c), c) for c in range(0x7f))


def to_e4m3(x):
    """x -> float8_e4m3fn code, round to nearest even (|x| <= 448 + rounding)."""
    a = abs(x)
    best = min(E4M3_POSITIVE, key=lambda vc: (abs(vc[0] - a), vc[1] & 1))
    return best[1] | (0x80 if math.copysign(1, x) < 0 else 0)


def fp8_act_quant(row):
    """The FP8 pack of one f32 row: per 128 columns scale = amax / 448 (1 if
    the block is all zero) and codes e4m3(x / scale), in f32 arithmetic."""
    codes, scales = [], []
    for j in range(0, len(row), 128):
        block = row[j:j + 128]
        amax = max(abs(v) for v in block)
        scale = 1.0 if amax == 0 else f32(amax / 448.0)
        scales.append(scale)
        codes += [to_e4m3(f32(v / scale)) for v in block]
    return codes, scales


def split_top(s):
    parts, depth, cur = [], 0, ''
    for ch in s:
        depth += {'<': 1, '(': 1, '>': -1, ')': -1}.get(ch, 0)
        if ch == ',' and depth == 0:
            parts.append(cur.strip())
            cur = ''
        else:
            cur += ch
    return parts + ([cur.strip()] if cur.strip() else [])


def parse_type(t):
    t = re.sub(r'^%\w+: ', '', t.strip()).split(' {')[0].strip('()')
    if t.startswith('!qtf.kv_cache') or t.startswith('!kv'):
        fields = re.search(r'layers = (\d+), kv_heads = (\d+), head_dim = (\d+), '
                           r'page_size = (\d+), (\w+)>', t)
        if not fields:
            return ('kv', None)
        return ('kv', int(fields.group(1)) * int(fields.group(2)) * int(fields.group(3)) *
                int(fields.group(4)), fields.group(5))
    if t.startswith('!qtf.linear_state'):
        fields = dict(re.findall(r'(\w+) = (\d+)', t))
        return ('state', int(fields['layers']), int(fields['conv_channels']),
                int(fields['conv_window']), int(fields['heads']), int(fields['key_dim']),
                int(fields['value_dim']))
    match = re.match(r'tensor<(.*)x(\w+)>', t)
    return ('tensor', match.group(1).split('x'), match.group(2))


def check(source, out, runs=(3, 2), bounds=None):
    random.seed(1)
    text = open(source).read()
    # Expand type aliases (`!st = !qtf.linear_state<...>`) so types parse.
    for alias, definition in re.findall(r'^(![\w.]+) = (.*)$', text, re.M):
        text = re.sub(re.escape(alias) + r'\b(?! =)', lambda _: definition, text)
    canon = open(out + '/canon.mlir').read()
    cpu_text = open(out + '/cpu_full.mlir').read()
    kernels = json.load(open(out + '/kernels.json'))
    emu = ctypes.CDLL(out + '/emu.so')
    cpu = ctypes.CDLL(out + '/cpu.so')

    cache = re.search(r'kv_cache<layers = (\d+), kv_heads = (\d+), head_dim = (\d+), '
                      r'page_size = (\d+)', text)
    layers, kv_heads, head_dim, page = (int(g) for g in cache.groups()) if cache else (1, 1, 1, 16)
    pages = 8
    T, B, P, R = sum(runs), len(runs), 4, 2
    if B > 4:
        sys.exit('simt.py: RUNS must have at most 4 requests')
    positions = [page + 1, page + 2, page + 3, 2 * page + 8, 2 * page + 9]
    block_table = [5, 2, 7, 0, 1, 3, 6, 4]
    if tuple(runs) != (3, 2) and cache:
        # Request r's tokens follow a cached prefix; its pages come from a
        # shuffled pool (its own RNG: the data below stays as for 3,2).
        prefixes = [page + 1, 5, 2 * page + 8, 2 * page - 1]
        needed = [(prefixes[r] + n + page - 1) // page for r, n in enumerate(runs)]
        P = max(needed)
        pages = sum(needed) + 2
        pool = list(range(pages))
        random.Random(5).shuffle(pool)
        spare = pool[-2:]
        positions, block_table, taken = [], [], 0
        for r, n in enumerate(runs):
            positions += [prefixes[r] + i for i in range(n)]
            row = pool[taken:taken + needed[r]]
            taken += needed[r]
            block_table += row + [spare[i % 2] for i in range(P - len(row))]
    sizes = {'T': T, 'B': B, 'P': P, 'R': R}
    inputs = {'positions': positions,
              'token_seq': [r for r, n in enumerate(runs) for _ in range(n)],
              'block_table': block_table,
              'logit_rows': [min(2, T - 1), min(4, T - 1)],
              # (temporal, height, width) per token; linear-attention slots of
              # the two requests, out of `state_slots` slots.
              'mrope_positions': [p for t in range(T) for p in (20 + t, 7 * t + 1, 30 - 3 * t)],
              'state_slots': [3, 1, 0, 2][:B],
              # The vision program: each request's tokens are one image.
              'segment_bounds': [b for r, n in enumerate(runs)
                                 for _ in range(n) for b in (sum(runs[:r]), sum(runs[:r + 1]))]}
    state_slots = 4
    kv_floats = pages * layers * page * kv_heads * head_dim

    step = re.search(r'func.func @step\((.*?)\) ->', text).group(1)
    step_inputs = dict(('%arg' + n, name) for n, name in
                       re.findall(r'%arg(\d+): [^%]*?\{qtf.input = "(\w+)"\}', step))
    weight_names = dict(re.findall(r'(%\d+) = qtf.weight \["([^"]+)"', text))
    signatures = {}
    for m in re.finditer(r'func.func @(qk\d+_\w+)\((.*?)\) -> (.*?) attributes '
                         r'\{qkernel.kernel, qkernel.kind = #qkernel.kind<(\w+)>', text):
        signatures[m.group(1)] = ([parse_type(a) for a in split_top(m.group(2))],
                                  [parse_type(r) for r in split_top(m.group(3).strip('()'))],
                                  m.group(4))
    operands = dict((m.group(1), [o.strip() for o in m.group(2).split(',')]) for m in
                    re.finditer(r'qkernel.launch @kernels::@(qk\d+_\w+)\((.*?)\)', text))
    # The vision program's merged rows: values with R rows (T / 4), made by
    # a kernel that reads its input through qtf.merge_rows, or from them.
    merged = set()
    for m in re.finditer(r'(%\d+) = qkernel.launch @kernels::@(qk\d+_\w+)\((.*?)\)', text):
        body = re.search(r'func.func @%s\(.*?\n    \}' % m.group(2), text, re.S)
        # (A cuBLASLt GEMM has a descriptor, not a function.)
        body = body.group(0) if body else ''
        if 'qtf.merge_rows' in body or any(o.strip() in merged for o in m.group(3).split(',')):
            merged.add(m.group(1))

    def grid(txt, name, variant=None):
        # The grid of NAME's #qkernel.launch, or of its decode / combine variant.
        # (A cuBLASLt GEMM's decode variant is in its descriptor, spelled in full.)
        field = ('launch = #qkernel.launch<' if variant is None
                 else '%s = (?:#qkernel.variant)?<"[^"]*", ' % variant)
        factors = re.search(r'qkernel.launch @kernels::@%s\(.*?%sgrid = \[(.*?)\]' %
                            (name, field), txt)
        n = 1
        for f in factors.group(1).split(','):
            f = f.strip()
            n *= sizes[f] if f in sizes else int(f)
        return n

    def count(shape, lead):
        n = 1
        for i, d in enumerate(shape):
            n *= (lead if i == 0 else P) if d == '?' else int(d)
        return n

    def tensor(what, shape, dtype, lead):
        n = count(shape, lead)
        if dtype == 'i32':
            data = inputs.get(what) or [random.randrange(1000) for _ in range(n)]
            return (ctypes.c_int32 * n)(*data)
        if dtype == 'f8E4M3FN':  # FP8 weight codes: any but the NaN ones
            return (ctypes.c_uint8 * n)(*[c for c in (random.randrange(256) for _ in range(2 * n))
                                          if c & 0x7f != 0x7f][:n])
        norm = 'norm' in what
        values = [(1.0 if norm else 0.0) + random.gauss(0, 0.5 if norm else 1.0)
                  for _ in range(min(n, 1 << 20))]
        if dtype == 'bf16':
            return (ctypes.c_uint16 * n)(*map(to_bf16, values))
        if dtype == 'f16':
            return (ctypes.c_uint16 * n)(*map(to_f16, values))
        return (ctypes.c_float * n)(*values)

    def prepare(name):
        args, results, kind = signatures[name]
        slots, outputs = [], []
        rows = R if any(step_inputs.get(o) == 'logit_rows' for o in operands[name]) else T
        for arg, operand in zip(args, operands[name]):
            if arg[0] == 'kv':
                # f32 caches as before; bf16 / f16 ones hold rounded values.
                n = pages * arg[1] if arg[1] else kv_floats
                for _ in range(2):
                    values = [random.gauss(0, 1) for _ in range(n)]
                    if arg[1] and arg[2] in ('bf16', 'f16'):
                        convert = to_bf16 if arg[2] == 'bf16' else to_f16
                        slots.append((ctypes.c_uint16 * n)(*map(convert, values)))
                    else:
                        slots.append((ctypes.c_float * n)(*values))
                    outputs.append(len(slots) - 1)
                continue
            if arg[0] == 'state':
                layers_, channels, window, heads, dk, dv = arg[1:]
                for n in (state_slots * layers_ * window * channels,
                          state_slots * layers_ * heads * dk * dv):
                    slots.append((ctypes.c_float * n)(*[random.gauss(0, 1) for _ in range(n)]))
                    outputs.append(len(slots) - 1)
                continue
            what = step_inputs.get(operand) or weight_names.get(operand, 'activation')
            lead = {'logit_rows': R, 'block_table': B}.get(what, R if operand in merged else T)
            slots.append(tensor(what, arg[1], arg[2], lead))
        if kind == 'embedding':  # ids of the table rows that hold random data
            width = int(args[0][1][1])
            for i in range(T):
                slots[1][i] = random.randrange(min(int(args[0][1][0]), (1 << 20) // width))
        if kind == 'experts':  # routing ids of existing experts
            experts = int(re.search(r'func.func @%s\(.*?num_experts = (\d+)' % name, text,
                                    re.S).group(1))
            ids = slots[1]
            for i in range(len(ids)):
                ids[i] = random.randrange(experts)
        for result in results:
            if result[0] == 'tensor':
                n = count(result[1], rows if kind == 'matmul'
                          else R if any(o in merged for o in operands[name]) else T)
                if result[2] == 'i32':
                    slots.append((ctypes.c_int32 * n)(*([-1] * n)))
                else:
                    slots.append((ctypes.c_float * n)(*([float('nan')] * n)))
                outputs.append(len(slots) - 1)
        return slots, outputs, rows

    def pointers(slots):
        return (ctypes.c_void_p * len(slots))(*[ctypes.addressof(s) for s in slots])

    def run_gpu(name, slots, launched=None, variant=None, splits=None, factor=1):
        # `launched`: the program kernel whose launch carries the grid
        # (`variant`: of its decode or combine kernel); `splits`: the split-K
        # count passed after the step sizes; `factor`: blocks per grid item.
        info = kernels[name]
        dims = [T, B, P, R] + ([splits] if splits is not None else [])
        status = emu.simt_launch(getattr(emu, 'wrap_' + name), pointers(slots),
                                 (ctypes.c_int64 * len(dims))(*dims),
                                 ctypes.c_int64(grid(canon, launched or name, variant) * factor),
                                 ctypes.c_int64(info['block']),
                                 ctypes.c_int64(len(info['shared'])),
                                 (ctypes.c_int64 * 8)(*info['shared']))
        assert status == 0, 'simt_launch failed'

    def run_cpu(name, slots):
        getattr(cpu, name)(pointers(slots), (ctypes.c_int64 * 4)(T, B, P, R), ctypes.c_int64(0),
                           ctypes.c_int64(grid(cpu_text, name)))

    def run_decode(name, slots, splits):
        # NAME_decode on grid x splits blocks with a partials array after
        # the slots; with splits > 1, NAME_decode_combine merges them.
        floats = int(re.search(r'qkernel.launch @kernels::@%s\(.*?partial_floats = (\d+)' % name,
                               canon).group(1))
        partials = (ctypes.c_float * (T * splits * floats))(*([float('nan')] * (T * splits * floats)))
        run_gpu(name + '_decode', slots + [partials], name, 'decode', splits, splits)
        if splits > 1:
            run_gpu(name + '_decode_combine', slots + [partials], name, 'combine', splits)

    ok = True
    # NAME_decode (decode variant of NAME) runs only on decode-only steps
    # (every request has one token, T == B), against the CPU's NAME: whole
    # (1 split), and split-K into 3 and 32 parts (empty parts included).
    program = [n for n in kernels if re.match(r'qk\d+', n) and not n.endswith(('_decode', '_combine'))]
    decode_only = all(n == 1 for n in runs)
    checks = []
    for name in sorted(program, key=lambda n: int(re.match(r'qk(\d+)', n).group(1))):
        checks.append((name, name, None))
        if decode_only and name + '_decode' in kernels:
            checks += [(name, name + '_decode', splits) for splits in (1, 3, 32)]
    # A cuBLASLt GEMM's decode variant (FP8: the generated kernel with the
    # GEMM kernel's signature, no splits) against the CPU's GEMM kernel.
    if decode_only:
        checks += [(n[:-len('_decode')], n, 0) for n in sorted(kernels)
                   if n.endswith('_decode') and n[:-len('_decode')] not in kernels
                   and n[:-len('_decode')] in signatures]
    for name, gpu_name, splits in checks:
        if name.endswith('_pack'):
            gemm = name[:-len('_pack')]
            slots, _, rows = prepare(gemm)
            weight = [a for a in signatures[gemm][0] if a[0] == 'tensor' and a[1][0] != '?'][0]
            K, dtype = int(weight[1][-1]), weight[2]
            if dtype == 'f8E4M3FN':
                # FP8: codes [rows, K] and scales [K / 128][rows], against
                # HF's act_quant done here (bit for bit).
                codes = (ctypes.c_uint8 * (rows * K))()
                scales = (ctypes.c_float * (rows * K // 128))()
                run_gpu(name, [slots[0], codes, scales])
                bad = 0
                for m in range(rows):
                    want_codes, want_scales = fp8_act_quant(list(slots[0][m * K:(m + 1) * K]))
                    bad += sum(1 for c in range(K) if codes[m * K + c] != want_codes[c])
                    bad += sum(1 for j in range(K // 128) if scales[j * rows + m] != want_scales[j])
                ok &= bad == 0
                print('%-20s %s' % (name, 'bit-exact (fp8 codes and scales)' if bad == 0
                                    else '%d mismatches' % bad))
                continue
            gather = rows == R
            convert = {'bf16': to_bf16, 'f16': to_f16}.get(dtype, lambda v: v)
            element = ctypes.c_float if dtype == 'f32' else ctypes.c_uint16
            packed = (element * (rows * K))()
            run_gpu(name, [slots[0]] + ([slots[1]] if gather else []) + [packed])
            x = slots[0]
            bad = sum(1 for m in range(rows) for c in range(K)
                      if packed[m * K + c] != convert(
                          x[(inputs['logit_rows'][m] if gather else m) * K + c]))
            ok &= bad == 0
            print('%-20s %s' % (name, 'bit-exact' if bad == 0 else '%d mismatches' % bad))
            continue
        slots, outputs, _ = prepare(name)
        reference = [type(s).from_buffer_copy(s) for s in slots]
        emulated = [type(s).from_buffer_copy(s) for s in slots]
        run_cpu(name, reference)
        if gpu_name == name:
            run_gpu(name, emulated)
        elif splits == 0:
            run_gpu(gpu_name, emulated, name, 'decode')
        else:
            run_decode(name, emulated, splits)
        # Per output, over the elements either side wrote (in-place caches
        # and states keep most of theirs): the largest relative error.
        rel, bad, written = 0.0, 0, 0
        for o in outputs:
            before = slots[o]
            if getattr(type(before), '_type_', None) is ctypes.c_uint16:  # bf16 / f16 cache bits
                changed = [(u, v) for u, v, w in zip(reference[o], emulated[o], before)
                           if u != w or v != w]
                written += len(changed)
                bad += sum(1 for u, v in changed if u != v)
                continue
            if isinstance(reference[o][0], int):  # ids: equal or wrong
                bad += sum(1 for u, v in zip(reference[o], emulated[o]) if u != v)
                written += len(before)
                continue
            num = den = 0.0
            for u, v, w in zip(reference[o], emulated[o], before):
                if u == w and v == w:
                    continue
                written += 1
                if not (math.isfinite(u) and math.isfinite(v)):
                    bad += 1
                    continue
                num += (u - v) ** 2
                den += u * u
            rel = max(rel, math.sqrt(num / den) if den else 0.0)
        bound = (bounds or {}).get(gpu_name, 1e-6)
        ok &= bad == 0 and rel < bound and written > 0
        label = gpu_name + (' x%d' % splits if splits and splits > 1 else '')
        print('%-20s rel %.1e (%d written) %s' % (label, rel, written,
                                                   'non-finite or wrong %d' % bad if bad else ''))
    if 'qk_argmax' in kernels:
        vocab = int(re.search(r'func.func @step\(.*?\) -> \(?tensor<\?x(\d+)xf32>', text).group(1))
        ok &= check_argmax(emu, kernels['qk_argmax'], vocab)
    if 'qk_topk' in kernels:
        vocab = int(re.search(r'func.func @step\(.*?\) -> \(?tensor<\?x(\d+)xf32>', text).group(1))
        ok &= check_topk(emu, kernels['qk_topk'], vocab)
    print('PASS' if ok else 'FAIL')
    return 0 if ok else 1


#===----------------------------------------------------------------------===#
# gemm-check (the hand-written tensor-core kernels of simt/mma-gemm*.mlir)
#===----------------------------------------------------------------------===#

GEMM_SIZE = 64


def b16_value(bits, bf16):
    if bf16:
        return struct.unpack('<f', struct.pack('<I', bits << 16))[0]
    return struct.unpack('<e', struct.pack('<H', bits))[0]


def gemm_check(out):
    """Runs every kernel mma_{nt,nn}_{f16,bf16}[_k8][_nvvm] of OUT/emu.so (one
    block, A 64x64 row-major, B 64x64 as B^T (nt) or B (nn), C 64x64 f32)
    on random inputs and compares C with a host GEMM of the same rounded
    inputs (exact products, double sums): every element within 1e-6 of
    sum_k |a_ik * b_kj| (the f32 rounding of a tensor core's accumulation
    order is well inside; a misplaced fragment element is not)."""
    kernels = json.load(open(out + '/kernels.json'))
    emu = ctypes.CDLL(out + '/emu.so')
    n = GEMM_SIZE
    rng = random.Random(11)
    ok = True
    checked = 0
    for name, info in sorted(kernels.items()):
        match = re.match(r'mma_(nt|nn)_(b?f16)(_k8)?(?:_nvvm)?$', name)
        if not match:
            continue
        layout, dtype, k8 = match.groups()
        bf16 = dtype == 'bf16'
        encode = to_bf16 if bf16 else to_f16
        bits_a = [encode(rng.gauss(0, 1)) for _ in range(n * n)]
        bits_b = [encode(rng.gauss(0, 1)) for _ in range(n * n)]
        a = [b16_value(x, bf16) for x in bits_a]
        b = [b16_value(x, bf16) for x in bits_b]
        # element (k, j) of B: row-major B, or row-major B^T
        bkj = (lambda k, j: b[j * n + k]) if layout == 'nt' else (lambda k, j: b[k * n + j])
        c = (ctypes.c_float * (n * n))(*([float('nan')] * (n * n)))
        slots = [(ctypes.c_uint16 * (n * n))(*bits_a), (ctypes.c_uint16 * (n * n))(*bits_b), c]
        assert info['slots'] == 3 and info['dims'] == 0, name + ': not a GEMM tile kernel'
        status = emu.simt_launch(getattr(emu, 'wrap_' + name),
                                 (ctypes.c_void_p * 3)(*[ctypes.addressof(x) for x in slots]),
                                 (ctypes.c_int64 * 1)(0), ctypes.c_int64(1),
                                 ctypes.c_int64(info['block']),
                                 ctypes.c_int64(len(info['shared'])),
                                 (ctypes.c_int64 * 8)(*info['shared']))
        if status != 0:
            # 3: collectives in divergent code, 4: an ldmatrix row outside
            # shared memory or misaligned (simt_runtime.c)
            print('%-14s simt_launch failed (status %d)' % (name, status))
            ok = False
            continue
        worst, bad = 0.0, 0
        for i in range(n):
            for j in range(n):
                products = [a[i * n + k] * bkj(k, j) for k in range(n)]
                reference = math.fsum(products)
                scale = math.fsum(abs(x) for x in products)
                got = c[i * n + j]
                error = abs(got - reference) / scale if math.isfinite(got) else math.inf
                worst = max(worst, error)
                bad += not error <= 1e-6
        ok &= bad == 0
        checked += 1
        print('%-14s %s %s %dx%dx%d: max err %.1e of sum|ab|%s' %
              (name, 'm16n8k8' if k8 else 'm16n8k16', dtype, n, n, n, worst,
               ', %d elements wrong' % bad if bad else ''))
    ok &= checked > 0
    print('PASS' if ok else 'FAIL')
    return 0 if ok else 1


if __name__ == '__main__':
    command = sys.argv[1] if len(sys.argv) > 1 else ''
    if command == 'lower':
        lower(sys.argv[2], sys.argv[3])
    elif command == 'module':
        nested_module(sys.argv[2])
    elif command == 'argmax':
        sys.exit(argmax(sys.argv[2], int(sys.argv[3])))
    elif command == 'topk':
        sys.exit(topk(sys.argv[2], int(sys.argv[3])))
    elif command == 'gemm-check':
        sys.exit(gemm_check(sys.argv[2]))
    elif command == 'check':
        sys.exit(check(sys.argv[2], sys.argv[3],
                       tuple(int(n) for n in sys.argv[4].split(',')) if len(sys.argv) > 4 else (3, 2),
                       dict((name, float(rel)) for name, rel in
                            (item.split('=') for item in sys.argv[5].split(',')))
                       if len(sys.argv) > 5 else None))
    else:
        sys.exit(__doc__)
