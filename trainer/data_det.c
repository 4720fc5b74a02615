/* trainer/data_det.c: detection data (data.format voc and synthetic) for training and evaluation.
 *
 * Datasets
 *   voc          ROOT + list files (loaders/voc.h: both list forms, libxml2 annotations). A list
 *                name is looked up as ROOT/<name>, then ROOT/ImageSets/Main/<name>; defaults
 *                trainval.txt (train) and test.txt (val). Annotations are all parsed when the
 *                source opens (as PaddleDetection does); malformed ones are reported with file and
 *                line, counted in stats.skipped and left out.
 *   synthetic    with data.root: a folder written by `onnx-distill make-data`, read like voc (the
 *                folder is generated there first, with data.images images, when it has no
 *                trainval list); without data.root: the same generator drawing in memory
 *                (data.images images, seed 0, 320 pixels, the make-data split: 20% val).
 *                Class labels: by name through data.classes; when data.classes names none of the
 *                synthetic classes (e.g. it is the default VOC list), the dataset's own order
 *                (label_list.txt: circle=0, square=1, ...) is used instead, with a note.
 *
 * Training pipeline per image: the reference reader (PaddleDetection static
 * configs/yolov3_reader.yml; operators in static/ppdet/data/transform/operators.py) in order:
 *   DecodeImage(RGB) -> MixupImage(Beta(1.5, 1.5); while epoch < 250 = mixup_epoch; the partner
 *   is another image of the same epoch order, perm[(pos + U{1..N-1}) % N], as the reader picks
 *   it; gt_score = f for the image's boxes, 1 - f for the partner's) -> ColorDistort ->
 *   RandomExpand(ratio 4, prob 0.5, fill = data.mean * 255, i.e. [123.675, 116.28, 103.53] by
 *   default, as the reader's fill_value) -> RandomCrop(SSD style) -> RandomFlipImage(0.5) ->
 *   NormalizeBox -> PadBox(50) -> BboxXYXY2XYWH; then per batch RandomShape (the size from
 *   data.size [min, max, step], the interpolation one of nearest/linear/area/cubic/lanczos4, both
 *   drawn per step) -> NormalizeImage(data.mean, data.std, /255) -> Permute(CHW, RGB).
 *   Gt2YoloTarget is not needed: the YOLOv3 loss takes the boxes. Details of each operator and the
 *   few deviations (saturating uint8 casts, boxes clamped to [0, 1] after normalising) are in
 *   trainer/augment.h.
 *
 * Determinism: the batch of step s is a function of (seed, s) only. Image i of step s is position
 * k = s * batch + i of the epoch order (epoch k / N, a seeded permutation per epoch); all its
 * random choices come from a stream seeded by (seed, k); the batch's size and interpolation from
 * (seed, s). A JPEG that fails to decode is reported once, counted, and replaced by the next
 * readable image in list order, which does not depend on when the failure was found. So worker
 * count and timing never change a batch.
 *
 * Workers: data.workers threads take the next steps in order and build whole batches into a ring
 * of workers + 2 batch buffers; the trainer's call returns the buffer of its step as soon as it is
 * ready (normally already waiting). A call for a step out of sequence (resume) discards the
 * prefetched batches and restarts the pipeline there. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "loaders/image.h"
#include "loaders/voc.h"
#include "trainer/augment.h"
#include "trainer/data_internal.h"
#include "trainer/synthetic.h"

#define SYNTH_SEED 0      /* the in-memory synthetic dataset: make-data's defaults */
#define SYNTH_SIZE 320
#define SYNTH_VAL 0.2

/* ---- the dataset: a parsed list, or synthetic images drawn in memory ------------------------------ */

struct detset {
  struct od_voc_set set;       /* records; synthetic in memory: .index = image number, no boxes */
  bool synth_mem;
  struct od_synth_cfg synth;
  int synth_label[OD_SYNTH_MAX_CLASSES]; /* label of each drawn kind */
  char *desc;                  /* for messages: the list file, or "synthetic data (in memory)" */
  unsigned char *bad;          /* per record: its JPEG failed to decode (reported once) */
  pthread_mutex_t mu;          /* guards bad and stats */
  bool mu_init;
  struct od_data_stats stats;
};

static bool file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static char *path_join(const char *a, const char *b) {
  size_t n = strlen(a) + strlen(b) + 2;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/%s", a, b);
  return p;
}

/* The list name as found under root: "<name>" or "ImageSets/Main/<name>" (malloc'd), or NULL. */
static char *find_list(const char *root, const char *name) {
  if (name[0] == '/') return file_exists(name) ? strdup(name) : NULL;
  char *p = path_join(root, name);
  bool ok = p && file_exists(p);
  free(p);
  if (ok) return strdup(name);
  char *rel = path_join("ImageSets/Main", name);
  if (!rel) return NULL;
  p = path_join(root, rel);
  ok = p && file_exists(p);
  free(p);
  if (ok) return rel;
  free(rel);
  return NULL;
}

