/* tests/node_runner.c: the ONNX backend node tests (model + inputs + expected outputs, written by
 * the ONNX project) run on our CPU backend.
 *
 *   node_runner [--strict] [--exclude FILE] [--targets FILE] DIR [PREFIX...]
 *
 * Runs every test folder in DIR whose name starts with one of the prefixes (all when none), each
 * in a child process so that a crash is reported as a failure of that test, and prints one line per
 * test (pass / FAIL / unsupported / excluded, with the worst element on failure) and a total
 * "N passed, N failed, ...".
 *
 * Tolerance: |got - want| <= 1e-5 + 1e-3 * |want| for floating types (ONNX Runtime's runner uses
 * the same rtol and atol), NaN equals NaN; integers and bools exactly; shapes and dtypes exactly.
 *
 * --strict fails the run when a test fails, or is unsupported while its op type is in the targets
 * file (the ops we claim), unless the exclusions file lists it with a reason. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loaders/onnx_import.h"
#include "loaders/onnx_tensor.h"
#include "loaders/pb_alloc.h"
#include "runtime/exec.h"
#include "tests/runner_util.h"

#define RTOL 1e-3
#define ATOL 1e-5

enum result { R_PASS, R_FAIL, R_UNSUPPORTED, R_EXCLUDED };


static void host_to_tensor(const struct od_host_tensor *h, struct od_tensor *t) {
  t->dtype = h->dtype;
  t->rank = h->rank;
  memcpy(t->dims, h->dims, sizeof t->dims);
  t->data = h->data;
}

/* Compares got with want; writes the reason into msg on mismatch. */
static bool compare(const struct od_tensor *got, const struct od_host_tensor *want, int index, char *msg, size_t size) {
  char a[128], b[128];
  if (got->dtype != want->dtype) {
    snprintf(msg, size, "output %d: dtype %s, expected %s", index, od_dtype_name(got->dtype), od_dtype_name(want->dtype));
    return false;
  }
  if (got->rank != want->rank || memcmp(got->dims, want->dims, sizeof(int64_t) * (size_t)want->rank)) {
    snprintf(msg, size, "output %d: shape %s, expected %s", index, od_shape_str(got->rank, got->dims, a, sizeof a),
             od_shape_str(want->rank, want->dims, b, sizeof b));
    return false;
  }
  struct od_tensor w = {0};
  host_to_tensor(want, &w);
  int64_t n = od_tensor_numel(&w), worst = -1;
  double worst_excess = 0;
  bool is_float = od_dtype_is_float(want->dtype);
  for (int64_t i = 0; i < n; i++) {
    double g = od_tensor_get_f64(got, i), e = od_tensor_get_f64(&w, i);
    if (!is_float) {
      if (want->dtype == OD_DTYPE_INT64 || want->dtype == OD_DTYPE_UINT64) {
        if (od_tensor_get_i64(got, i) != od_tensor_get_i64(&w, i)) { worst = i; break; }
      } else if (g != e) { worst = i; break; }
      continue;
    }
    if (isnan(e) && isnan(g)) continue;
    if (isinf(e) && g == e) continue;
    double excess = fabs(g - e) - (ATOL + RTOL * fabs(e));
    if (!(excess <= 0) && (worst < 0 || excess > worst_excess || isnan(excess))) {
      worst = i;
      worst_excess = isnan(excess) ? INFINITY : excess;
    }
  }
  if (worst >= 0) {
    snprintf(msg, size, "output %d %s: element %lld is %.9g, expected %.9g", index,
             od_shape_str(want->rank, want->dims, a, sizeof a), (long long)worst, od_tensor_get_f64(got, worst),
             od_tensor_get_f64(&w, worst));
    return false;
  }
  return true;
}

