/* ops/cuda/emu.cc: the host emulation of the CUDA runtime subset and cuBLAS GEMM (see emu.h).
 *
 * Three parts:
 *   - device memory: one reserved address range (PROT_NONE, MAP_NORESERVE); each allocation gets
 *     its own pages plus an inaccessible guard page, the user block placed at the end of its pages,
 *     addresses never reused. Allocations stay PROT_NONE while host code runs. Inside a "device
 *     scope" (a grid, a copy/memset, a cuBLAS call; nested by a counter) an allocation is opened
 *     (mprotect RW) when the scope names it (kernel pointer arguments, copy ends, GEMM operands) or
 *     when device code first touches it: a SIGSEGV handler opens a live allocation faulted on from
 *     inside a scope of this OS thread and passes every other fault on (to the previous handler or
 *     the default action: the crash that catches host code reading device memory). Leaving the
 *     outermost scope closes what was opened, so the cost is per allocation touched, not per live
 *     one. Under gdb: `handle SIGSEGV nostop noprint pass`.
 *   - the scheduler: a grid runs block after block; the threads of a block run as fibers (a small
 *     context switch in assembly on x86-64, ucontext + _setjmp/_longjmp elsewhere). A fiber takes
 *     the next unstarted thread of the block each time its thread finishes, so a block without
 *     barriers runs all its threads in one fiber; a thread that reaches __syncthreads parks its
 *     fiber and the next fiber starts the following thread. Once every thread has started and
 *     every live one waits, all are released in order.
 *   - the runtime API (last error per OS thread, copies, streams as no-ops) and cuBLAS GEMM with
 *     cuBLAS's argument checks and column-major semantics (double accumulation);
 *   - stream capture and graphs: a capturing stream keeps a list of std::function records (a
 *     launch: the launcher and a copy of its arguments; a copy or memset: its operands; a GEMM:
 *     its checked arguments), cudaGraphInstantiate shares that list with the executable graph
 *     and cudaGraphLaunch runs it in order. The calls CUDA refuses during a capture refuse here
 *     too (refuse_in_capture) and invalidate it.
 *
 * Everything process-wide here stands in for the driver, so it is necessarily global state of the
 * emulation: it is all in one struct (`g` below), guarded by one recursive mutex (a grid, copy or
 * GEMM holds it for its duration: calls from several OS threads are serialised). */
#undef _FORTIFY_SOURCE /* __longjmp_chk rejects the jumps between fiber stacks */

#include "ops/cuda/emu.h"

#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define OD_EMU_ASAN 1 /* tell AddressSanitizer about every stack switch */
#endif

#if defined(__x86_64__) && !defined(OD_EMU_PORTABLE_SWITCH)
#define OD_EMU_ASM_SWITCH 1
#endif

__thread uint3 threadIdx;
__thread uint3 blockIdx;
__thread uint3 blockDim;
__thread uint3 gridDim;

#ifdef OD_EMU_ASM_SWITCH
/* od_emu_switch(&save_sp, to_sp): saves the callee-saved registers on the current stack, stores its
 * stack pointer in *save_sp, and resumes the context at to_sp. (MXCSR and the x87 control word are
 * not switched: nothing in kernels changes them.) */
extern "C" void od_emu_switch(void **save_sp, void *to_sp);
asm(R"(
  .text
  .p2align 4
  .globl od_emu_switch
  .hidden od_emu_switch
  .type od_emu_switch, @function
od_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size od_emu_switch, .-od_emu_switch
)");
#endif

namespace {

constexpr size_t kAlign = 64;               /* alignment of device pointers */
constexpr size_t kFiberStack = 256 * 1024;  /* stack of one emulated GPU thread */
constexpr unsigned char kPoison = 0xff;     /* fresh allocations: NaN floats, -1 integers */

struct chunk {
  char *pages;       /* first page of the allocation (the guard page follows pages + span) */
  size_t span;       /* bytes of its pages, guard excluded */
  size_t bytes;      /* requested size; the user block is [user, user + bytes) */
  bool open;         /* RW inside the current device scope */
};

struct fiber {
  char *stack_map;   /* mmap'd: guard page, then the stack */
  unsigned index;
#ifdef OD_EMU_ASM_SWITCH
  void *sp;          /* saved stack pointer while switched out */
#else
  ucontext_t uc;
  jmp_buf jb;
  bool started;
#endif
  bool waiting;      /* parked at a barrier (else: idle, its thread finished) */
  uint3 tid;
  void *asan_fake;   /* AddressSanitizer's fake stack while switched out */
};

struct emu_state {
  std::recursive_mutex mu;

  /* device memory */
  char *base = nullptr;
  size_t reserved = 0, used = 0, page = 4096;
  bool reserve_failed = false;
  std::map<uintptr_t, chunk> live; /* by user pointer */
  size_t live_bytes = 0, bad_frees = 0;
  int depth = 0;                   /* device scopes entered (by the OS thread holding mu) */
  std::vector<chunk *> opened;     /* allocations opened in the current scope */
  bool poison = true;
  struct sigaction old_segv;
  std::map<uintptr_t, size_t> pinned; /* cudaHostAlloc blocks: start -> bytes */

  /* streams that capture (begun, not ended) */
  std::vector<cudaStream_t> captures;