static int class_in(const struct od_data_cfg *cfg, const char *name) {
  for (int i = 0; i < cfg->n_classes; i++)
    if (!strcmp(cfg->classes[i], name)) return i;
  return -1;
}

/* Reads ROOT/label_list.txt (one class a line); the built-in names when the file is missing. */
static enum od_status read_labels(const char *root, char ***names, int *n, struct od_err *err) {
  char *p = path_join(root, "label_list.txt");
  if (!p) return od_err_set(err, OD_ERR_OOM, "out of memory");
  FILE *f = fopen(p, "r");
  free(p);
  char **v = NULL;
  int k = 0;
  if (!f) {
    if (!(v = calloc(OD_SYNTH_MAX_CLASSES, sizeof *v))) return od_err_set(err, OD_ERR_OOM, "out of memory");
    for (; k < OD_SYNTH_MAX_CLASSES; k++)
      if (!(v[k] = strdup(od_synth_class_names[k]))) break;
  } else {
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) >= 0) {
      char *s = line;
      while (*s == ' ' || *s == '\t') s++;
      size_t len = strlen(s);
      while (len && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' ' || s[len - 1] == '\t')) s[--len] = 0;
      if (!len) continue;
      char **nv = realloc(v, sizeof *v * (size_t)(k + 1));
      if (!nv) break;
      v = nv;
      if (!(v[k] = strdup(s))) break;
      k++;
    }
    free(line);
    fclose(f);
  }
  *names = v;
  *n = k;
  return OD_OK;
}

static void print_label_note(const struct od_data_cfg *cfg, char *const *names, int n, const char *where) {
  fprintf(stderr, "onnx-distill: note: data.classes (%s%s) names none of the synthetic classes; labels follow %s:",
          cfg->n_classes ? cfg->classes[0] : "", cfg->n_classes > 1 ? ", ..." : "", where);
  for (int i = 0; i < n; i++) fprintf(stderr, " %s=%d", names[i], i);
  fprintf(stderr, "\n");
}

static void detset_free(struct detset *ds) {
  od_voc_set_free(&ds->set);
  free(ds->desc);
  free(ds->bad);
  if (ds->mu_init) pthread_mutex_destroy(&ds->mu);
  memset(ds, 0, sizeof *ds);
}

/* The in-memory synthetic set: the make-data split of data.images images. */
static enum od_status open_synth_mem(const struct od_data_cfg *cfg, bool val, bool quiet, struct detset *ds,
                                     struct od_err *err) {
  ds->synth_mem = true;
  ds->synth.seed = SYNTH_SEED;
  ds->synth.size = SYNTH_SIZE;
  for (int k = 0; k < OD_SYNTH_MAX_CLASSES; k++) { /* the synthetic classes that data.classes names */
    int label = class_in(cfg, od_synth_class_names[k]);
    if (label < 0) continue;
    ds->synth.kinds[ds->synth.n_kinds] = k;
    ds->synth_label[ds->synth.n_kinds++] = label;
  }
  if (!ds->synth.n_kinds) { /* none: the default shapes, labelled in their own order */
    int n = cfg->n_classes < OD_SYNTH_DEFAULT_CLASSES ? cfg->n_classes : OD_SYNTH_DEFAULT_CLASSES;
    if (n < 1) return od_err_set(err, OD_ERR_INVALID_ARG, "data.classes: empty");
    for (int k = 0; k < n; k++) ds->synth.kinds[k] = ds->synth_label[k] = k;
    ds->synth.n_kinds = n;
    if (!quiet) print_label_note(cfg, (char *const *)od_synth_class_names, n, "the built-in order");
  }
  bool *is_test = NULL;
  OD_TRY(od_synth_split(SYNTH_SEED, cfg->images, SYNTH_VAL, &is_test, err));
  ds->set.im = calloc((size_t)cfg->images, sizeof *ds->set.im);
  if (!ds->set.im) {
    free(is_test);
    return od_err_set(err, OD_ERR_OOM, "out of memory");
  }
  for (int k = 0; k < cfg->images; k++)
    if (is_test[k] == val) ds->set.im[ds->set.n++].index = k;
  free(is_test);
  if (!ds->set.n)
    return od_err_set(err, OD_ERR_INVALID_ARG, "data.images: %d synthetic images leave no %s image; use more",
                      cfg->images, val ? "validation" : "training");
  if (!(ds->desc = strdup("synthetic data (in memory)"))) return od_err_set(err, OD_ERR_OOM, "out of memory");
  return OD_OK;
}

