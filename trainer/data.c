/* trainer/data.c: training data sources (see data.h).
 *
 *   random    standard-normal noise of the input's shape: distils any model with no dataset
 *   images    a folder of JPEGs (unlabeled: pure distillation on teacher outputs), resized and
 *             normalised; an epoch is a seeded permutation of the files
 *   voc, synthetic   detection data with the reference method's augmentation: trainer/data_det.c
 *             (the pipeline and its conventions are described there)
 *
 * Every batch is a function of (seed, step) only, so a resumed run sees exactly the batches an
 * uninterrupted one would. The images source decodes the next batch on a worker thread while the
 * trainer runs the current one; the detection sources keep a pool of data.workers threads. */
#include "trainer/data.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "loaders/image.h"
#include "trainer/data_internal.h"

struct od_data {
  struct od_data_cfg cfg;       /* copy (strings are the manifest's) */
  int n, c, h, w;               /* batch geometry (h, w: the largest size) */
  uint64_t seed;
  float *images;                /* [n, c, h, w] handed out */
  int out_h, out_w;
  struct od_data_stats stats;
  /* images */
  char **files;
  int n_files;
  float *next;                  /* batch being prepared by the worker */
  int next_h, next_w;
  int64_t next_step;            /* step the worker is preparing, or -1 */
  bool worker_running;
  pthread_t worker;
  struct od_err worker_err;
  enum od_status worker_status;
  /* voc, synthetic */
  struct od_detsrc *det;
};

static uint64_t mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Uniform in [0, 1) from a counter. */
static double unif(uint64_t *s) { return (double)(mix((*s)++) >> 11) / 9007199254740992.0; }

void od_data_step_size(const struct od_data_cfg *c, uint64_t seed, int h, int w, int64_t step, int *oh, int *ow) {
  if (c->size_min > 0 && c->size_max > c->size_min && c->size_step > 0) {
    int k = (c->size_max - c->size_min) / c->size_step + 1;
    uint64_t s = mix(seed ^ 0x51ed270b27c3a0f1ull) + (uint64_t)step;
    int pick = (int)(mix(s) % (uint64_t)k);
    *oh = *ow = c->size_min + pick * c->size_step;
  } else {
    *oh = h;
    *ow = w;
  }
}

/* The input size of a step: fixed, or drawn from [min, max] in steps for multi-scale training. */
static void step_size(const struct od_data *d, int64_t step, int *h, int *w) {
  od_data_step_size(&d->cfg, d->seed, d->h, d->w, step, h, w);
}

static void fill_random(const struct od_data *d, int64_t step, float *dst, int h, int w) {
  uint64_t s = mix(d->seed) ^ mix((uint64_t)step * 0x2545f4914f6cdd1dull);
  int64_t n = (int64_t)d->n * d->c * h * w;
  for (int64_t i = 0; i + 1 < n; i += 2) { /* Box-Muller, two values per pair of draws */
    double u = unif(&s) + 1e-12, v = unif(&s), r = sqrt(-2 * log(u));
    dst[i] = (float)(r * cos(6.283185307179586 * v));
    dst[i + 1] = (float)(r * sin(6.283185307179586 * v));
  }
  if (n % 2) dst[n - 1] = 0;
}

/* File index of image i of step's batch: epochs are seeded permutations (Fisher-Yates). */
static int image_index(const struct od_data *d, int64_t step, int i) {
  int64_t k = step * d->n + i;
  int64_t epoch = k / d->n_files, pos = k % d->n_files;
  /* walk the permutation of this epoch to position pos: O(n_files), fine for a batch */
  int nf = d->n_files;
  int *perm = malloc(sizeof(int) * (size_t)nf);
  if (!perm) return (int)pos;
  for (int j = 0; j < nf; j++) perm[j] = j;
  uint64_t s = mix(d->seed ^ 0x7f4a7c159e3779b9ull) + (uint64_t)epoch * 1000003ull;
  for (int j = nf - 1; j > 0; j--) {
    int r = (int)(mix(s++) % (uint64_t)(j + 1));
    int tmp = perm[j];
    perm[j] = perm[r];
    perm[r] = tmp;
  }
  int idx = perm[pos];
  free(perm);
  return idx;
}

/* Decodes step's batch into dst; unreadable files are reported once, counted and replaced by the
 * next readable file. */
static enum od_status fill_images(struct od_data *d, int64_t step, float *dst, int h, int w, struct od_err *err) {
  struct od_image_opts io = {.height = h, .width = w};
  memcpy(io.mean, d->cfg.mean, sizeof io.mean);
  memcpy(io.std, d->cfg.std, sizeof io.std);
  size_t plane = (size_t)d->c * (size_t)h * (size_t)w;
  for (int i = 0; i < d->n; i++) {
    int idx = image_index(d, step, i);
    enum od_status st = OD_ERR_IO;
    for (int tries = 0; tries < d->n_files && st != OD_OK; tries++) {
      const char *path = d->files[(idx + tries) % d->n_files];
      if (!path) continue; /* known bad */
      uint8_t *rgb = NULL;
      int sw, sh;
      struct od_err e = {0};
      st = od_jpeg_decode(path, &rgb, &sw, &sh, &e);
      if (st == OD_OK) {
        od_image_resize_normalize(rgb, sw, sh, &io, dst + (size_t)i * plane);
        free(rgb);
        d->stats.images_read++;
      } else {
        fprintf(stderr, "onnx-distill: skipping %s\n", e.msg);
        d->stats.skipped++;
        free(d->files[(idx + tries) % d->n_files]);
        d->files[(idx + tries) % d->n_files] = NULL;
      }
    }
    if (st != OD_OK) return od_err_set(err, OD_ERR_IO, "data.root: no readable JPEG left in %s", d->cfg.root);
  }
  return OD_OK;
}