  /* scheduler */
#ifdef OD_EMU_ASM_SWITCH
  void *sched_sp = nullptr;
#else
  jmp_buf sched_jb;
#endif
  fiber *current = nullptr;
  const void *sched_stack = nullptr; /* the scheduler's stack, for AddressSanitizer */
  size_t sched_stack_size = 0;
  bool in_grid = false, failed = false;
  std::vector<fiber *> all, free_fibers, waiting, released;
  void (*body)(void *) = nullptr;
  void *closure = nullptr;
  unsigned nthreads = 0, next = 0, bx = 1, by = 1;
  int bar_count = 0, bar_arrived = 0, bar_result_count = 0, bar_result_arrived = 0;
};

/* Never destroyed: kernels may still run from other static destructors, and LeakSanitizer must
 * find the fibers through it at exit. */
union state_holder {
  emu_state v;
  state_holder() : v() {}
  ~state_holder() {}
} g_holder;
emu_state &g = g_holder.v;
thread_local cudaError_t last_error = cudaSuccess;
thread_local bool in_device_scope = false; /* this OS thread is inside a device scope */
std::atomic<int> n_captures{0};            /* g.captures.size(), readable without the lock */

cudaError_t fail(cudaError_t e) {
  last_error = e;
  return e;
}

bool refuse_in_capture(); /* below, with the streams */

/* ---- device memory ---------------------------------------------------------------------------- */

bool in_region(const void *p) {
  return g.base && (const char *)p >= g.base && (const char *)p < g.base + g.used;
}

/* The live allocation whose user block holds [p, p + bytes), or nullptr. */
chunk *find_chunk(const void *p, size_t bytes) {
  if (!in_region(p) || g.live.empty()) return nullptr;
  auto it = g.live.upper_bound((uintptr_t)p);
  if (it == g.live.begin()) return nullptr;
  --it;
  uintptr_t user = it->first;
  if ((uintptr_t)p + bytes > user + it->second.bytes || (uintptr_t)p + bytes < (uintptr_t)p) return nullptr;
  return &it->second;
}

void protect(const chunk &c, int prot) { (void)mprotect(c.pages, c.span, prot); }

/* Opens c for the current device scope. */
bool open_chunk(chunk *c) {
  if (c->open) return true;
  if (mprotect(c->pages, c->span, PROT_READ | PROT_WRITE) != 0) return false;
  c->open = true;
  g.opened.push_back(c); /* capacity reserved in enter_device: no allocation here */
  return true;
}

void open_ptr(const void *p) {
  if (chunk *c = find_chunk(p, 1)) (void)open_chunk(c);
}

void enter_device() {
  if (g.depth++ > 0) return;
  g.opened.reserve(g.live.size() + 1);
  in_device_scope = true;
}

void leave_device() {
  if (--g.depth > 0) return;
  for (chunk *c : g.opened) {
    protect(*c, PROT_NONE);
    c->open = false;
  }
  g.opened.clear();
  in_device_scope = false;
}

struct device_scope {
  device_scope() { enter_device(); }
  ~device_scope() { leave_device(); }
  device_scope(const device_scope &) = delete;
  device_scope &operator=(const device_scope &) = delete;
};

/* Device code touching a closed allocation lands here: open it and retry the access. Anything else
 * goes to the handler that was there before (or the default action: the process dies). Runs on
 * the faulting thread, synchronously, never inside the allocator: the map lookup is safe. */
void on_segv(int sig, siginfo_t *si, void *ctx) {
  if (in_device_scope && g.depth > 0) {
    chunk *c = find_chunk(si->si_addr, 1);
    if (c && !c->open && open_chunk(c)) return;
  }
  const struct sigaction &old = g.old_segv;
  if ((old.sa_flags & SA_SIGINFO) && old.sa_sigaction) {
    old.sa_sigaction(sig, si, ctx);
  } else if (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN) {
    old.sa_handler(sig);
  } else {
    signal(SIGSEGV, SIG_DFL); /* the access repeats and kills the process */
  }
}

bool reserve_region() {
  if (g.base) return true;
  if (g.reserve_failed) return false;
  long ps = sysconf(_SC_PAGESIZE);
  if (ps > 0) g.page = (size_t)ps;
  const char *poison = getenv("OD_EMU_POISON");
  g.poison = !(poison && poison[0] == '0');
  for (size_t gib : {1024, 256, 64, 16, 4}) {
    size_t size = gib << 30;
    void *p = mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p != MAP_FAILED) {
      g.base = (char *)p;
      g.reserved = size;
      break;
    }
  }
  if (!g.base) {
    g.reserve_failed = true;
    return false;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  (void)sigaction(SIGSEGV, &sa, &g.old_segv);
  return true;
}

/* ---- scheduler ---------------------------------------------------------------------------------- */

void fiber_main();

#ifdef OD_EMU_ASM_SWITCH
void raw_to_scheduler(fiber *f) { od_emu_switch(&f->sp, g.sched_sp); }

void raw_resume(fiber *f) { od_emu_switch(&g.sched_sp, f->sp); }

/* A fresh stack whose "saved context" returns into fiber_main. */
void reset_fiber(fiber *f) {
  /* Stack tops staggered by fiber so that parked contexts do not share cache sets. */
  uintptr_t top = (uintptr_t)(f->stack_map + g.page + kFiberStack) - (f->index % 64) * 208;
  top &= ~(uintptr_t)15;
  void **sp = (void **)top;
  *--sp = nullptr;             /* fiber_main's return address (it never returns): sp % 16 == 8 */
  *--sp = (void *)&fiber_main; /* where od_emu_switch's ret goes */
  for (int i = 0; i < 6; i++) *--sp = nullptr; /* rbp rbx r12-r15 */
  f->sp = sp;
  f->waiting = false;
}
#else
void raw_to_scheduler(fiber *f) {
  if (_setjmp(f->jb) == 0) _longjmp(g.sched_jb, 1);
}

void raw_resume(fiber *f) {
  if (_setjmp(g.sched_jb) == 0) {
    if (!f->started) {
      f->started = true;
      setcontext(&f->uc);
    }
    _longjmp(f->jb, 1);
  }
}

void reset_fiber(fiber *f) {
  getcontext(&f->uc);
  f->uc.uc_stack.ss_sp = f->stack_map + g.page;
  f->uc.uc_stack.ss_size = kFiberStack - (f->index % 64) * 208;
  f->uc.uc_link = nullptr;
  makecontext(&f->uc, fiber_main, 0);
  f->started = false;
  f->waiting = false;
}
#endif

/* Called by a fiber on entry and after each switch back to it. */
void fiber_arrived(fiber *f) {
#ifdef OD_EMU_ASAN
  __sanitizer_finish_switch_fiber(f->asan_fake, &g.sched_stack, &g.sched_stack_size);
#else
  (void)f;
#endif
}

void switch_to_scheduler(fiber *f) {
#ifdef OD_EMU_ASAN
  __sanitizer_start_switch_fiber(&f->asan_fake, g.sched_stack, g.sched_stack_size);
#endif
  raw_to_scheduler(f);
  fiber_arrived(f);
}

void resume_fiber(fiber *f) {
#ifdef OD_EMU_ASAN
  void *fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, f->stack_map + g.page, kFiberStack);
  raw_resume(f);
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
  raw_resume(f);
#endif
}