static enum od_status detset_open(const struct od_data_cfg *cfg, bool val, struct detset *ds, struct od_err *err) {
  memset(ds, 0, sizeof *ds);
  if (pthread_mutex_init(&ds->mu, NULL) != 0) return od_err_set(err, OD_ERR_INTERNAL, "pthread_mutex_init failed");
  ds->mu_init = true;
  enum od_status st = OD_OK;
  char *rel = NULL, **labels = NULL;
  int n_labels = 0;
  const char *key = val ? "data.val" : "data.train";
  const char *list = val ? (cfg->val ? cfg->val : "test.txt") : (cfg->train ? cfg->train : "trainval.txt");
  if (cfg->format == OD_DATA_SYNTHETIC && !cfg->root) {
    st = open_synth_mem(cfg, val, val, ds, err);
    goto done;
  }
  if (!cfg->root) {
    st = od_err_set(err, OD_ERR_INVALID_ARG, "data.root: the voc format needs the dataset folder");
    goto done;
  }
  rel = find_list(cfg->root, list);
  if (!rel && cfg->format == OD_DATA_SYNTHETIC) { /* the demo's default: make the folder */
    /* make-data draws the first K shapes: as many as data.classes names in that order; all of them
     * when it names others; the default 4 when it names none */
    bool overlap = false;
    int lead = 0;
    for (int k = 0; k < OD_SYNTH_MAX_CLASSES; k++) overlap |= class_in(cfg, od_synth_class_names[k]) >= 0;
    while (lead < OD_SYNTH_MAX_CLASSES && class_in(cfg, od_synth_class_names[lead]) >= 0) lead++;
    int n_classes = overlap ? (lead ? lead : OD_SYNTH_MAX_CLASSES)
                            : (cfg->n_classes < OD_SYNTH_DEFAULT_CLASSES ? cfg->n_classes : OD_SYNTH_DEFAULT_CLASSES);
    fprintf(stderr, "onnx-distill: writing a synthetic dataset of %d images to %s\n", cfg->images, cfg->root);
    struct od_synth_write_opts wo = {.out = cfg->root, .images = cfg->images, .seed = SYNTH_SEED, .size = SYNTH_SIZE,
                                     .val_fraction = SYNTH_VAL, .n_classes = n_classes};
    if ((st = od_synth_write(&wo, err)) != OD_OK) goto done;
    rel = find_list(cfg->root, list);
  }
  if (!rel) {
    st = od_err_set(err, OD_ERR_INVALID_ARG, "%s: list '%s' not found in %s (nor in %s/ImageSets/Main)", key, list,
                    cfg->root, cfg->root);
    goto done;
  }
  const char *const *names = (const char *const *)cfg->classes;
  int n_names = cfg->n_classes;
  if (cfg->format == OD_DATA_SYNTHETIC) {
    if ((st = read_labels(cfg->root, &labels, &n_labels, err)) != OD_OK) goto done;
    bool overlap = false;
    for (int k = 0; k < n_labels; k++) overlap |= class_in(cfg, labels[k]) >= 0;
    if (!overlap) {
      names = (const char *const *)labels;
      n_names = n_labels < cfg->n_classes ? n_labels : cfg->n_classes;
      if (!val) print_label_note(cfg, labels, n_names, "label_list.txt");
    }
  }
  if (!(ds->desc = path_join(cfg->root, rel))) {
    st = od_err_set(err, OD_ERR_OOM, "out of memory");
    goto done;
  }
  if ((st = od_voc_load(cfg->root, rel, names, n_names, stderr, &ds->set, err)) != OD_OK) {
    od_err_prefix(err, "%s", key);
    goto done;
  }
  ds->stats.skipped = ds->set.skipped;
done:
  if (st == OD_OK && !(ds->bad = calloc((size_t)ds->set.n, 1))) st = od_err_set(err, OD_ERR_OOM, "out of memory");
  for (int i = 0; i < n_labels; i++) free(labels[i]);
  free(labels);
  free(rel);
  if (st != OD_OK) detset_free(ds);
  return st;
}

/* Clips pixel boxes as loaders/voc.h describes (to [0, w-1] x [0, h-1]) and adds the valid ones. */
static enum od_status add_clipped(struct od_aug_sample *s, struct od_voc_box b, struct od_err *err) {
  if (b.x1 < 0) b.x1 = 0;
  if (b.y1 < 0) b.y1 = 0;
  if (b.x2 > (float)(s->w - 1)) b.x2 = (float)(s->w - 1);
  if (b.y2 > (float)(s->h - 1)) b.y2 = (float)(s->h - 1);
  if (!(b.x2 > b.x1 && b.y2 > b.y1)) return OD_OK;
  struct od_aug_box ab = {b.x1, b.y1, b.x2, b.y2, 1.0f, b.label, b.difficult};
  return od_aug_add_box(s, ab, err);
}

