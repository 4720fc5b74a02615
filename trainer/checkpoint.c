/* trainer/checkpoint.c: checkpoints that survive a crash at any moment.
 *
 * File DIR/checkpoint.bin, written to a temporary file in DIR, fsync'ed, then renamed over the
 * old one (and the folder fsync'ed), so there is always one complete checkpoint. Layout, little-
 * endian:
 *   "ODCKPT01" | u32 version (1) | u32 state_per_param | i64 step | u64 seed
 *   | u64 n_floats | u64 graph_bytes | u32 path_len | student model path (absolute, path_len bytes)
 *   | f32 w[n_floats] | f32 state[n_floats * state_per_param]
 *   | u8 graph_param_data[graph_bytes] | u64 FNV-1a of everything before
 * The student path lets `onnx-distill export DIR -o out.onnx` work from a checkpoint alone.
 * graph_param_data is the student's whole parameter block after the trained values are copied
 * in: it carries BatchNormalization running statistics, which are not optimizer parameters. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trainer/trainer_internal.h"

#define CKPT_MAGIC "ODCKPT01"
#define CKPT_VERSION 1u

struct writer {
  int fd;
  uint64_t hash;
  bool failed;
};

static void fnv(uint64_t *h, const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++) *h = (*h ^ b[i]) * 1099511628211ull;
}

static void put(struct writer *w, const void *p, size_t n) {
  fnv(&w->hash, p, n);
  const uint8_t *b = p;
  while (n && !w->failed) {
    ssize_t k = write(w->fd, b, n);
    if (k <= 0) {
      if (k < 0 && errno == EINTR) continue;
      w->failed = true;
      break;
    }
    b += k;
    n -= (size_t)k;
  }
}

enum od_status od_trainer_mkdirs(const char *dir, struct od_err *err) {
  char path[4096];
  snprintf(path, sizeof path, "%s", dir);
  for (char *p = path + 1; *p; p++)
    if (*p == '/') {
      *p = '\0';
      mkdir(path, 0755);
      *p = '/';
    }
  if (mkdir(path, 0755) != 0 && errno != EEXIST)
    return od_err_set(err, OD_ERR_IO, "cannot create folder '%s': %s", dir, strerror(errno));
  return OD_OK;
}

enum od_status od_trainer_save(struct od_trainer *t, const char *dir, struct od_err *err) {
  OD_TRY(od_trainer_mkdirs(dir, err));
  OD_TRY(od_trainer_sync_graph(t, err));
  char tmp[4096], final[4096];
  snprintf(final, sizeof final, "%s/checkpoint.bin", dir);
  snprintf(tmp, sizeof tmp, "%s/.checkpoint.bin.tmp.%d", dir, (int)getpid());
  struct writer w = {.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644), .hash = 1469598103934665603ull};
  if (w.fd < 0) return od_err_set(err, OD_ERR_IO, "cannot write checkpoint '%s': %s", tmp, strerror(errno));
  const struct od_graph *g = t->student->graph;
  uint32_t version = CKPT_VERSION, spp = (uint32_t)t->params.state_per_param;
  int64_t step = t->step;
  uint64_t seed = t->m->train.seed, nf = t->params.total, gb = g->param_bytes;
  put(&w, CKPT_MAGIC, 8);
  put(&w, &version, 4);
  put(&w, &spp, 4);
  put(&w, &step, 8);
  put(&w, &seed, 8);
  put(&w, &nf, 8);
  put(&w, &gb, 8);
  char student[4096];
  if (!realpath(t->m->student_model, student)) snprintf(student, sizeof student, "%s", t->m->student_model);
  uint32_t plen = (uint32_t)strlen(student);
  put(&w, &plen, 4);
  put(&w, student, plen);
  put(&w, t->params.w, nf * sizeof(float));
  put(&w, t->params.state, nf * spp * sizeof(float));
  if (gb) put(&w, g->param_data, gb);
  uint64_t h = w.hash;
  put(&w, &h, 8);
  bool ok = !w.failed && fsync(w.fd) == 0;
  ok &= close(w.fd) == 0;
  if (!ok || rename(tmp, final) != 0) {
    int e = errno;
    unlink(tmp);
    return od_err_set(err, OD_ERR_IO, "writing checkpoint '%s' failed: %s", final, strerror(e));
  }
  int dfd = open(dir, O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) { /* make the rename itself durable */
    (void)fsync(dfd);
    close(dfd);
  }
  return OD_OK;
}

static bool get(FILE *f, void *p, size_t n, uint64_t *hash) {
  if (n && fread(p, 1, n, f) != n) return false;
  fnv(hash, p, n);
  return true;
}

static bool skip_path(FILE *f, uint64_t *hash) {
  uint32_t plen;
  char buf[4096];
  if (!get(f, &plen, 4, hash) || plen >= sizeof buf) return false;
  return get(f, buf, plen, hash);
}

