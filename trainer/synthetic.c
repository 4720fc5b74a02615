/* trainer/synthetic.c: the synthetic detection dataset (see synthetic.h) and its writer for
 * `onnx-distill make-data`. Drawing uses only integer-seeded counter random numbers and plain
 * float arithmetic, so the same seed gives the same pixels; JPEGs are written with libjpeg's
 * compressor (fixed quality, default settings), XML with fprintf, so the output is byte-identical
 * from run to run. */
#include "trainer/synthetic.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>

#include "trainer/augment.h"

const char *const od_synth_class_names[OD_SYNTH_MAX_CLASSES] = {"circle", "square", "triangle",
                                                                "cross",  "star",   "ring"};

void od_synth_cfg_default(struct od_synth_cfg *c, uint64_t seed, int size, int n_classes) {
  memset(c, 0, sizeof *c);
  c->seed = seed;
  c->size = size;
  if (n_classes < 1) n_classes = 1;
  if (n_classes > OD_SYNTH_MAX_CLASSES) n_classes = OD_SYNTH_MAX_CLASSES;
  c->n_kinds = n_classes;
  for (int i = 0; i < n_classes; i++) c->kinds[i] = i;
}

/* ---- shapes: membership of (u, v) in [0, 1]^2, the shape's own box ---------------------------------- */

static bool in_star(double u, double v) {
  double px[10], py[10];
  for (int i = 0; i < 10; i++) { /* 5 points, the first one up */
    double a = -3.14159265358979323846 / 2 + i * 3.14159265358979323846 / 5, r = i % 2 ? 0.2 : 0.5;
    px[i] = 0.5 + r * cos(a);
    py[i] = 0.5 + r * sin(a);
  }
  bool in = false;
  for (int i = 0, j = 9; i < 10; j = i++)
    if ((py[i] > v) != (py[j] > v) && u < (px[j] - px[i]) * (v - py[i]) / (py[j] - py[i]) + px[i]) in = !in;
  return in;
}

static bool inside(int kind, double u, double v) {
  double du = u - 0.5, dv = v - 0.5, d2 = du * du + dv * dv;
  switch (kind) {
  case 0: return d2 <= 0.25;                                    /* circle */
  case 1: return true;                                          /* square (the box itself) */
  case 2: return fabs(du) <= v / 2;                             /* triangle, apex up */
  case 3: return fabs(du) <= 1.0 / 6 || fabs(dv) <= 1.0 / 6;    /* cross */
  case 4: return in_star(u, v);                                 /* star */
  default: return d2 <= 0.25 && d2 >= 0.3 * 0.3;                /* ring */
  }
}

/* ---- drawing ------------------------------------------------------------------------------------- */

static float clamp255(double v) { return v < 0 ? 0.0f : v > 255 ? 255.0f : (float)v; }

static void background(float *px, int w, int h, struct od_rng *r) {
  double c0[3], c1[3];
  for (int c = 0; c < 3; c++) {
    c0[c] = od_rng_range(r, 0, 255);
    c1[c] = od_rng_range(r, 0, 255);
  }
  int pattern = (int)od_rng_int(r, 0, 4);
  double ang = od_rng_range(r, 0, 6.283185307179586), ca = cos(ang), sa = sin(ang);
  double freq = od_rng_range(r, 2, 10), phase = od_rng_range(r, 0, 6.283185307179586);
  double cell = (w > h ? w : h) / od_rng_range(r, 4, 12), fx = od_rng_range(r, 1, 6), fy = od_rng_range(r, 1, 6);
  double sigma = od_rng_range(r, 3, 14), diag = sqrt((double)w * w + (double)h * h);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      double t;
      double along = (x * ca + y * sa) / diag;
      switch (pattern) {
      case 0: t = 0.5 + along; break;
      case 1: t = 0.5 + 0.5 * sin(6.283185307179586 * freq * along + phase); break;
      case 2: t = (((int)(x / cell) + (int)(y / cell)) & 1) ? 0.8 : 0.2; break;
      default:
        t = 0.5 + 0.25 * (sin(6.283185307179586 * fx * x / w + phase) + sin(6.283185307179586 * fy * y / h - phase));
      }
      if (t < 0) t = 0;
      if (t > 1) t = 1;
      float *p = px + ((size_t)y * w + x) * 3;
      for (int c = 0; c < 3; c++) p[c] = (float)(c0[c] * (1 - t) + c1[c] * t + sigma * od_rng_normal(r));
    }
}