/* Record idx as a sample (pixels and boxes, scores 1). A decode failure returns its status. */
static enum od_status load_record(struct detset *ds, int idx, struct od_aug_sample *s, struct od_err *err) {
  const struct od_voc_image *rec = &ds->set.im[idx];
  uint8_t *rgb = NULL;
  int w, h;
  if (ds->synth_mem) {
    struct od_synth_object o[OD_SYNTH_MAX_OBJECTS];
    int n = 0;
    OD_TRY(od_synth_draw(&ds->synth, rec->index, &rgb, &w, &h, o, &n, err));
    enum od_status st = od_aug_sample_from_rgb(s, rgb, w, h, err);
    free(rgb);
    for (int i = 0; st == OD_OK && i < n; i++) { /* the numbers make-data would write, read back as voc.c does */
      struct od_voc_box b = {(float)o[i].xmin, (float)o[i].ymin, (float)o[i].xmax, (float)o[i].ymax,
                             ds->synth_label[o[i].cls], 0};
      st = add_clipped(s, b, err);
    }
    return st;
  }
  OD_TRY(od_jpeg_decode(rec->image, &rgb, &w, &h, err));
  enum od_status st = od_aug_sample_from_rgb(s, rgb, w, h, err);
  free(rgb);
  for (int i = 0; st == OD_OK && i < rec->n_boxes; i++) {
    if (rec->width > 0) { /* clipped to the annotation's size already */
      const struct od_voc_box *b = &rec->boxes[i];
      st = od_aug_add_box(s, (struct od_aug_box){b->x1, b->y1, b->x2, b->y2, 1.0f, b->label, b->difficult}, err);
    } else {
      st = add_clipped(s, rec->boxes[i], err);
    }
  }
  return st;
}

static bool is_bad(struct detset *ds, int idx) {
  pthread_mutex_lock(&ds->mu);
  bool b = ds->bad[idx];
  pthread_mutex_unlock(&ds->mu);
  return b;
}

static void mark_bad(struct detset *ds, int idx, const char *msg) {
  pthread_mutex_lock(&ds->mu);
  if (!ds->bad[idx]) {
    ds->bad[idx] = 1;
    ds->stats.skipped++;
    fprintf(stderr, "onnx-distill: skipping %s\n", msg);
  }
  pthread_mutex_unlock(&ds->mu);
}

static void count_read(struct detset *ds) {
  pthread_mutex_lock(&ds->mu);
  ds->stats.images_read++;
  pthread_mutex_unlock(&ds->mu);
}

/* Record idx, or the next readable one in list order. */
static enum od_status load_good(struct detset *ds, int idx, struct od_aug_sample *s, struct od_err *err) {
  int n = ds->set.n;
  for (int t = 0; t < n; t++) {
    int j = (idx + t) % n;
    if (is_bad(ds, j)) continue;
    struct od_err e = {0};
    enum od_status st = load_record(ds, j, s, &e);
    if (st == OD_OK) {
      count_read(ds);
      return OD_OK;
    }
    if (st == OD_ERR_OOM) {
      *err = e;
      return st;
    }
    mark_bad(ds, j, e.msg);
  }
  return od_err_set(err, OD_ERR_IO, "data: no readable image left in %s (%d listed)", ds->desc, n);
}

/* ---- the training source ---------------------------------------------------------------------------- */

enum { SLOT_FREE, SLOT_WORKING, SLOT_READY, SLOT_OUT };

struct slot {
  int state;
  int64_t step;
  uint64_t gen;
  int h, w;
  float *images;
  int *n_gt;
  struct od_gt_box *gt;
  enum od_status st;
  struct od_err err;
};

struct wctx {
  struct od_detsrc *d;
  int *perm;
  int64_t perm_epoch;
};

struct od_detsrc {
  struct od_data_cfg cfg;
  int n, h, w;
  uint64_t seed;
  struct detset ds;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct slot *slots;
  int n_slots;
  pthread_t *th;
  struct wctx *ctx; /* [n_th + 1]: the last one for building on the caller's thread */
  int n_th;
  int64_t next_assign; /* the next step a worker takes; -1 before the first request */
  uint64_t gen;        /* bumped when the pipeline restarts at another step */
  bool stop;
  int out_slot;
};