enum od_status od_checkpoint_read_student(const char *dir, char **student_path, uint8_t **graph_data,
                                          size_t *graph_bytes, struct od_err *err) {
  char path[4096];
  snprintf(path, sizeof path, "%s/checkpoint.bin", dir);
  FILE *f = fopen(path, "rb");
  if (!f) return od_err_set(err, OD_ERR_INVALID_ARG, "%s: cannot open: %s", path, strerror(errno));
  uint64_t hash = 1469598103934665603ull, seed, nf, gb, stored;
  char magic[8], student[4096];
  uint32_t version, spp, plen;
  int64_t step;
  enum od_status st = OD_OK;
  uint8_t *g = NULL, *skip = NULL;
  if (!get(f, magic, 8, &hash) || memcmp(magic, CKPT_MAGIC, 8) || !get(f, &version, 4, &hash) ||
      version != CKPT_VERSION || !get(f, &spp, 4, &hash) || !get(f, &step, 8, &hash) || !get(f, &seed, 8, &hash) ||
      !get(f, &nf, 8, &hash) || !get(f, &gb, 8, &hash) || !get(f, &plen, 4, &hash) || plen >= sizeof student ||
      !get(f, student, plen, &hash)) {
    st = od_err_set(err, OD_ERR_INVALID_ARG, "%s: not an onnx-distill checkpoint (bad header)", path);
  } else {
    student[plen] = '\0';
    size_t skip_bytes = (size_t)nf * (1 + spp) * sizeof(float);
    skip = malloc(skip_bytes + 1);
    g = malloc(gb + 1);
    if (!skip || !g) st = od_err_set(err, OD_ERR_OOM, "out of memory reading the checkpoint");
    else if (!get(f, skip, skip_bytes, &hash) || !get(f, g, gb, &hash))
      st = od_err_set(err, OD_ERR_INVALID_ARG, "%s: truncated checkpoint", path);
    else if (fread(&stored, 8, 1, f) != 1 || stored != hash)
      st = od_err_set(err, OD_ERR_INVALID_ARG, "%s: checksum mismatch (corrupt checkpoint)", path);
  }
  fclose(f);
  free(skip);
  if (st == OD_OK && !(*student_path = strdup(student))) st = od_err_set(err, OD_ERR_OOM, "out of memory");
  if (st != OD_OK) {
    free(g);
    return st;
  }
  *graph_data = g;
  *graph_bytes = gb;
  return OD_OK;
}

enum od_status od_trainer_load(struct od_trainer *t, const char *dir, struct od_err *err) {
  char path[4096];
  snprintf(path, sizeof path, "%s/checkpoint.bin", dir);
  FILE *f = fopen(path, "rb");
  if (!f) return od_err_set(err, OD_ERR_INVALID_ARG, "--resume: no checkpoint at '%s': %s", path, strerror(errno));
  struct od_graph *g = t->student->graph;
  uint64_t hash = 1469598103934665603ull, seed, nf, gb, stored;
  char magic[8];
  uint32_t version, spp;
  int64_t step;
  enum od_status st = OD_OK;
  float *w = NULL, *state = NULL;
  uint8_t *gdata = NULL;
  if (!get(f, magic, 8, &hash) || memcmp(magic, CKPT_MAGIC, 8) || !get(f, &version, 4, &hash) ||
      !get(f, &spp, 4, &hash) || !get(f, &step, 8, &hash) || !get(f, &seed, 8, &hash) || !get(f, &nf, 8, &hash) ||
      !get(f, &gb, 8, &hash) || !skip_path(f, &hash)) {
    st = od_err_set(err, OD_ERR_INVALID_ARG, "%s: not an onnx-distill checkpoint (bad header)", path);
  } else if (version != CKPT_VERSION) {
    st = od_err_set(err, OD_ERR_INVALID_ARG, "%s: checkpoint version %u, this build reads %u", path, version, CKPT_VERSION);
  } else if (nf != t->params.total || gb != g->param_bytes || spp != (uint32_t)t->params.state_per_param) {
    st = od_err_set(err, OD_ERR_INVALID_ARG,
                    "%s: made for another setup (%llu parameters, %llu bytes of student data, optimizer state %u) "
                    "than this manifest (%zu, %zu, %d)", path, (unsigned long long)nf, (unsigned long long)gb, spp,
                    t->params.total, g->param_bytes, t->params.state_per_param);
  } else {
    w = malloc(nf * sizeof(float) + 1);
    state = malloc(nf * spp * sizeof(float) + 1);
    gdata = malloc(gb + 1);
    if (!w || !state || !gdata) st = od_err_set(err, OD_ERR_OOM, "out of memory reading the checkpoint");
    else if (!get(f, w, nf * sizeof(float), &hash) || !get(f, state, nf * spp * sizeof(float), &hash) ||
             !get(f, gdata, gb, &hash))
      st = od_err_set(err, OD_ERR_INVALID_ARG, "%s: truncated checkpoint", path);
    else if (fread(&stored, 8, 1, f) != 1 || stored != hash)
      st = od_err_set(err, OD_ERR_INVALID_ARG, "%s: checksum mismatch (corrupt checkpoint)", path);
  }
  fclose(f);
  if (st == OD_OK) { /* commit only after everything checked out */
    memcpy(t->params.w, w, nf * sizeof(float));
    memcpy(t->params.state, state, nf * spp * sizeof(float));
    if (gb) memcpy(g->param_data, gdata, gb);
    t->step = step;
  }
  free(w);
  free(state);
  free(gdata);
  return st;
}