struct placed {
  double x0, y0, bw, bh; /* the shape's box, float pixels */
  int kind, label;
  int minx, miny, maxx, maxy; /* drawn extent (coverage >= 1/2), 0-based inclusive */
};

static double overlap(double ax, double ay, double aw, double ah, double bx, double by, double bw, double bh) {
  double ix = fmin(ax + aw, bx + bw) - fmax(ax, bx), iy = fmin(ay + ah, by + bh) - fmax(ay, by);
  return ix > 0 && iy > 0 ? ix * iy : 0;
}

/* Draws one object with 2 x 2 supersampled coverage; records its tight extent. */
static void draw_object(float *px, int w, int h, struct placed *o, struct od_rng *r, const double bg[3]) {
  double col[3];
  for (int tries = 0; tries < 20; tries++) { /* a colour that stands out from the background */
    double dist = 0;
    for (int c = 0; c < 3; c++) {
      col[c] = od_rng_range(r, 0, 255);
      dist += fabs(col[c] - bg[c]);
    }
    if (dist > 120) break;
  }
  double shade = od_rng_range(r, -0.25, 0.25);
  o->minx = o->miny = 1 << 30;
  o->maxx = o->maxy = -1;
  int x0 = (int)floor(o->x0), y0 = (int)floor(o->y0), x1 = (int)ceil(o->x0 + o->bw), y1 = (int)ceil(o->y0 + o->bh);
  for (int y = y0 < 0 ? 0 : y0; y < y1 && y < h; y++)
    for (int x = x0 < 0 ? 0 : x0; x < x1 && x < w; x++) {
      int hits = 0;
      for (int s = 0; s < 4; s++) {
        double u = (x + 0.25 + 0.5 * (s & 1) - o->x0) / o->bw, v = (y + 0.25 + 0.5 * (s >> 1) - o->y0) / o->bh;
        hits += u >= 0 && u <= 1 && v >= 0 && v <= 1 && inside(o->kind, u, v);
      }
      if (!hits) continue;
      double a = hits / 4.0, v = (y - o->y0) / o->bh, k = 1 + shade * (v - 0.5) * 2;
      float *p = px + ((size_t)y * w + x) * 3;
      for (int c = 0; c < 3; c++) p[c] = (float)(p[c] * (1 - a) + col[c] * k * a);
      if (hits >= 2) {
        if (x < o->minx) o->minx = x;
        if (x > o->maxx) o->maxx = x;
        if (y < o->miny) o->miny = y;
        if (y > o->maxy) o->maxy = y;
      }
    }
}