/* Runs one test in this process; the verdict goes to msg. */
static enum result run_test(const char *dir, const char *name, char *msg, size_t size) {
  char path[4096];
  struct od_err err = {0};
  struct od_model *m = NULL;
  enum result r = R_PASS;
  struct od_host_tensor ins[32] = {0}, outs[32] = {0};
  struct od_tensor in_t[32] = {0};
  int n_in = 0, n_out = 0;
  struct od_device *dev = NULL;
  struct od_program *prog = NULL;
  snprintf(path, sizeof path, "%s/%s/model.onnx", dir, name);
  if (od_model_load(path, &m, &err) != OD_OK) {
    snprintf(msg, size, "import: %s", err.msg);
    return err.status == OD_ERR_UNSUPPORTED ? R_UNSUPPORTED : R_FAIL;
  }
  const struct od_graph *g = m->graph;
  if (g->n_inputs > 32 || g->n_outputs > 32) {
    snprintf(msg, size, "too many inputs/outputs");
    r = R_UNSUPPORTED;
    goto done;
  }
  for (int i = 0; i < g->n_inputs + g->n_outputs; i++) {
    const struct od_value *v = &g->values[i < g->n_inputs ? g->inputs[i] : g->outputs[i - g->n_inputs]];
    if (v->type_kind != OD_TYPE_TENSOR && v->type_kind != OD_TYPE_UNKNOWN) {
      snprintf(msg, size, "'%s' is not a tensor (sequence/optional/map values are not supported)", v->name);
      r = R_UNSUPPORTED;
      goto done;
    }
  }
  /* input_K.pb are for the graph inputs in order (old-IR initializer inputs have no file) */
  for (n_in = 0; n_in < g->n_inputs; n_in++) {
    snprintf(path, sizeof path, "%s/%s/test_data_set_0/input_%d.pb", dir, name, n_in);
    if (load_pb(path, &ins[n_in], &err) != OD_OK) {
      snprintf(msg, size, "input %d: %s", n_in, err.msg);
      r = err.status == OD_ERR_UNSUPPORTED ? R_UNSUPPORTED : R_FAIL;
      goto done;
    }
    host_to_tensor(&ins[n_in], &in_t[n_in]);
  }
  for (n_out = 0; n_out < g->n_outputs; n_out++) {
    snprintf(path, sizeof path, "%s/%s/test_data_set_0/output_%d.pb", dir, name, n_out);
    if (load_pb(path, &outs[n_out], &err) != OD_OK) {
      snprintf(msg, size, "expected output %d: %s", n_out, err.msg);
      r = err.status == OD_ERR_UNSUPPORTED ? R_UNSUPPORTED : R_FAIL;
      goto done;
    }
  }
  od_device_open("cpu", &dev, &err);
  struct od_compile_opts opts = {.dev = dev};
  if (od_program_compile(g, in_t, &opts, &prog, &err) != OD_OK) {
    snprintf(msg, size, "compile: %s", err.msg);
    r = err.status == OD_ERR_UNSUPPORTED ? R_UNSUPPORTED : R_FAIL;
    goto done;
  }
  if (od_program_run(prog, in_t, &err) != OD_OK) {
    snprintf(msg, size, "run: %s", err.msg);
    r = err.status == OD_ERR_UNSUPPORTED ? R_UNSUPPORTED : R_FAIL;
    goto done;
  }
  for (int o = 0; o < g->n_outputs; o++)
    if (!compare(od_program_output(prog, o), &outs[o], o, msg, size)) {
      r = R_FAIL;
      goto done;
    }
  snprintf(msg, size, "ok");
done:
  od_program_destroy(prog);
  od_device_close(dev);
  for (int i = 0; i < n_in; i++) od_host_tensor_free(&ins[i]);
  for (int i = 0; i < n_out; i++) od_host_tensor_free(&outs[i]);
  od_model_destroy(m);
  return r;
}

/* Runs a test in a child; a crash or a hang is a failure of that test alone. */
static enum result run_isolated(const char *dir, const char *name, char *msg, size_t size) {
  int fds[2];
  if (pipe(fds) != 0) return run_test(dir, name, msg, size);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    alarm(60);
    char m[1024];
    enum result r = run_test(dir, name, m, sizeof m);
    char line[1100];
    int n = snprintf(line, sizeof line, "%d %s", (int)r, m);
    if (write(fds[1], line, (size_t)(n < (int)sizeof line ? n : (int)sizeof line - 1)) < 0) _exit(3);
    _exit(0);
  }
  close(fds[1]);
  char buf[1100];
  ssize_t got = 0, k;
  while (got < (ssize_t)sizeof buf - 1 && (k = read(fds[0], buf + got, sizeof buf - 1 - (size_t)got)) > 0) got += k;
  buf[got] = '\0';
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) {
    snprintf(msg, size, "crashed with signal %d%s", WTERMSIG(status), WTERMSIG(status) == SIGALRM ? " (timeout)" : "");
    return R_FAIL;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || got < 2) {
    snprintf(msg, size, "child exited with status %d%s", WEXITSTATUS(status),
             WEXITSTATUS(status) ? " (sanitizer report?)" : "");
    return R_FAIL;
  }
  snprintf(msg, size, "%s", buf + 2);
  return (enum result)(buf[0] - '0');
}

/* A list file: one name per line, optional TAB and reason; # comments. */
struct list {
  char **names, **reasons;
  int n;
};