static void *worker_main(void *arg) {
  struct od_data *d = arg;
  d->worker_status = fill_images(d, d->next_step, d->next, d->next_h, d->next_w, &d->worker_err);
  return NULL;
}

static void start_prefetch(struct od_data *d, int64_t step) {
  step_size(d, step, &d->next_h, &d->next_w);
  d->next_step = step;
  d->worker_running = pthread_create(&d->worker, NULL, worker_main, d) == 0;
  if (!d->worker_running) d->next_step = -1; /* no thread: decode on demand */
}

static void join_prefetch(struct od_data *d) {
  if (d->worker_running) pthread_join(d->worker, NULL);
  d->worker_running = false;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool is_jpeg(const char *name) {
  const char *dot = strrchr(name, '.');
  return dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

static enum od_status list_images(struct od_data *d, struct od_err *err) {
  if (!d->cfg.root) return od_err_set(err, OD_ERR_INVALID_ARG, "data.root: the images format needs a folder");
  DIR *dir = opendir(d->cfg.root);
  if (!dir) return od_err_set(err, OD_ERR_INVALID_ARG, "data.root: cannot open folder '%s'", d->cfg.root);
  struct dirent *e;
  while ((e = readdir(dir))) {
    if (!is_jpeg(e->d_name)) continue;
    char **f = realloc(d->files, sizeof(char *) * (size_t)(d->n_files + 1));
    if (!f) break;
    d->files = f;
    size_t len = strlen(d->cfg.root) + strlen(e->d_name) + 2;
    d->files[d->n_files] = malloc(len);
    if (!d->files[d->n_files]) break;
    snprintf(d->files[d->n_files++], len, "%s/%s", d->cfg.root, e->d_name);
  }
  closedir(dir);
  if (!d->n_files) return od_err_set(err, OD_ERR_INVALID_ARG, "data.root: no .jpg/.jpeg files in '%s'", d->cfg.root);
  qsort(d->files, (size_t)d->n_files, sizeof *d->files, cmp_str);
  return OD_OK;
}

enum od_status od_data_open(const struct od_data_cfg *cfg, int batch_size, int c, int h, int w, uint64_t seed,
                            struct od_data **out, struct od_err *err) {
  bool det = cfg->format == OD_DATA_VOC || cfg->format == OD_DATA_SYNTHETIC;
  if ((cfg->format == OD_DATA_IMAGES || det) && c != 3)
    return od_err_set(err, OD_ERR_INVALID_ARG, "data.format: %s feeds 3-channel inputs; the model's has %d",
                      det ? "detection data" : "images", c);
  struct od_data *d = calloc(1, sizeof *d);
  if (!d) return od_err_set(err, OD_ERR_OOM, "out of memory");
  d->cfg = *cfg;
  d->n = batch_size;
  d->c = c;
  d->h = h;
  d->w = w;
  d->seed = seed;
  d->next_step = -1;
  if (det) {
    enum od_status st = od_detsrc_open(cfg, batch_size, h, w, seed, &d->det, err);
    if (st != OD_OK) {
      free(d);
      return st;
    }
    *out = d;
    return OD_OK;
  }
  size_t floats = (size_t)batch_size * (size_t)c * (size_t)h * (size_t)w;
  if (cfg->size_max > 0) floats = (size_t)batch_size * (size_t)c * (size_t)cfg->size_max * (size_t)cfg->size_max;
  d->images = malloc(floats * sizeof(float));
  d->next = malloc(floats * sizeof(float));
  enum od_status st = d->images && d->next ? OD_OK : od_err_set(err, OD_ERR_OOM, "cannot allocate the batch");
  if (st == OD_OK && cfg->format == OD_DATA_IMAGES) st = list_images(d, err);
  if (st != OD_OK) {
    od_data_close(d);
    return st;
  }
  *out = d;
  return OD_OK;
}

enum od_status od_data_batch(struct od_data *d, int64_t step, struct od_batch *out, struct od_err *err) {
  if (d->det) return od_detsrc_batch(d->det, step, out, err);
  int h, w;
  step_size(d, step, &h, &w);
  if (d->cfg.format == OD_DATA_RANDOM) {
    fill_random(d, step, d->images, h, w);
  } else {
    join_prefetch(d);
    if (d->next_step == step) {
      if (d->worker_status != OD_OK) {
        *err = d->worker_err;
        return d->worker_status;
      }
      float *tmp = d->images; /* the prepared batch becomes current */
      d->images = d->next;
      d->next = tmp;
    } else {
      OD_TRY(fill_images(d, step, d->images, h, w, err));
    }
    start_prefetch(d, step + 1);
  }
  *out = (struct od_batch){.n = d->n, .c = d->c, .h = h, .w = w, .images = d->images};
  return OD_OK;
}

void od_data_stats(const struct od_data *d, struct od_data_stats *out) {
  if (d->det) od_detsrc_stats(d->det, out);
  else *out = d->stats;
}

void od_data_close(struct od_data *d) {
  if (!d) return;
  od_detsrc_close(d->det);
  join_prefetch(d);
  for (int i = 0; i < d->n_files; i++) free(d->files[i]);
  free(d->files);
  free(d->images);
  free(d->next);
  free(d);
}