void fiber_main() {
  fiber *f = g.current;
  fiber_arrived(f);
  for (;;) {
    while (g.next < g.nthreads && !g.failed) {
      unsigned t = g.next++;
      f->tid = uint3{t % g.bx, (t / g.bx) % g.by, t / (g.bx * g.by)};
      threadIdx = f->tid;
      g.body(g.closure);
    }
    f->waiting = false;
    switch_to_scheduler(f);
  }
}

fiber *get_fiber() {
  if (!g.free_fibers.empty()) {
    fiber *f = g.free_fibers.back();
    g.free_fibers.pop_back();
    return f;
  }
  fiber *f = new (std::nothrow) fiber();
  if (!f) return nullptr;
  void *m = mmap(nullptr, kFiberStack + g.page, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) {
    delete f;
    return nullptr;
  }
  f->stack_map = (char *)m;
  f->index = (unsigned)g.all.size();
  (void)mprotect(f->stack_map, g.page, PROT_NONE); /* stack overflow guard */
  try {
    g.all.push_back(f);
    g.free_fibers.reserve(g.all.size());
    g.waiting.reserve(g.all.size());
    g.released.reserve(g.all.size());
  } catch (...) {
    munmap(m, kFiberStack + g.page);
    delete f;
    return nullptr;
  }
  reset_fiber(f);
  return f;
}

void resume(fiber *f) {
  g.current = f;
  threadIdx = f->tid;
  resume_fiber(f);
  g.current = nullptr;
  if (!f->waiting) g.free_fibers.push_back(f);
}

/* Parked fibers of a failed block are abandoned: their stacks are reinitialised. */
void abandon_waiting() {
  for (fiber *f : g.waiting) {
#ifdef OD_EMU_ASAN
    ASAN_UNPOISON_MEMORY_REGION(f->stack_map + g.page, kFiberStack);
#endif
    reset_fiber(f);
    g.free_fibers.push_back(f);
  }
  g.waiting.clear();
}

void run_block() {
  g.next = 0;
  g.bar_count = g.bar_arrived = 0;
  while (g.next < g.nthreads) {
    fiber *f = get_fiber();
    if (!f) {
      fprintf(stderr, "od cuda emulation: cannot allocate a fiber stack for thread %u of a block\n", g.next);
      g.failed = true;
      abandon_waiting();
      return;
    }
    resume(f);
  }
  while (!g.waiting.empty()) {
    g.released.swap(g.waiting);
    g.bar_result_count = g.bar_count;
    g.bar_result_arrived = g.bar_arrived;
    g.bar_count = g.bar_arrived = 0;
    for (fiber *f : g.released) resume(f);
    g.released.clear();
  }
}

int barrier(int predicate) {
  fiber *f = g.current;
  if (!g.in_grid || !f) return predicate; /* host code: nothing to wait for */
  g.bar_count += predicate != 0;
  g.bar_arrived++;
  f->waiting = true;
  g.waiting.push_back(f); /* capacity reserved in get_fiber: no allocation here */
  switch_to_scheduler(f);
  return g.bar_result_count;
}

bool valid_config(const dim3 &grid, const dim3 &block) {
  if (block.x < 1 || block.y < 1 || block.z < 1) return false;
  if (block.x > 1024 || block.y > 1024 || block.z > 64) return false;
  if ((unsigned long long)block.x * block.y * block.z > 1024) return false;
  if (grid.x < 1 || grid.y < 1 || grid.z < 1) return false;
  if (grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535) return false;
  return true;
}

/* ---- GEMM ----------------------------------------------------------------------------------------- */

enum class round_in { none, tf32, bf16 };

float round_input(float x, round_in r) {
  if (r == round_in::none) return x;
  if (r == round_in::bf16) return __bfloat162float(__float2bfloat16(x));
  uint32_t u;
  memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u; /* TF32: 10-bit mantissa */
  memcpy(&x, &u, 4);
  return x;
}

float load(const void *p, cudaDataType_t t, size_t i) {
  if (t == CUDA_R_16BF) return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
  return ((const float *)p)[i];
}

struct gemm_args {
  cublasOperation_t ta, tb;
  int m, n, k;
  float alpha, beta;
  const void *A;
  cudaDataType_t at;
  int lda;
  long long sa;
  const void *B;
  cudaDataType_t bt;
  int ldb;
  long long sb;
  void *C;
  cudaDataType_t ct;
  int ldc;
  long long sc;
  int batch;
  round_in rnd;
};

size_t elem_size(cudaDataType_t t) { return t == CUDA_R_16BF ? 2 : 4; }

cublasStatus_t check_handle(cublasHandle_t h);