static void list_load(const char *path, struct list *l) {
  FILE *f = path ? fopen(path, "r") : NULL;
  if (!f) return;
  char line[2048];
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = '\0';
    if (!line[0] || line[0] == '#') continue;
    char *tab = strchr(line, '\t');
    if (tab) *tab++ = '\0';
    l->names = realloc(l->names, sizeof(char *) * (size_t)(l->n + 1));
    l->reasons = realloc(l->reasons, sizeof(char *) * (size_t)(l->n + 1));
    l->names[l->n] = strdup(line);
    l->reasons[l->n] = strdup(tab ? tab : "");
    l->n++;
  }
  fclose(f);
}

static int list_find(const struct list *l, const char *name) {
  for (int i = 0; i < l->n; i++)
    if (!strcmp(l->names[i], name)) return i;
  return -1;
}

static void list_free(struct list *l) {
  for (int i = 0; i < l->n; i++) {
    free(l->names[i]);
    free(l->reasons[i]);
  }
  free(l->names);
  free(l->reasons);
}

/* The op type of a test, from DIR/INDEX.tsv. */
static void test_op_type(const char *dir, const char *name, char *op, size_t size) {
  char path[4096], line[4096];
  snprintf(path, sizeof path, "%s/INDEX.tsv", dir);
  op[0] = '\0';
  FILE *f = fopen(path, "r");
  if (!f) return;
  size_t nl = strlen(name);
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, name, nl) && line[nl] == '\t') {
      char *s = line + nl + 1;
      size_t k = strcspn(s, "\t\n");
      if (k >= size) k = size - 1;
      memcpy(op, s, k);
      op[k] = '\0';
      break;
    }
  fclose(f);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
  bool strict = false;
  const char *exclude_path = NULL, *targets_path = NULL, *dir = NULL;
  char **prefixes = calloc((size_t)argc, sizeof *prefixes);
  int n_prefixes = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--strict")) strict = true;
    else if (!strcmp(argv[i], "--exclude") && i + 1 < argc) exclude_path = argv[++i];
    else if (!strcmp(argv[i], "--targets") && i + 1 < argc) targets_path = argv[++i];
    else if (!dir) dir = argv[i];
    else prefixes[n_prefixes++] = argv[i];
  }
  if (!dir) {
    fprintf(stderr, "usage: node_runner [--strict] [--exclude FILE] [--targets FILE] DIR [PREFIX...]\n");
    return 2;
  }
  struct list excluded = {0}, targets = {0};
  list_load(exclude_path, &excluded);
  list_load(targets_path, &targets);
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "node_runner: cannot open %s\n", dir);
    return 2;
  }
  char **names = NULL;
  int n_names = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (strncmp(e->d_name, "test_", 5)) continue;
    bool match = n_prefixes == 0;
    for (int k = 0; k < n_prefixes && !match; k++) match = !strncmp(e->d_name, prefixes[k], strlen(prefixes[k]));
    if (!match) continue;
    names = realloc(names, sizeof(char *) * (size_t)(n_names + 1));
    names[n_names++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, (size_t)n_names, sizeof *names, cmp_str);
  int counts[4] = {0}, blocking = 0;
  for (int i = 0; i < n_names; i++) {
    char msg[1100];
    enum result r;
    int x = list_find(&excluded, names[i]);
    if (x >= 0) {
      r = R_EXCLUDED;
      snprintf(msg, sizeof msg, "%s", excluded.reasons[x]);
    } else {
      r = run_isolated(dir, names[i], msg, sizeof msg);
    }
    counts[r]++;
    static const char *const tags[] = {"pass", "FAIL", "unsupported", "excluded"};
    bool blocks = r == R_FAIL;
    if (r == R_UNSUPPORTED && targets.n) {
      char op[128];
      test_op_type(dir, names[i], op, sizeof op);
      /* an _expanded test that needs an op outside the targets does not block */
      bool needs_other = strstr(names[i], "_expanded") && (strstr(msg, "no kernel for") || strstr(msg, "subgraph"));
      blocks = list_find(&targets, op) >= 0 && !needs_other;
    }
    blocking += blocks;
    printf("%-12s %s%s%s\n", tags[r], names[i], r == R_PASS ? "" : ": ", r == R_PASS ? "" : msg);
    free(names[i]);
  }
  free(names);
  free(prefixes);
  list_free(&excluded);
  list_free(&targets);
  printf("%d passed, %d failed, %d unsupported, %d excluded\n", counts[R_PASS], counts[R_FAIL], counts[R_UNSUPPORTED],
         counts[R_EXCLUDED]);
  if (strict && blocking) {
    printf("node_runner: %d test(s) of targeted ops failed or are unsupported\n", blocking);
    return 1;
  }
  return 0;
}