static const int *epoch_perm(struct wctx *c, int64_t epoch) {
  if (c->perm_epoch == epoch) return c->perm;
  int n = c->d->ds.set.n;
  for (int i = 0; i < n; i++) c->perm[i] = i;
  struct od_rng r = od_rng_make(c->d->seed ^ 0x7065726d75746521ull, (uint64_t)epoch);
  for (int i = n - 1; i > 0; i--) {
    int j = (int)od_rng_int(&r, 0, i + 1), t = c->perm[i];
    c->perm[i] = c->perm[j];
    c->perm[j] = t;
  }
  c->perm_epoch = epoch;
  return c->perm;
}

/* Image i of step's batch, augmented (pixel boxes of the final image). */
static enum od_status build_sample(struct wctx *c, int64_t step, int i, struct od_aug_sample *s, struct od_err *err) {
  struct od_detsrc *d = c->d;
  int64_t n = d->ds.set.n, k = step * d->n + i, epoch = k / n, pos = k % n;
  const int *perm = epoch_perm(c, epoch);
  int idx = perm[pos];
  struct od_rng r = od_rng_make(d->seed ^ 0x6175676d656e7421ull, (uint64_t)k);
  OD_TRY(load_good(&d->ds, idx, s, err));
  if (epoch < d->cfg.mixup_epochs && n > 1) {
    int partner = perm[(pos + od_rng_int(&r, 1, n)) % n];
    double f = od_rng_beta(&r, 1.5, 1.5);
    f = f < 0 ? 0 : f > 1 ? 1 : f;
    if (f < 1) {
      struct od_aug_sample b = {0};
      enum od_status st = load_good(&d->ds, partner, &b, err);
      if (st == OD_OK) st = od_aug_mixup(s, &b, f, err);
      od_aug_sample_free(&b);
      OD_TRY(st);
    }
  }
  od_aug_color_distort(s, &r);
  float fill[3] = {d->cfg.mean[0] * 255.0f, d->cfg.mean[1] * 255.0f, d->cfg.mean[2] * 255.0f};
  OD_TRY(od_aug_expand(s, &r, 4.0, 0.5, fill, err));
  OD_TRY(od_aug_crop(s, &r, err));
  od_aug_random_flip(s, &r);
  return OD_OK;
}

static float clamp01(float v) { return v < 0 ? 0.0f : v > 1 ? 1.0f : v; }