/* Checks as cuBLAS does, then (run) computes every batch. */
cublasStatus_t gemm(const char *name, const gemm_args &a, bool run) {
  auto valid_op = [](cublasOperation_t o) { return o == CUBLAS_OP_N || o == CUBLAS_OP_T || o == CUBLAS_OP_C; };
  if (!valid_op(a.ta) || !valid_op(a.tb) || a.m < 0 || a.n < 0 || a.k < 0 || a.batch < 0)
    return CUBLAS_STATUS_INVALID_VALUE;
  int arows = a.ta == CUBLAS_OP_N ? a.m : a.k, brows = a.tb == CUBLAS_OP_N ? a.k : a.n;
  if (a.lda < (arows > 1 ? arows : 1) || a.ldb < (brows > 1 ? brows : 1) || a.ldc < (a.m > 1 ? a.m : 1))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (a.m == 0 || a.n == 0 || a.batch == 0) return CUBLAS_STATUS_SUCCESS;
  bool use_ab = a.alpha != 0.0f && a.k > 0;
  if ((use_ab && (!od_emu_is_device_ptr(a.A) || !od_emu_is_device_ptr(a.B))) || !od_emu_is_device_ptr(a.C)) {
    fprintf(stderr, "od cuda emulation: %s: A, B and C must be device pointers\n", name);
    return CUBLAS_STATUS_EXECUTION_FAILED;
  }
  if (!run) return CUBLAS_STATUS_SUCCESS;
  std::vector<double> pa, pb; /* op(A) as m rows of k, op(B) as n columns of k */
  try {
    if (use_ab) {
      pa.resize((size_t)a.m * a.k);
      pb.resize((size_t)a.n * a.k);
    }
  } catch (...) {
    return CUBLAS_STATUS_ALLOC_FAILED;
  }
  device_scope scope;
  open_ptr(a.C);
  if (use_ab) {
    open_ptr(a.A);
    open_ptr(a.B);
  }
  for (int bi = 0; bi < a.batch; bi++) {
    const char *A = (const char *)a.A + (ptrdiff_t)(a.sa * bi) * (ptrdiff_t)elem_size(a.at);
    const char *B = (const char *)a.B + (ptrdiff_t)(a.sb * bi) * (ptrdiff_t)elem_size(a.bt);
    char *C = (char *)a.C + (ptrdiff_t)(a.sc * bi) * (ptrdiff_t)elem_size(a.ct);
    if (use_ab) {
      for (int i = 0; i < a.m; i++)
        for (int p = 0; p < a.k; p++) {
          size_t idx = a.ta == CUBLAS_OP_N ? (size_t)i + (size_t)p * a.lda : (size_t)p + (size_t)i * a.lda;
          pa[(size_t)i * a.k + p] = round_input(load(A, a.at, idx), a.rnd);
        }
      for (int j = 0; j < a.n; j++)
        for (int p = 0; p < a.k; p++) {
          size_t idx = a.tb == CUBLAS_OP_N ? (size_t)p + (size_t)j * a.ldb : (size_t)j + (size_t)p * a.ldb;
          pb[(size_t)j * a.k + p] = round_input(load(B, a.bt, idx), a.rnd);
        }
    }
    for (int j = 0; j < a.n; j++)
      for (int i = 0; i < a.m; i++) {
        double s = 0.0;
        if (use_ab) {
          const double *x = &pa[(size_t)i * a.k], *y = &pb[(size_t)j * a.k];
          for (int p = 0; p < a.k; p++) s += x[p] * y[p];
          s *= a.alpha;
        }
        size_t ci = (size_t)i + (size_t)j * a.ldc;
        if (a.beta != 0.0f) s += (double)a.beta * load(C, a.ct, ci);
        if (a.ct == CUDA_R_16BF)
          ((__nv_bfloat16 *)C)[ci] = __float2bfloat16((float)s);
        else
          ((float *)C)[ci] = (float)s;
      }
  }
  return CUBLAS_STATUS_SUCCESS;
}

cudaStream_t handle_stream(cublasHandle_t h);

/* A checked GEMM on the handle's stream: run now, or recorded when the stream captures (alpha
 * and beta are taken now: CUBLAS_POINTER_MODE_HOST, as a captured cuBLAS call takes them). */
cublasStatus_t gemm_submit(cublasHandle_t h, const char *name, const gemm_args &a) {
  cublasStatus_t st = gemm(name, a, false);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  cudaStream_t s = handle_stream(h);
  if (!od_emu::capture_state(s)) return gemm(name, a, true);
  return od_emu::record(s, [name, a] { (void)gemm(name, a, true); }) ? CUBLAS_STATUS_SUCCESS
                                                                     : CUBLAS_STATUS_EXECUTION_FAILED;
}

}  // namespace

/* The cuBLAS handle. */
struct cublasContext {
  unsigned magic;
  cudaStream_t stream;
  cublasMath_t math;
  cublasPointerMode_t pointer_mode;
};
static constexpr unsigned kHandleMagic = 0x0dc0b1a5u;

namespace {
cublasStatus_t check_handle(cublasHandle_t h) {
  return h && h->magic == kHandleMagic ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}
cudaStream_t handle_stream(cublasHandle_t h) { return h->stream; }
}  // namespace

/* ---- public: device memory ------------------------------------------------------------------------ */

void *od_emu_malloc(size_t bytes) {
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  if (refuse_in_capture()) return nullptr; /* cudaMalloc during a capture */
  if (!reserve_region()) return nullptr;
  size_t user = (bytes + kAlign - 1) / kAlign * kAlign;
  if (user == 0) user = kAlign;
  if (user < bytes) return nullptr; /* overflow */
  size_t span = (user + g.page - 1) / g.page * g.page;
  if (span < user || span + g.page > g.reserved - g.used) return nullptr;
  char *p = g.base + g.used + span - user;
  chunk *c;
  try {
    c = &g.live.emplace((uintptr_t)p, chunk{g.base + g.used, span, bytes, false}).first->second;
  } catch (...) {
    return nullptr;
  }
  g.used += span + g.page;
  g.live_bytes += bytes;
  if (g.poison) {
    protect(*c, PROT_READ | PROT_WRITE);
    memset(p, kPoison, user);
    protect(*c, PROT_NONE);
  }
  return p;
}

void od_emu_free(void *ptr) {
  if (!ptr) return;
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  if (refuse_in_capture()) return; /* cudaFree during a capture fails: the memory stays allocated */
  auto it = g.live.find((uintptr_t)ptr);
  if (it == g.live.end()) {
    g.bad_frees++;
    fprintf(stderr, "od cuda emulation: free of %p, which is not a live device allocation\n", ptr);
    return;
  }
  chunk c = it->second;
  if (c.open) { /* freed inside a device scope (not by kernels): drop it from the opened list */
    for (size_t i = 0; i < g.opened.size(); i++)
      if (g.opened[i] == &it->second) g.opened.erase(g.opened.begin() + (ptrdiff_t)i);
  }
  g.live_bytes -= c.bytes;
  g.live.erase(it);
  (void)madvise(c.pages, c.span, MADV_DONTNEED);
  protect(c, PROT_NONE); /* stays inaccessible, even inside later grids */
}

int od_emu_is_device_ptr(const void *p) {
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  return in_region(p) ? 1 : 0;
}

size_t od_emu_live_bytes() {
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  return g.live_bytes;
}

size_t od_emu_bad_frees() {
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  return g.bad_frees;
}

/* ---- public: kernels ------------------------------------------------------------------------------ */

void __syncthreads() { (void)barrier(1); }
int __syncthreads_count(int predicate) { return barrier(predicate); }
int __syncthreads_and(int predicate) {
  (void)barrier(predicate);
  return g.bar_result_count == g.bar_result_arrived;
}
int __syncthreads_or(int predicate) { return barrier(predicate) > 0; }