enum od_status od_synth_draw(const struct od_synth_cfg *c, int64_t index, uint8_t **rgb, int *w_out, int *h_out,
                             struct od_synth_object *objs, int *n_objs, struct od_err *err) {
  if (c->size < 16 || c->size > 8192) return od_err_set(err, OD_ERR_INVALID_ARG, "synthetic size %d is out of [16, 8192]", c->size);
  if (c->n_kinds < 1 || c->n_kinds > OD_SYNTH_MAX_CLASSES)
    return od_err_set(err, OD_ERR_INVALID_ARG, "synthetic classes: %d is out of [1, %d]", c->n_kinds, OD_SYNTH_MAX_CLASSES);
  struct od_rng r = od_rng_make(c->seed * 0x9e3779b97f4a7c15ull + 0x51ab1e, (uint64_t)index);
  int lng = c->size, shrt = (int)lround(c->size * od_rng_range(&r, 0.75, 1.0));
  bool portrait = od_rng_unif(&r) < 0.3;
  int w = portrait ? shrt : lng, h = portrait ? lng : shrt;
  float *px = malloc((size_t)w * h * 3 * sizeof(float));
  uint8_t *out = malloc((size_t)w * h * 3);
  if (!px || !out) {
    free(px);
    free(out);
    return od_err_set(err, OD_ERR_OOM, "cannot allocate a %d x %d synthetic image", w, h);
  }
  background(px, w, h, &r);
  double bg[3] = {0, 0, 0};
  for (size_t i = 0; i < (size_t)w * h; i++)
    for (int k = 0; k < 3; k++) bg[k] += px[i * 3 + k];
  for (int k = 0; k < 3; k++) bg[k] /= (double)w * h;

  struct placed pl[OD_SYNTH_MAX_OBJECTS];
  int want = 1 + (int)od_rng_int(&r, 0, OD_SYNTH_MAX_OBJECTS), n = 0;
  int side = w < h ? w : h;
  for (int i = 0; i < want; i++) {
    int ki = (int)od_rng_int(&r, 0, c->n_kinds), kind = c->kinds[ki];
    for (int tries = 0; tries < 30; tries++) {
      double s = side * od_rng_range(&r, 0.10, 0.60), bw = s, bh = s;
      if (kind == 1) bh = s * od_rng_range(&r, 0.8, 1.25);
      if (kind == 2) bh = s * od_rng_range(&r, 0.8, 1.1);
      if (bw > w - 2) bw = w - 2;
      if (bh > h - 2) bh = h - 2;
      double x0 = od_rng_range(&r, 1, w - 1 - bw), y0 = od_rng_range(&r, 1, h - 1 - bh);
      bool ok = true;
      for (int j = 0; j < n && ok; j++) { /* partial overlap only */
        double ov = overlap(x0, y0, bw, bh, pl[j].x0, pl[j].y0, pl[j].bw, pl[j].bh);
        ok = ov <= 0.4 * bw * bh && ov <= 0.4 * pl[j].bw * pl[j].bh;
      }
      if (!ok) continue;
      pl[n] = (struct placed){.x0 = x0, .y0 = y0, .bw = bw, .bh = bh, .kind = kind, .label = ki};
      draw_object(px, w, h, &pl[n], &r, bg);
      if (pl[n].maxx >= pl[n].minx && pl[n].maxy >= pl[n].miny) n++;
      break;
    }
  }
  for (size_t i = 0; i < (size_t)w * h * 3; i++) out[i] = (uint8_t)lrintf(clamp255(px[i]));
  free(px);
  for (int i = 0; i < n; i++)
    objs[i] = (struct od_synth_object){pl[i].label, pl[i].minx + 1, pl[i].miny + 1, pl[i].maxx + 1, pl[i].maxy + 1};
  *n_objs = n;
  *rgb = out;
  *w_out = w;
  *h_out = h;
  return OD_OK;
}

enum od_status od_synth_split(uint64_t seed, int images, double val_fraction, bool **is_test, struct od_err *err) {
  if (images < 1) return od_err_set(err, OD_ERR_INVALID_ARG, "synthetic images: %d, expected at least 1", images);
  if (!(val_fraction >= 0 && val_fraction < 1))
    return od_err_set(err, OD_ERR_INVALID_ARG, "validation fraction %g is out of [0, 1)", val_fraction);
  int *perm = malloc(sizeof(int) * (size_t)images);
  bool *t = calloc((size_t)images, sizeof(bool));
  if (!perm || !t) {
    free(perm);
    free(t);
    return od_err_set(err, OD_ERR_OOM, "out of memory");
  }
  for (int i = 0; i < images; i++) perm[i] = i;
  struct od_rng r = od_rng_make(seed, 0x5917u);
  for (int i = images - 1; i > 0; i--) {
    int j = (int)od_rng_int(&r, 0, i + 1), x = perm[i];
    perm[i] = perm[j];
    perm[j] = x;
  }
  int n_test = (int)lround(images * val_fraction);
  if (n_test >= images) n_test = images - 1;
  for (int i = 0; i < n_test; i++) t[perm[i]] = true;
  free(perm);
  *is_test = t;
  return OD_OK;
}

/* ---- writing ------------------------------------------------------------------------------------- */