static void build_batch(struct wctx *c, struct slot *sl) {
  struct od_detsrc *d = c->d;
  int h, w;
  od_data_step_size(&d->cfg, d->seed, d->h, d->w, sl->step, &h, &w);
  struct od_rng br = od_rng_make(d->seed ^ 0x72616e647368617ull, (uint64_t)sl->step);
  enum od_interp interp = (enum od_interp)od_rng_int(&br, 0, OD_INTERP_COUNT);
  sl->h = h;
  sl->w = w;
  sl->st = OD_OK;
  od_err_clear(&sl->err);
  size_t plane = (size_t)3 * h * w;
  for (int i = 0; i < d->n && sl->st == OD_OK; i++) {
    struct od_aug_sample s = {0};
    sl->st = build_sample(c, sl->step, i, &s, &sl->err);
    if (sl->st == OD_OK)
      sl->st = od_resize_normalize(s.px, s.w, s.h, w, h, interp, d->cfg.mean, d->cfg.std, sl->images + i * plane, &sl->err);
    int k = 0;
    for (int j = 0; sl->st == OD_OK && j < s.n && k < OD_PAD_BOXES; j++) { /* NormalizeBox, PadBox, XYXY -> XYWH */
      const struct od_aug_box *b = &s.b[j];
      float x1 = clamp01(b->x1 / (float)s.w), y1 = clamp01(b->y1 / (float)s.h);
      float x2 = clamp01(b->x2 / (float)s.w), y2 = clamp01(b->y2 / (float)s.h);
      if (!(x2 > x1 && y2 > y1)) continue;
      sl->gt[(size_t)i * OD_MAX_GT + k++] =
          (struct od_gt_box){(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, b->label, b->score, b->difficult};
    }
    sl->n_gt[i] = k;
    od_aug_sample_free(&s);
  }
  if (sl->st != OD_OK) od_err_prefix(&sl->err, "step %lld", (long long)sl->step);
}

static void *worker_main(void *arg) {
  struct wctx *c = arg;
  struct od_detsrc *d = c->d;
  pthread_mutex_lock(&d->mu);
  while (!d->stop) {
    struct slot *sl = NULL;
    if (d->next_assign >= 0)
      for (int i = 0; i < d->n_slots && !sl; i++)
        if (d->slots[i].state == SLOT_FREE) sl = &d->slots[i];
    if (!sl) {
      pthread_cond_wait(&d->cv, &d->mu);
      continue;
    }
    sl->state = SLOT_WORKING;
    sl->step = d->next_assign++;
    sl->gen = d->gen;
    pthread_mutex_unlock(&d->mu);
    build_batch(c, sl);
    pthread_mutex_lock(&d->mu);
    sl->state = sl->gen == d->gen ? SLOT_READY : SLOT_FREE;
    pthread_cond_broadcast(&d->cv);
  }
  pthread_mutex_unlock(&d->mu);
  return NULL;
}

void od_detsrc_close(struct od_detsrc *d) {
  if (!d) return;
  if (d->th) {
    pthread_mutex_lock(&d->mu);
    d->stop = true;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    for (int i = 0; i < d->n_th; i++) pthread_join(d->th[i], NULL);
  }
  pthread_mutex_destroy(&d->mu);
  pthread_cond_destroy(&d->cv);
  for (int i = 0; d->slots && i < d->n_slots; i++) {
    free(d->slots[i].images);
    free(d->slots[i].n_gt);
    free(d->slots[i].gt);
  }
  free(d->slots);
  for (int i = 0; d->ctx && i <= d->n_th; i++) free(d->ctx[i].perm);
  free(d->ctx);
  free(d->th);
  detset_free(&d->ds);
  free(d);
}

enum od_status od_detsrc_open(const struct od_data_cfg *cfg, int batch_size, int h, int w, uint64_t seed,
                           struct od_detsrc **out, struct od_err *err) {
  if (batch_size < 1 || h < 1 || w < 1)
    return od_err_set(err, OD_ERR_INVALID_ARG, "data: batch %d of %d x %d images", batch_size, h, w);
  struct od_detsrc *d = calloc(1, sizeof *d);
  if (!d) return od_err_set(err, OD_ERR_OOM, "out of memory");
  d->cfg = *cfg;
  d->n = batch_size;
  d->h = h;
  d->w = w;
  d->seed = seed;
  d->next_assign = -1;
  d->out_slot = -1;
  pthread_mutex_init(&d->mu, NULL);
  pthread_cond_init(&d->cv, NULL);
  enum od_status st = detset_open(cfg, false, &d->ds, err);
  int workers = cfg->workers > 0 ? cfg->workers : 1;
  int bh = h > cfg->size_max ? h : cfg->size_max, bw = w > cfg->size_max ? w : cfg->size_max;
  if (st == OD_OK) {
    d->n_slots = workers + 2;
    d->slots = calloc((size_t)d->n_slots, sizeof *d->slots);
    d->ctx = calloc((size_t)workers + 1, sizeof *d->ctx);
    d->th = calloc((size_t)workers, sizeof *d->th);
    if (!d->slots || !d->ctx || !d->th) st = od_err_set(err, OD_ERR_OOM, "out of memory");
  }
  for (int i = 0; st == OD_OK && i < d->n_slots; i++) {
    struct slot *sl = &d->slots[i];
    sl->images = malloc((size_t)batch_size * 3 * bh * bw * sizeof(float));
    sl->n_gt = calloc((size_t)batch_size, sizeof(int));
    sl->gt = calloc((size_t)batch_size * OD_MAX_GT, sizeof *sl->gt);
    if (!sl->images || !sl->n_gt || !sl->gt)
      st = od_err_set(err, OD_ERR_OOM, "cannot allocate %d batch buffers of %d x 3 x %d x %d", d->n_slots, batch_size,
                      bh, bw);
  }
  for (int i = 0; st == OD_OK && i <= workers; i++) {
    d->ctx[i] = (struct wctx){.d = d, .perm_epoch = -1, .perm = malloc(sizeof(int) * (size_t)d->ds.set.n)};
    if (!d->ctx[i].perm) st = od_err_set(err, OD_ERR_OOM, "out of memory");
  }
  for (int i = 0; st == OD_OK && i < workers; i++) {
    if (pthread_create(&d->th[i], NULL, worker_main, &d->ctx[i]) != 0) break; /* fewer threads: still works */
    d->n_th++;
  }
  if (st != OD_OK) {
    od_detsrc_close(d);
    return st;
  }
  *out = d;
  return OD_OK;
}

enum od_status od_detsrc_batch(struct od_detsrc *d, int64_t step, struct od_batch *out, struct od_err *err) {
  if (step < 0) return od_err_set(err, OD_ERR_INVALID_ARG, "data: step %lld", (long long)step);
  struct slot *sl = NULL;
  pthread_mutex_lock(&d->mu);
  if (d->out_slot >= 0) d->slots[d->out_slot].state = SLOT_FREE; /* the caller is done with it */
  d->out_slot = -1;
  if (d->n_th == 0) { /* no worker thread could be started: build here */
    sl = &d->slots[0];
    sl->step = step;
    pthread_mutex_unlock(&d->mu);
    build_batch(&d->ctx[0], sl);
    pthread_mutex_lock(&d->mu);
  } else {
    bool have = d->next_assign == step;
    for (int i = 0; i < d->n_slots; i++) {
      struct slot *s = &d->slots[i];
      if (s->gen != d->gen || (s->state != SLOT_WORKING && s->state != SLOT_READY)) continue;
      if (s->step == step) have = true;
      else if (s->step < step && s->state == SLOT_READY) s->state = SLOT_FREE; /* skipped over */
    }
    if (!have) { /* out of sequence: restart the pipeline at step */
      d->gen++;
      for (int i = 0; i < d->n_slots; i++)
        if (d->slots[i].state == SLOT_READY) d->slots[i].state = SLOT_FREE;
      d->next_assign = step;
    }
    pthread_cond_broadcast(&d->cv);
    for (;;) {
      bool freed = false;
      for (int i = 0; i < d->n_slots && !sl; i++) {
        struct slot *s = &d->slots[i];
        if (s->state != SLOT_READY) continue;
        if (s->gen == d->gen && s->step == step) sl = s;
        else if (s->gen != d->gen || s->step < step) s->state = SLOT_FREE, freed = true; /* stale */
      }
      if (sl) break;
      if (freed) pthread_cond_broadcast(&d->cv);
      pthread_cond_wait(&d->cv, &d->mu);
    }
  }
  sl->state = SLOT_OUT;
  d->out_slot = (int)(sl - d->slots);
  pthread_cond_broadcast(&d->cv);
  pthread_mutex_unlock(&d->mu);
  if (sl->st != OD_OK) {
    *err = sl->err;
    return sl->st;
  }
  *out = (struct od_batch){.n = d->n, .c = 3, .h = sl->h, .w = sl->w, .images = sl->images, .n_gt = sl->n_gt, .gt = sl->gt};
  return OD_OK;
}

void od_detsrc_stats(const struct od_detsrc *d, struct od_data_stats *out) {
  struct detset *ds = (struct detset *)&d->ds; /* the mutex inside is not part of the value */
  pthread_mutex_lock(&ds->mu);
  *out = ds->stats;
  pthread_mutex_unlock(&ds->mu);
}

/* ---- evaluation ------------------------------------------------------------------------------------- */

struct eval_buf {
  float *images;
  struct od_eval_image *info;
  struct od_eval_gt *gt;
  int cap_n, gt_cap;
  int n;
  int64_t next_pos; /* the record after the last one this batch took */
  enum od_status st;
  struct od_err err;
};

struct od_data_eval {
  struct od_data_cfg cfg;
  int size;
  struct detset ds;
  int64_t pos; /* the next record to hand out */
  struct eval_buf buf[2];
  int cur;     /* buf[cur] was handed out */
  pthread_t th;
  bool running, prefetched;
  int64_t pre_pos;
  int pre_n;
};

static enum od_status eval_fill(struct od_data_eval *e, struct eval_buf *b, int64_t pos, int batch_n, struct od_err *err) {
  size_t plane = (size_t)3 * e->size * e->size;
  if (b->cap_n < batch_n) {
    float *im = realloc(b->images, (size_t)batch_n * plane * sizeof(float));
    if (im) b->images = im;
    struct od_eval_image *in = realloc(b->info, sizeof *in * (size_t)batch_n);
    if (in) b->info = in;
    if (!im || !in) return od_err_set(err, OD_ERR_OOM, "cannot allocate an eval batch of %d", batch_n);
    b->cap_n = batch_n;
  }
  b->n = 0;
  int n_gt = 0;
  size_t *offs = malloc(sizeof(size_t) * (size_t)batch_n);
  if (!offs) return od_err_set(err, OD_ERR_OOM, "out of memory");
  enum od_status st = OD_OK;
  while (st == OD_OK && b->n < batch_n && pos < e->ds.set.n) {
    int idx = (int)pos++;
    if (is_bad(&e->ds, idx)) continue;
    struct od_aug_sample s = {0};
    struct od_err le = {0};
    enum od_status ls = load_record(&e->ds, idx, &s, &le);
    if (ls != OD_OK) {
      od_aug_sample_free(&s);
      if (ls == OD_ERR_OOM) {
        *err = le;
        st = ls;
      } else {
        mark_bad(&e->ds, idx, le.msg);
      }
      continue;
    }
    count_read(&e->ds);
    st = od_resize_normalize(s.px, s.w, s.h, e->size, e->size, OD_INTERP_CUBIC, e->cfg.mean, e->cfg.std,
                             b->images + (size_t)b->n * plane, err);
    if (st == OD_OK && n_gt + s.n > b->gt_cap) {
      int nc = (n_gt + s.n) * 2 + 16;
      struct od_eval_gt *g = realloc(b->gt, sizeof *g * (size_t)nc);
      if (!g) st = od_err_set(err, OD_ERR_OOM, "out of memory");
      else b->gt = g, b->gt_cap = nc;
    }
    if (st == OD_OK) {
      const struct od_voc_image *rec = &e->ds.set.im[idx];
      offs[b->n] = (size_t)n_gt;
      for (int j = 0; j < s.n; j++)
        b->gt[n_gt++] = (struct od_eval_gt){s.b[j].x1, s.b[j].y1, s.b[j].x2, s.b[j].y2, s.b[j].label, s.b[j].difficult};
      b->info[b->n++] = (struct od_eval_image){.path = rec->image, .index = idx, .width = s.w, .height = s.h, .n_gt = s.n};
    }
    od_aug_sample_free(&s);
  }
  for (int i = 0; st == OD_OK && i < b->n; i++) b->info[i].gt = b->gt + offs[i]; /* after the last realloc */
  free(offs);
  b->next_pos = pos;
  return st;
}

static void *eval_worker(void *arg) {
  struct od_data_eval *e = arg;
  struct eval_buf *b = &e->buf[1 - e->cur];
  od_err_clear(&b->err);
  b->st = eval_fill(e, b, e->pre_pos, e->pre_n, &b->err);
  return NULL;
}

static void eval_join(struct od_data_eval *e) {
  if (e->running) pthread_join(e->th, NULL);
  e->running = false;
}

enum od_status od_data_open_eval(const struct od_data_cfg *cfg, int size, struct od_data_eval **out,
                                 struct od_err *err) {
  if (cfg->format != OD_DATA_VOC && cfg->format != OD_DATA_SYNTHETIC)
    return od_err_set(err, OD_ERR_INVALID_ARG, "evaluation needs labelled data: data.format voc or synthetic");
  if (size <= 0) size = cfg->size_max;
  if (size <= 0 || size > 16384) return od_err_set(err, OD_ERR_INVALID_ARG, "evaluation size %d (set data.size)", size);
  struct od_data_eval *e = calloc(1, sizeof *e);
  if (!e) return od_err_set(err, OD_ERR_OOM, "out of memory");
  e->cfg = *cfg;
  e->size = size;
  enum od_status st = detset_open(cfg, true, &e->ds, err);
  if (st != OD_OK) {
    free(e);
    return st;
  }
  *out = e;
  return OD_OK;
}

int od_data_eval_count(const struct od_data_eval *e) { return e->ds.set.n; }

enum od_status od_data_eval_next(struct od_data_eval *e, int batch_n, struct od_eval_batch *out, struct od_err *err) {
  if (batch_n < 1) return od_err_set(err, OD_ERR_INVALID_ARG, "evaluation batch %d", batch_n);
  eval_join(e);
  struct eval_buf *b = &e->buf[1 - e->cur];
  if (!(e->prefetched && e->pre_pos == e->pos && e->pre_n == batch_n)) {
    od_err_clear(&b->err);
    b->st = eval_fill(e, b, e->pos, batch_n, &b->err);
  }
  e->prefetched = false;
  e->cur = 1 - e->cur;
  if (b->st != OD_OK) {
    *err = b->err;
    return b->st;
  }
  e->pos = b->next_pos;
  *out = (struct od_eval_batch){.n = b->n, .c = 3, .h = e->size, .w = e->size, .images = b->images, .info = b->info};
  if (e->pos < e->ds.set.n) { /* decode the next batch meanwhile */
    e->pre_pos = e->pos;
    e->pre_n = batch_n;
    e->running = pthread_create(&e->th, NULL, eval_worker, e) == 0;
    e->prefetched = e->running;
  }
  return OD_OK;
}

void od_data_eval_rewind(struct od_data_eval *e) {
  eval_join(e);
  e->prefetched = false;
  e->pos = 0;
}

void od_data_eval_stats(const struct od_data_eval *e, struct od_data_stats *out) {
  struct detset *ds = (struct detset *)&e->ds;
  pthread_mutex_lock(&ds->mu);
  *out = ds->stats;
  pthread_mutex_unlock(&ds->mu);
}

void od_data_eval_close(struct od_data_eval *e) {
  if (!e) return;
  eval_join(e);
  for (int i = 0; i < 2; i++) {
    free(e->buf[i].images);
    free(e->buf[i].info);
    free(e->buf[i].gt);
  }
  detset_free(&e->ds);
  free(e);
}