namespace od_emu {

bool check_launch(const launch_config &cfg, const pointer_arg *ptrs, int nptrs) {
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  if (!valid_config(cfg.grid, cfg.block)) {
    fail(cudaErrorInvalidConfiguration);
    return false;
  }
  for (int i = 0; i < nptrs; i++)
    if (ptrs[i].p && !in_region(ptrs[i].p)) {
      fprintf(stderr, "od cuda emulation: kernel argument %d is a host pointer (%p)\n", ptrs[i].index, ptrs[i].p);
      fail(cudaErrorIllegalAddress);
      return false;
    }
  return true;
}

void run_grid(const launch_config &cfg, void (*body)(void *), void *closure, const pointer_arg *ptrs, int nptrs) {
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  if (!check_launch(cfg, ptrs, nptrs)) return;
  if (g.in_grid) { /* a kernel cannot launch kernels here */
    fail(cudaErrorLaunchFailure);
    return;
  }
  g.in_grid = true;
  g.failed = false;
  g.body = body;
  g.closure = closure;
  g.bx = cfg.block.x;
  g.by = cfg.block.y;
  g.nthreads = cfg.block.x * cfg.block.y * cfg.block.z;
  blockDim = uint3{cfg.block.x, cfg.block.y, cfg.block.z};
  gridDim = uint3{cfg.grid.x, cfg.grid.y, cfg.grid.z};
  {
    device_scope scope;
    for (int i = 0; i < nptrs; i++) open_ptr(ptrs[i].p);
    for (unsigned z = 0; z < cfg.grid.z && !g.failed; z++)
      for (unsigned y = 0; y < cfg.grid.y && !g.failed; y++)
        for (unsigned x = 0; x < cfg.grid.x && !g.failed; x++) {
          blockIdx = uint3{x, y, z};
          run_block();
        }
  }
  g.in_grid = false;
  if (g.failed) fail(cudaErrorLaunchFailure);
}

}  // namespace od_emu

/* ---- public: runtime API ------------------------------------------------------------------------- */

cudaError_t cudaGetLastError() {
  cudaError_t e = last_error;
  last_error = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError() { return last_error; }

const char *cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorIllegalState: return "the operation cannot be performed in the present state";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureWrongThread:
      return "attempt to terminate a thread-local capture sequence from another thread";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
  }
  return "unrecognized error code";
}

const char *cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorIllegalState: return "cudaErrorIllegalState";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureWrongThread: return "cudaErrorStreamCaptureWrongThread";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
  }
  return "cudaErrorUnknown";
}

cudaError_t cudaGetDeviceCount(int *count) {
  if (!count) return fail(cudaErrorInvalidValue);
  *count = getenv("OD_EMU_NO_DEVICE") ? 0 : 1; /* as od_cuda_device_count */
  return *count ? cudaSuccess : fail(cudaErrorNoDevice);
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device) {
  if (!prop) return fail(cudaErrorInvalidValue);
  if (device != 0) return fail(cudaErrorInvalidDevice);
  memset(prop, 0, sizeof *prop);
  snprintf(prop->name, sizeof prop->name, "host emulation");
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  (void)reserve_region();
  prop->totalGlobalMem = g.reserved;
  prop->sharedMemPerBlock = 48 * 1024;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 2147483647;
  prop->maxGridSize[1] = prop->maxGridSize[2] = 65535;
  prop->multiProcessorCount = 132;
  prop->major = 9;
  prop->minor = 0;
  prop->maxThreadsPerMultiProcessor = 2048;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int device) {
  if (!value) return fail(cudaErrorInvalidValue);
  if (device != 0) return fail(cudaErrorInvalidDevice);
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = 48 * 1024; break;
    case cudaDevAttrWarpSize: *value = 32; break;
    case cudaDevAttrMultiProcessorCount: *value = 132; break;
    case cudaDevAttrComputeCapabilityMajor: *value = 9; break;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; break;
    default: return fail(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice); }

cudaError_t cudaGetDevice(int *device) {
  if (!device) return fail(cudaErrorInvalidValue);
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void **ptr, size_t bytes) {
  if (!ptr) return fail(cudaErrorInvalidValue);
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  if (refuse_in_capture()) return cudaErrorStreamCaptureUnsupported;
  void *p = od_emu_malloc(bytes);
  if (!p) return fail(cudaErrorMemoryAllocation);
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void *ptr) {
  if (ptr && !od_emu_is_device_ptr(ptr)) return fail(cudaErrorInvalidValue);
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  if (refuse_in_capture()) return cudaErrorStreamCaptureUnsupported;
  od_emu_free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMallocAsync(void **ptr, size_t bytes, cudaStream_t) { return cudaMalloc(ptr, bytes); }

cudaError_t cudaFreeAsync(void *ptr, cudaStream_t) { return cudaFree(ptr); }

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
  if (!free_bytes || !total_bytes) return fail(cudaErrorInvalidValue);
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  if (refuse_in_capture()) return cudaErrorStreamCaptureUnsupported;
  if (!reserve_region()) return fail(cudaErrorMemoryAllocation);
  *total_bytes = g.reserved;
  *free_bytes = g.reserved - g.used;
  return cudaSuccess;
}