struct jerr {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
  char msg[JMSG_LENGTH_MAX];
  unsigned char *buf; /* jpeg_mem_dest's buffer: here (in memory) so that it is valid after a longjmp */
  unsigned long size;
};

static void jerr_exit(j_common_ptr c) {
  struct jerr *e = (struct jerr *)c->err;
  (*c->err->format_message)(c, e->msg);
  longjmp(e->jump, 1);
}

static enum od_status write_jpeg(const char *path, const uint8_t *rgb, int w, int h, int quality, struct od_err *err) {
  struct jpeg_compress_struct c;
  struct jerr je;
  memset(&c, 0, sizeof c);
  memset(&je, 0, sizeof je);
  c.err = jpeg_std_error(&je.pub);
  je.pub.error_exit = jerr_exit;
  if (setjmp(je.jump)) {
    jpeg_destroy_compress(&c);
    free(je.buf);
    return od_err_set(err, OD_ERR_IO, "%s: JPEG compression failed: %s", path, je.msg);
  }
  jpeg_create_compress(&c);
  jpeg_mem_dest(&c, &je.buf, &je.size);
  c.image_width = (JDIMENSION)w;
  c.image_height = (JDIMENSION)h;
  c.input_components = 3;
  c.in_color_space = JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, quality, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = (JSAMPROW)(rgb + (size_t)c.next_scanline * w * 3);
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  FILE *f = fopen(path, "wb");
  enum od_status st = OD_OK;
  if (!f) st = od_err_set(err, OD_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
  else if (fwrite(je.buf, 1, je.size, f) != je.size) st = od_err_set(err, OD_ERR_IO, "%s: write error", path);
  if (f && fclose(f) != 0 && st == OD_OK) st = od_err_set(err, OD_ERR_IO, "%s: write error", path);
  free(je.buf);
  return st;
}

static enum od_status make_dir(const char *path, struct od_err *err) {
  char buf[4096];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return od_err_set(err, OD_ERR_INVALID_ARG, "path too long: %s", path);
  for (char *p = buf + 1;; p++) { /* mkdir -p */
    char ch = *p;
    if (ch == '/' || ch == '\0') {
      *p = '\0';
      if (mkdir(buf, 0755) != 0 && errno != EEXIST) return od_err_set(err, OD_ERR_IO, "%s: cannot create the folder: %s", buf, strerror(errno));
      *p = ch;
    }
    if (!ch) break;
  }
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return od_err_set(err, OD_ERR_IO, "%s: not a folder", path);
  return OD_OK;
}

static enum od_status write_xml(const char *path, const char *id, int w, int h, const struct od_synth_cfg *c,
                                const struct od_synth_object *o, int n, struct od_err *err) {
  FILE *f = fopen(path, "w");
  if (!f) return od_err_set(err, OD_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
  fprintf(f, "<annotation>\n\t<folder>synthetic</folder>\n\t<filename>%s.jpg</filename>\n", id);
  fprintf(f, "\t<source>\n\t\t<database>onnx-distill synthetic shapes</database>\n\t</source>\n");
  fprintf(f, "\t<size>\n\t\t<width>%d</width>\n\t\t<height>%d</height>\n\t\t<depth>3</depth>\n\t</size>\n", w, h);
  fprintf(f, "\t<segmented>0</segmented>\n");
  for (int i = 0; i < n; i++)
    fprintf(f,
            "\t<object>\n\t\t<name>%s</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n"
            "\t\t<difficult>0</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>%d</xmin>\n\t\t\t<ymin>%d</ymin>\n"
            "\t\t\t<xmax>%d</xmax>\n\t\t\t<ymax>%d</ymax>\n\t\t</bndbox>\n\t</object>\n",
            od_synth_class_names[c->kinds[o[i].cls]], o[i].xmin, o[i].ymin, o[i].xmax, o[i].ymax);
  fprintf(f, "</annotation>\n");
  if (ferror(f) | (fclose(f) != 0)) return od_err_set(err, OD_ERR_IO, "%s: write error", path);
  return OD_OK;
}

enum od_status od_synth_write(const struct od_synth_write_opts *o, struct od_err *err) {
  int size = o->size ? o->size : 320, n_classes = o->n_classes ? o->n_classes : OD_SYNTH_DEFAULT_CLASSES;
  int quality = o->quality ? o->quality : 90;
  if (n_classes < 1 || n_classes > OD_SYNTH_MAX_CLASSES)
    return od_err_set(err, OD_ERR_INVALID_ARG, "--classes %d is out of [1, %d]", n_classes, OD_SYNTH_MAX_CLASSES);
  if (quality < 1 || quality > 100) return od_err_set(err, OD_ERR_INVALID_ARG, "JPEG quality %d is out of [1, 100]", quality);
  struct od_synth_cfg cfg;
  od_synth_cfg_default(&cfg, o->seed, size, n_classes);
  bool *is_test = NULL;
  OD_TRY(od_synth_split(o->seed, o->images, o->val_fraction, &is_test, err));
  static const char *const dirs[] = {"", "/JPEGImages", "/Annotations", "/ImageSets/Main"};
  size_t plen = strlen(o->out) + 64;
  char *p = malloc(plen);
  enum od_status st = p ? OD_OK : od_err_set(err, OD_ERR_OOM, "out of memory");
  for (int i = 0; st == OD_OK && i < 4; i++) {
    snprintf(p, plen, "%s%s", o->out, dirs[i]);
    st = make_dir(p, err);
  }
  FILE *lists[4] = {0}; /* ImageSets/Main/trainval.txt, test.txt, trainval.txt, test.txt */
  static const char *const list_names[4] = {"ImageSets/Main/trainval.txt", "ImageSets/Main/test.txt", "trainval.txt",
                                            "test.txt"};
  for (int i = 0; st == OD_OK && i < 4; i++) {
    snprintf(p, plen, "%s/%s", o->out, list_names[i]);
    if (!(lists[i] = fopen(p, "w"))) st = od_err_set(err, OD_ERR_IO, "%s: cannot create: %s", p, strerror(errno));
  }
  if (st == OD_OK) {
    snprintf(p, plen, "%s/label_list.txt", o->out);
    FILE *f = fopen(p, "w");
    if (!f) {
      st = od_err_set(err, OD_ERR_IO, "%s: cannot create: %s", p, strerror(errno));
    } else {
      for (int i = 0; i < n_classes; i++) fprintf(f, "%s\n", od_synth_class_names[i]);
      if (ferror(f) | (fclose(f) != 0)) st = od_err_set(err, OD_ERR_IO, "%s: write error", p);
    }
  }
  for (int k = 0; st == OD_OK && k < o->images; k++) {
    char id[32];
    snprintf(id, sizeof id, "%06d", k);
    uint8_t *rgb = NULL;
    int w, h, n;
    struct od_synth_object objs[OD_SYNTH_MAX_OBJECTS];
    st = od_synth_draw(&cfg, k, &rgb, &w, &h, objs, &n, err);
    if (st != OD_OK) break;
    snprintf(p, plen, "%s/JPEGImages/%s.jpg", o->out, id);
    st = write_jpeg(p, rgb, w, h, quality, err);
    free(rgb);
    snprintf(p, plen, "%s/Annotations/%s.xml", o->out, id);
    if (st == OD_OK) st = write_xml(p, id, w, h, &cfg, objs, n, err);
    int t = is_test[k] ? 1 : 0;
    fprintf(lists[t], "%s\n", id);
    fprintf(lists[2 + t], "JPEGImages/%s.jpg Annotations/%s.xml\n", id, id);
    if (o->progress && st == OD_OK && ((k + 1) % 100 == 0 || k + 1 == o->images))
      fprintf(o->progress, "\rmake-data: %d/%d images", k + 1, o->images);
  }
  for (int i = 0; i < 4; i++)
    if (lists[i] && (ferror(lists[i]) | (fclose(lists[i]) != 0)) && st == OD_OK)
      st = od_err_set(err, OD_ERR_IO, "%s/%s: write error", o->out, list_names[i]);
  if (o->progress && st == OD_OK) fprintf(o->progress, "\n");
  free(p);
  free(is_test);
  return st;
}