namespace {

/* The copy itself (a recorded copy repeats it when its graph runs: the operands are looked up
 * again, so a device buffer freed since the capture gives cudaErrorInvalidValue). */
cudaError_t copy_now(void *dst, const void *src, size_t bytes) {
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  chunk *dc = nullptr, *sc = nullptr;
  if (in_region(dst) && !(dc = find_chunk(dst, bytes))) return fail(cudaErrorInvalidValue);
  if (in_region(src) && !(sc = find_chunk(src, bytes))) return fail(cudaErrorInvalidValue);
  device_scope scope;
  if (dc) open_chunk(dc);
  if (sc) open_chunk(sc);
  memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t memset_now(void *ptr, int value, size_t bytes) {
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  chunk *c = find_chunk(ptr, bytes);
  if (!c) return fail(cudaErrorInvalidValue);
  device_scope scope;
  open_chunk(c);
  memset(ptr, value, bytes);
  return cudaSuccess;
}

/* Whether [p, p + bytes) lies in one cudaHostAlloc block. */
bool is_pinned(const void *p, size_t bytes) {
  auto it = g.pinned.upper_bound((uintptr_t)p);
  if (it == g.pinned.begin()) return false;
  --it;
  return (uintptr_t)p + bytes <= it->first + it->second && (uintptr_t)p + bytes >= (uintptr_t)p;
}

cudaError_t invalidate(cudaStream_t s, cudaError_t e); /* below, with the streams */

}  // namespace

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  if (bytes == 0) return cudaSuccess;
  if (!dst || !src) return fail(cudaErrorInvalidValue);
  bool ddev = in_region(dst), sdev = in_region(src);
  switch (kind) {
    case cudaMemcpyHostToHost: if (ddev || sdev) return fail(cudaErrorInvalidValue); break;
    case cudaMemcpyHostToDevice: if (!ddev || sdev) return fail(cudaErrorInvalidValue); break;
    case cudaMemcpyDeviceToHost: if (ddev || !sdev) return fail(cudaErrorInvalidValue); break;
    case cudaMemcpyDeviceToDevice: if (!ddev || !sdev) return fail(cudaErrorInvalidValue); break;
    case cudaMemcpyDefault: break;
    default: return fail(cudaErrorInvalidValue);
  }
  if (ddev && !find_chunk(dst, bytes)) return fail(cudaErrorInvalidValue);
  if (sdev && !find_chunk(src, bytes)) return fail(cudaErrorInvalidValue);
  if (od_emu::capture_state(stream)) {
    /* host sides must be pinned: a pageable copy synchronises */
    if ((!ddev && !is_pinned(dst, bytes)) || (!sdev && !is_pinned(src, bytes)))
      return invalidate(stream, cudaErrorStreamCaptureUnsupported);
    return od_emu::record(stream, [=] { (void)copy_now(dst, src, bytes); }) ? cudaSuccess
                                                                          : cudaErrorStreamCaptureInvalidated;
  }
  return copy_now(dst, src, bytes);
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  if (refuse_in_capture()) return cudaErrorStreamCaptureUnsupported;
  return cudaMemcpyAsync(dst, src, bytes, kind, 0);
}

cudaError_t cudaMemsetAsync(void *ptr, int value, size_t bytes, cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  if (bytes == 0) return cudaSuccess;
  if (!find_chunk(ptr, bytes)) return fail(cudaErrorInvalidValue);
  if (od_emu::capture_state(stream))
    return od_emu::record(stream, [=] { (void)memset_now(ptr, value, bytes); }) ? cudaSuccess
                                                                                : cudaErrorStreamCaptureInvalidated;
  return memset_now(ptr, value, bytes);
}

cudaError_t cudaMemset(void *ptr, int value, size_t bytes) {
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  if (refuse_in_capture()) return cudaErrorStreamCaptureUnsupported;
  return cudaMemsetAsync(ptr, value, bytes, 0);
}

/* Streams are synchronous: a stream is a distinct non-null handle, and the state of its capture. */
struct CUgraph_st {
  std::vector<std::function<void()>> nodes;
};

struct CUgraphExec_st {
  std::shared_ptr<const std::vector<std::function<void()>>> nodes;
};

struct CUstream_st {
  unsigned flags;
  cudaStreamCaptureStatus capture; /* None, Active or Invalidated */
  cudaStreamCaptureMode mode;
  std::thread::id owner;           /* the thread that began the capture */
  CUgraph_st *graph;               /* being recorded */
};

namespace {

/* Ends s's capture (with the lock held); returns the recorded graph. */
CUgraph_st *end_capture(cudaStream_t s) {
  CUgraph_st *gr = s->graph;
  s->graph = nullptr;
  s->capture = cudaStreamCaptureStatusNone;
  for (size_t i = 0; i < g.captures.size(); i++)
    if (g.captures[i] == s) g.captures.erase(g.captures.begin() + (ptrdiff_t)i);
  n_captures.store((int)g.captures.size());
  return gr;
}

cudaError_t invalidate(cudaStream_t s, cudaError_t e) {
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  if (s && s->capture == cudaStreamCaptureStatusActive) {
    s->capture = cudaStreamCaptureStatusInvalidated;
    s->graph->nodes.clear();
  }
  return fail(e);
}

/* A call that synchronises or allocates while this thread captures (ThreadLocal mode; Global:
 * while any thread captures): invalidates those captures, sets cudaErrorStreamCaptureUnsupported
 * and returns true. */
bool refuse_in_capture() {
  if (n_captures.load() == 0) return false;
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  bool hit = false;
  for (cudaStream_t s : g.captures)
    if (s->mode != cudaStreamCaptureModeRelaxed &&
        (s->mode == cudaStreamCaptureModeGlobal || s->owner == std::this_thread::get_id())) {
      hit = true;
      (void)invalidate(s, cudaErrorStreamCaptureUnsupported);
    }
  if (hit) fail(cudaErrorStreamCaptureUnsupported);
  return hit;
}

}  // namespace

namespace od_emu {

int capture_state(cudaStream_t s) {
  if (!s || n_captures.load() == 0) return cudaStreamCaptureStatusNone;
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  return s->capture;
}

bool record(cudaStream_t s, std::function<void()> work) {
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  if (!s || s->capture == cudaStreamCaptureStatusNone) { /* not capturing (any more): run it */
    work();
    return true;
  }
  if (s->capture != cudaStreamCaptureStatusActive) {
    fail(cudaErrorStreamCaptureInvalidated);
    return false;
  }
  try {
    s->graph->nodes.push_back(std::move(work));
  } catch (...) {
    (void)invalidate(s, cudaErrorMemoryAllocation);
    return false;
  }
  return true;
}

bool submit_thread(std::function<void()> work) {
  cudaStream_t mine = nullptr;
  if (n_captures.load()) {
    std::lock_guard<std::recursive_mutex> lock(g.mu);
    for (cudaStream_t s : g.captures)
      if (s->owner == std::this_thread::get_id()) mine = s;
  }
  if (!mine) {
    work();
    return true;
  }
  return record(mine, std::move(work));
}

}  // namespace od_emu

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned flags) {
  if (!stream) return fail(cudaErrorInvalidValue);
  cudaStream_t s = new (std::nothrow)
      CUstream_st{flags, cudaStreamCaptureStatusNone, cudaStreamCaptureModeGlobal, std::thread::id(), nullptr};
  if (!s) return fail(cudaErrorMemoryAllocation);
  *stream = s;
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t *stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  if (!stream) return fail(cudaErrorInvalidResourceHandle);
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  if (stream->capture != cudaStreamCaptureStatusNone) delete end_capture(stream); /* the capture is lost */
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  if (od_emu::capture_state(stream)) return invalidate(stream, cudaErrorStreamCaptureUnsupported);
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() {
  return refuse_in_capture() ? cudaErrorStreamCaptureUnsupported : cudaSuccess;
}

/* ---- public: pinned memory, capture, graphs --------------------------------------------------------- */

cudaError_t cudaHostAlloc(void **ptr, size_t bytes, unsigned flags) {
  if (!ptr || flags > 0xf) return fail(cudaErrorInvalidValue);
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  if (refuse_in_capture()) return cudaErrorStreamCaptureUnsupported;
  void *p = malloc(bytes ? bytes : 1);
  if (!p) return fail(cudaErrorMemoryAllocation);
  try {
    g.pinned[(uintptr_t)p] = bytes ? bytes : 1;
  } catch (...) {
    free(p);
    return fail(cudaErrorMemoryAllocation);
  }
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void **ptr, size_t bytes) { return cudaHostAlloc(ptr, bytes, cudaHostAllocDefault); }

cudaError_t cudaFreeHost(void *ptr) {
  if (!ptr) return cudaSuccess;
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  if (refuse_in_capture()) return cudaErrorStreamCaptureUnsupported;
  auto it = g.pinned.find((uintptr_t)ptr);
  if (it == g.pinned.end()) return fail(cudaErrorInvalidValue);
  g.pinned.erase(it);
  free(ptr);
  return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  if (!stream) return fail(cudaErrorStreamCaptureUnsupported); /* the legacy stream cannot capture */
  if (mode != cudaStreamCaptureModeGlobal && mode != cudaStreamCaptureModeThreadLocal &&
      mode != cudaStreamCaptureModeRelaxed)
    return fail(cudaErrorInvalidValue);
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  if (stream->capture != cudaStreamCaptureStatusNone) return fail(cudaErrorIllegalState);
  CUgraph_st *gr = new (std::nothrow) CUgraph_st();
  if (!gr) return fail(cudaErrorMemoryAllocation);
  try {
    g.captures.push_back(stream);
  } catch (...) {
    delete gr;
    return fail(cudaErrorMemoryAllocation);
  }
  n_captures.store((int)g.captures.size());
  stream->capture = cudaStreamCaptureStatusActive;
  stream->mode = mode;
  stream->owner = std::this_thread::get_id();
  stream->graph = gr;
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *graph) {
  if (!graph) return fail(cudaErrorInvalidValue);
  *graph = nullptr;
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  if (!stream || stream->capture == cudaStreamCaptureStatusNone) return fail(cudaErrorIllegalState);
  if (stream->mode != cudaStreamCaptureModeRelaxed && stream->owner != std::this_thread::get_id())
    return fail(cudaErrorStreamCaptureWrongThread);
  bool valid = stream->capture == cudaStreamCaptureStatusActive;
  CUgraph_st *gr = end_capture(stream);
  if (!valid) {
    delete gr;
    return fail(cudaErrorStreamCaptureInvalidated);
  }
  *graph = gr;
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus *status) {
  if (!status) return fail(cudaErrorInvalidValue);
  *status = (cudaStreamCaptureStatus)od_emu::capture_state(stream);
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags) {
  if (!exec || !graph || (flags & ~(unsigned long long)0xf)) return fail(cudaErrorInvalidValue);
  *exec = nullptr;
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  try {
    cudaGraphExec_t e = new CUgraphExec_st();
    e->nodes = std::make_shared<const std::vector<std::function<void()>>>(graph->nodes);
    *exec = e;
  } catch (...) {
    return fail(cudaErrorMemoryAllocation);
  }
  return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  if (!exec) return fail(cudaErrorInvalidValue);
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  std::shared_ptr<const std::vector<std::function<void()>>> nodes = exec->nodes;
  auto replay = [nodes] {
    for (const std::function<void()> &n : *nodes) n();
  };
  if (od_emu::capture_state(stream)) /* a graph launched into a capture: recorded as one step */
    return od_emu::record(stream, replay) ? cudaSuccess : cudaErrorStreamCaptureInvalidated;
  cudaError_t stale = last_error;
  last_error = cudaSuccess;
  replay();
  cudaError_t e = last_error; /* the first failure of a replayed operation, if any */
  if (e == cudaSuccess) last_error = stale;
  return e;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  if (!exec) return fail(cudaErrorInvalidValue);
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  delete exec;
  return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  if (!graph) return fail(cudaErrorInvalidValue);
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  delete graph;
  return cudaSuccess;
}

cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t *nodes, size_t *count) {
  if (!graph || !count || nodes) return fail(cudaErrorInvalidValue);
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  *count = graph->nodes.size();
  return cudaSuccess;
}

struct CUevent_st {
  double ms; /* host clock at the last record */
};

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned) {
  if (!event) return fail(cudaErrorInvalidValue);
  cudaEvent_t e = new (std::nothrow) CUevent_st{0.0};
  if (!e) return fail(cudaErrorMemoryAllocation);
  *event = e;
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *event) { return cudaEventCreateWithFlags(event, 0); }

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  if (!event) return fail(cudaErrorInvalidResourceHandle);
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t) {
  if (!event) return fail(cudaErrorInvalidResourceHandle);
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  event->ms = (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  return event ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end) {
  if (!ms) return fail(cudaErrorInvalidValue);
  if (!start || !end) return fail(cudaErrorInvalidResourceHandle);
  *ms = (float)(end->ms - start->ms);
  return cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t event, unsigned) {
  return event ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}

/* ---- public: cuBLAS ----------------------------------------------------------------------------- */

cublasStatus_t cublasCreate(cublasHandle_t *handle) {
  if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
  cublasHandle_t h = new (std::nothrow) cublasContext{kHandleMagic, nullptr, CUBLAS_DEFAULT_MATH,
                                                      CUBLAS_POINTER_MODE_HOST};
  if (!h) return CUBLAS_STATUS_ALLOC_FAILED;
  *handle = h;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  if (check_handle(handle) != CUBLAS_STATUS_SUCCESS) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->magic = 0;
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
  if (check_handle(handle) != CUBLAS_STATUS_SUCCESS) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream(cublasHandle_t handle, cudaStream_t *stream) {
  if (check_handle(handle) != CUBLAS_STATUS_SUCCESS) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!stream) return CUBLAS_STATUS_INVALID_VALUE;
  *stream = handle->stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  if (check_handle(handle) != CUBLAS_STATUS_SUCCESS) return CUBLAS_STATUS_NOT_INITIALIZED;
  unsigned base = (unsigned)mode & ~(unsigned)CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;
  if (base > CUBLAS_TF32_TENSOR_OP_MATH) return CUBLAS_STATUS_INVALID_VALUE;
  handle->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t *mode) {
  if (check_handle(handle) != CUBLAS_STATUS_SUCCESS) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
  *mode = handle->math;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetPointerMode(cublasHandle_t handle, cublasPointerMode_t mode) {
  if (check_handle(handle) != CUBLAS_STATUS_SUCCESS) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (mode == CUBLAS_POINTER_MODE_DEVICE) return CUBLAS_STATUS_NOT_SUPPORTED; /* not emulated */
  if (mode != CUBLAS_POINTER_MODE_HOST) return CUBLAS_STATUS_INVALID_VALUE;
  handle->pointer_mode = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetPointerMode(cublasHandle_t handle, cublasPointerMode_t *mode) {
  if (check_handle(handle) != CUBLAS_STATUS_SUCCESS) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
  *mode = handle->pointer_mode;
  return CUBLAS_STATUS_SUCCESS;
}

extern "C" const char *od_cublas_status_string(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "invalid value";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "architecture mismatch";
    case CUBLAS_STATUS_MAPPING_ERROR: return "mapping error";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "execution failed";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "internal error";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "license error";
  }
  return "unknown cuBLAS status";
}

const char *cublasGetStatusString(cublasStatus_t status) { return od_cublas_status_string(status); }

namespace {

bool tf32_math(cublasHandle_t h) {
  return ((unsigned)h->math & ~(unsigned)CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION) ==
         CUBLAS_TF32_TENSOR_OP_MATH;
}

/* The input rounding of a GemmEx configuration, or false when cuBLAS does not support it. */
bool ex_config(cublasHandle_t h, cudaDataType_t at, cudaDataType_t bt, cudaDataType_t ct,
               cublasComputeType_t compute, cublasGemmAlgo_t algo, round_in *rnd) {
  int al = (int)algo;
  if (!(al == CUBLAS_GEMM_DEFAULT || (al >= 0 && al <= 23) || (al >= 99 && al <= 115))) return false;
  bool f32 = at == CUDA_R_32F && bt == CUDA_R_32F && ct == CUDA_R_32F;
  bool bf16 = at == CUDA_R_16BF && bt == CUDA_R_16BF && (ct == CUDA_R_16BF || ct == CUDA_R_32F);
  switch (compute) {
    case CUBLAS_COMPUTE_32F:
      *rnd = f32 && tf32_math(h) ? round_in::tf32 : round_in::none;
      return f32 || bf16;
    case CUBLAS_COMPUTE_32F_PEDANTIC: *rnd = round_in::none; return f32 || bf16;
    case CUBLAS_COMPUTE_32F_FAST_TF32: *rnd = round_in::tf32; return f32;
    case CUBLAS_COMPUTE_32F_FAST_16BF: *rnd = round_in::bf16; return f32;
    default: return false;
  }
}

}  // namespace

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa,
                                         cublasOperation_t transb, int m, int n, int k, const float *alpha,
                                         const float *A, int lda, long long strideA, const float *B, int ldb,
                                         long long strideB, const float *beta, float *C, int ldc,
                                         long long strideC, int batchCount) {
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  cublasStatus_t st = check_handle(handle);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
  round_in rnd = tf32_math(handle) ? round_in::tf32 : round_in::none;
  return gemm_submit(handle, "cublasSgemm", gemm_args{transa, transb, m, n, k, *alpha, *beta, A, CUDA_R_32F, lda,
                                               strideA, B, CUDA_R_32F, ldb, strideB, C, CUDA_R_32F, ldc,
                                               strideC, batchCount, rnd});
}

cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                           int n, int k, const float *alpha, const float *A, int lda, const float *B, int ldb,
                           const float *beta, float *C, int ldc) {
  return cublasSgemmStridedBatched(handle, transa, transb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc,
                                   0, 1);
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa,
                                          cublasOperation_t transb, int m, int n, int k, const void *alpha,
                                          const void *A, cudaDataType_t Atype, int lda, long long strideA,
                                          const void *B, cudaDataType_t Btype, int ldb, long long strideB,
                                          const void *beta, void *C, cudaDataType_t Ctype, int ldc,
                                          long long strideC, int batchCount, cublasComputeType_t computeType,
                                          cublasGemmAlgo_t algo) {
  std::lock_guard<std::recursive_mutex> lock(g.mu);
  cublasStatus_t st = check_handle(handle);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
  round_in rnd = round_in::none;
  if (!ex_config(handle, Atype, Btype, Ctype, computeType, algo, &rnd)) return CUBLAS_STATUS_NOT_SUPPORTED;
  return gemm_submit(handle, "cublasGemmEx",
              gemm_args{transa, transb, m, n, k, *(const float *)alpha, *(const float *)beta, A, Atype, lda,
                        strideA, B, Btype, ldb, strideB, C, Ctype, ldc, strideC, batchCount, rnd});
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                            int n, int k, const void *alpha, const void *A, cudaDataType_t Atype, int lda,
                            const void *B, cudaDataType_t Btype, int ldb, const void *beta, void *C,
                            cudaDataType_t Ctype, int ldc, cublasComputeType_t computeType,
                            cublasGemmAlgo_t algo) {
  return cublasGemmStridedBatchedEx(handle, transa, transb, m, n, k, alpha, A, Atype, lda, 0, B, Btype, ldb, 0,
                                    beta, C, Ctype, ldc, 0, 1, computeType, algo);
}
