/* tests/test_voc.c: VOC loading (loaders/voc.c), the synthetic dataset (trainer/synthetic.c,
 * make-data), the augmentation operators (trainer/augment.c) and the detection data sources
 * (trainer/data_det.c). Every dataset is generated here under build/tests/tmp/voc (nothing is
 * committed): small images so the suite stays quick. */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>

#include "loaders/voc.h"
#include "trainer/augment.h"
#include "trainer/data.h"
#include "trainer/synthetic.h"

#define TMP OD_TEST_TMP "/voc"

static const char *const shape_classes[] = {"circle", "square", "triangle", "cross"};

/* ---- helpers ------------------------------------------------------------------------------------- */

static void mkdirs(const char *path) {
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      mkdir(buf, 0755);
      *p = '/';
    }
  mkdir(buf, 0755);
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
}

/* A w x h JPEG of a smooth picture (libjpeg's compressor). */
static void write_jpeg(const char *path, int w, int h) {
  uint8_t *px = malloc((size_t)w * h * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      uint8_t *q = px + ((size_t)y * w + x) * 3;
      q[0] = (uint8_t)(x * 255 / w);
      q[1] = (uint8_t)(y * 255 / h);
      q[2] = 128;
    }
  struct jpeg_compress_struct c;
  struct jpeg_error_mgr e;
  c.err = jpeg_std_error(&e);
  jpeg_create_compress(&c);
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  jpeg_stdio_dest(&c, f);
  c.image_width = (JDIMENSION)w;
  c.image_height = (JDIMENSION)h;
  c.input_components = 3;
  c.in_color_space = JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 90, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = px + (size_t)c.next_scanline * w * 3;
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  fclose(f);
  free(px);
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)n + 1);
  *len = fread(b, 1, (size_t)n, f);
  b[*len] = 0;
  fclose(f);
  return b;
}

static const char *XML_OK =
    "<annotation>\n"                                                           /* 1 */
    "  <filename>a.jpg</filename>\n"                                           /* 2 */
    "  <size><width>40</width><height>30</height><depth>3</depth></size>\n"    /* 3 */
    "  <object><name>square</name><difficult>1</difficult>\n"                  /* 4 */
    "    <bndbox><xmin>5</xmin><ymin>6</ymin><xmax>20</xmax><ymax>25</ymax></bndbox></object>\n"
    "  <object><name>dog</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>\n"
    "  <object><name>circle</name>\n"                                          /* 7: no <difficult> */
    "    <bndbox><xmin> -3.5 </xmin><ymin>0</ymin><xmax>45</xmax><ymax>40</ymax></bndbox></object>\n"
    "  <object><name>dog</name><bndbox><xmin>2</xmin><ymin>2</ymin><xmax>8</xmax><ymax>8</ymax></bndbox></object>\n"
    "  <object><name>cross</name>\n"                                           /* 10: empty after clipping */
    "    <bndbox><xmin>50</xmin><ymin>3</ymin><xmax>60</xmax><ymax>9</ymax></bndbox></object>\n"
    "</annotation>\n";

/* A tiny VOC folder: n images a0.. with XML, one list per form. corrupt: index of a broken JPEG (-1
 * none); bad_xml: index of a malformed annotation (-1 none). */
static void make_voc(const char *root, int n, int corrupt, int bad_xml) {
  char p[1024];
  snprintf(p, sizeof p, "%s/JPEGImages", root);
  mkdirs(p);
  snprintf(p, sizeof p, "%s/Annotations", root);
  mkdirs(p);
  snprintf(p, sizeof p, "%s/ImageSets/Main", root);
  mkdirs(p);
  char ids[4096] = "# ids\n\n", paths[8192] = "";
  for (int i = 0; i < n; i++) {
    int w = 48 + 8 * (i % 3), h = 40 + 4 * (i % 2);
    snprintf(p, sizeof p, "%s/JPEGImages/a%d.jpg", root, i);
    if (i == corrupt) {
      write_jpeg(p, w, h);
      size_t len = 0;
      char *b = read_file(p, &len);
      FILE *f = fopen(p, "wb");
      fwrite(b, 1, len / 3, f); /* truncated: "premature end of data" */
      fclose(f);
      free(b);
    } else {
      write_jpeg(p, w, h);
    }
    char xml[1024];
    if (i == bad_xml)
      snprintf(xml, sizeof xml, "<annotation>\n<size><width>%d</width>\n</annotation>\n", w);
    else
      snprintf(xml, sizeof xml,
               "<annotation><size><width>%d</width><height>%d</height></size>\n"
               "<object><name>%s</name><difficult>0</difficult><bndbox><xmin>%d</xmin><ymin>%d</ymin>"
               "<xmax>%d</xmax><ymax>%d</ymax></bndbox></object>\n"
               "<object><name>circle</name><bndbox><xmin>3</xmin><ymin>4</ymin><xmax>20</xmax><ymax>18</ymax></bndbox>"
               "</object></annotation>\n",
               w, h, shape_classes[i % 4], 10 + i, 8, 40, 30);
    snprintf(p, sizeof p, "%s/Annotations/a%d.xml", root, i);
    write_text(p, xml);
    char line[128];
    snprintf(line, sizeof line, "a%d\n", i);
    strcat(ids, line);
    snprintf(line, sizeof line, "JPEGImages/a%d.jpg Annotations/a%d.xml\n", i, i);
    strcat(paths, line);
  }
  snprintf(p, sizeof p, "%s/ImageSets/Main/trainval.txt", root);
  write_text(p, ids);
  snprintf(p, sizeof p, "%s/trainval.txt", root);
  write_text(p, paths);
  snprintf(p, sizeof p, "%s/test.txt", root);
  write_text(p, paths);
}

static struct od_data_cfg det_cfg(enum od_data_format fmt, char *root) {
  static char *classes[4];
  for (int i = 0; i < 4; i++) classes[i] = (char *)shape_classes[i];
  struct od_data_cfg c = {.format = fmt, .root = root, .classes = classes, .n_classes = 4, .workers = 2, .images = 40,
                          .mixup_epochs = 250};
  const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
  memcpy(c.mean, mean, sizeof mean);
  memcpy(c.std, std, sizeof std);
  c.size_min = 64;
  c.size_max = 128;
  c.size_step = 32;
  return c;
}

static const char *synth_root(void) {
  static char root[512];
  static int made;
  snprintf(root, sizeof root, "%s/synth", TMP);
  if (!made) {
    struct od_err err = {0};
    struct od_synth_write_opts o = {.out = root, .images = 40, .seed = 11, .size = 96, .val_fraction = 0.25};
    ck_assert_msg(od_synth_write(&o, &err) == OD_OK, "%s", err.msg);
    made = 1;
  }
  return root;
}

/* ---- list files ------------------------------------------------------------------------------------ */

START_TEST(list_both_forms) {
  char root[512], p[600];
  snprintf(root, sizeof root, "%s/lists", TMP);
  make_voc(root, 3, -1, -1);
  struct od_voc_list a, b;
  struct od_err err = {0};
  snprintf(p, sizeof p, "%s/ImageSets/Main/trainval.txt", root);
  ck_assert_msg(od_voc_read_list(root, p, &a, &err) == OD_OK, "%s", err.msg);
  snprintf(p, sizeof p, "%s/trainval.txt", root);
  ck_assert_msg(od_voc_read_list(root, p, &b, &err) == OD_OK, "%s", err.msg);
  ck_assert_int_eq(a.n, 3);
  ck_assert_int_eq(b.n, 3);
  for (int i = 0; i < 3; i++) {
    ck_assert_str_eq(a.e[i].image, b.e[i].image);
    ck_assert_str_eq(a.e[i].xml, b.e[i].xml);
  }
  snprintf(p, sizeof p, "%s/JPEGImages/a1.jpg", root);
  ck_assert_str_eq(a.e[1].image, p);
  snprintf(p, sizeof p, "%s/Annotations/a1.xml", root);
  ck_assert_str_eq(a.e[1].xml, p);
  ck_assert_int_eq(a.e[0].line, 3); /* after a comment and a blank line */
  ck_assert_int_eq(b.e[0].line, 1);
  od_voc_list_free(&a);
  od_voc_list_free(&b);

  /* errors name file:line */
  snprintf(p, sizeof p, "%s/bad_list.txt", root);
  write_text(p, "a0\n\nJPEGImages/a1.jpg Annotations/a1.xml extra\n");
  ck_assert_int_eq(od_voc_read_list(root, p, &a, &err), OD_ERR_INVALID_ARG);
  ck_assert_msg(strstr(err.msg, "bad_list.txt:3:"), "%s", err.msg);
  write_text(p, "# nothing\n\n");
  ck_assert_int_eq(od_voc_read_list(root, p, &a, &err), OD_ERR_INVALID_ARG);
  ck_assert_msg(strstr(err.msg, "no entries"), "%s", err.msg);
  snprintf(p, sizeof p, "%s/missing.txt", root);
  ck_assert_int_eq(od_voc_read_list(root, p, &a, &err), OD_ERR_IO);
  ck_assert_msg(strstr(err.msg, "missing.txt"), "%s", err.msg);
}
END_TEST

/* ---- annotations ----------------------------------------------------------------------------------- */

START_TEST(xml_fields_classes_clipping) {
  struct od_voc_classes cls;
  od_voc_classes_init(&cls, shape_classes, 4, NULL);
  struct od_voc_image im;
  struct od_err err = {0};
  ck_assert_msg(od_voc_parse_memory(XML_OK, strlen(XML_OK), "a.xml", "a.jpg", &cls, &im, &err) == OD_OK, "%s", err.msg);
  ck_assert_int_eq(im.width, 40);
  ck_assert_int_eq(im.height, 30);
  ck_assert_int_eq(im.n_objects, 5);
  ck_assert_int_eq(im.n_boxes, 2); /* square, circle; 2 dogs skipped, the cross empty after clipping */
  ck_assert_int_eq(cls.skipped_objects, 2);
  ck_assert_int_eq(cls.n_unknown, 1); /* warned once */
  ck_assert_int_eq(cls.invalid_boxes, 1);
  /* PaddleDetection's convention: values as written, clipped to [0, w-1] x [0, h-1] */
  ck_assert_int_eq(im.boxes[0].label, 1);
  ck_assert_int_eq(im.boxes[0].difficult, 1);
  ck_assert(im.boxes[0].x1 == 5 && im.boxes[0].y1 == 6 && im.boxes[0].x2 == 20 && im.boxes[0].y2 == 25);
  ck_assert_int_eq(im.boxes[1].label, 0);
  ck_assert_int_eq(im.boxes[1].difficult, 0);
  ck_assert(im.boxes[1].x1 == 0 && im.boxes[1].y1 == 0 && im.boxes[1].x2 == 39 && im.boxes[1].y2 == 29);
  ck_assert_str_eq(im.image, "a.jpg");
  od_voc_image_free(&im);
  od_voc_classes_free(&cls);

  /* no <size>: boxes are clipped later against the decoded image */
  const char *nosize = "<annotation><object><name>cross</name><bndbox><xmin>2</xmin><ymin>3</ymin>"
                       "<xmax>100</xmax><ymax>7</ymax></bndbox></object></annotation>";
  od_voc_classes_init(&cls, shape_classes, 4, NULL);
  ck_assert(od_voc_parse_memory(nosize, strlen(nosize), "n.xml", NULL, &cls, &im, &err) == OD_OK);
  ck_assert_int_eq(im.width, 0);
  ck_assert(im.boxes[0].x2 == 100);
  od_voc_clip(&im, 50, 20, &cls);
  ck_assert(im.boxes[0].x2 == 49 && im.boxes[0].label == 3);
  od_voc_image_free(&im);
  od_voc_classes_free(&cls);
}
END_TEST

static void expect_parse_error(const char *xml, const char *want) {
  struct od_voc_classes cls;
  od_voc_classes_init(&cls, shape_classes, 4, NULL);
  struct od_voc_image im;
  struct od_err err = {0};
  ck_assert_int_eq(od_voc_parse_memory(xml, strlen(xml), "x.xml", NULL, &cls, &im, &err), OD_ERR_INVALID_ARG);
  ck_assert_msg(strstr(err.msg, want), "'%s' lacks '%s'", err.msg, want);
  od_voc_classes_free(&cls);
}

START_TEST(xml_errors_name_the_line) {
  /* not well-formed: </annotation> closes <size> on line 4 */
  expect_parse_error("<annotation>\n<size>\n<width>10</width>\n</annotation>\n", "x.xml:4: malformed XML");
  expect_parse_error("<annotation>\n  <object>\n    <name>circle</name>\n  </object>\n</annotation>",
                     "x.xml:2: <object> 'circle' has no <bndbox>");
  expect_parse_error("<annotation>\n<object>\n<bndbox><xmin>1</xmin></bndbox>\n</object>\n</annotation>",
                     "x.xml:2: <object> has no <name>");
  expect_parse_error("<annotation>\n<object><name>circle</name>\n<bndbox>\n<xmin>1</xmin><ymin>1</ymin><ymax>5</ymax>\n"
                     "</bndbox></object></annotation>",
                     "x.xml:3: <bndbox> has no <xmax>");
  expect_parse_error("<annotation>\n<object><name>circle</name>\n<bndbox><xmin>1</xmin><ymin>1</ymin>\n"
                     "<xmax>five</xmax><ymax>5</ymax></bndbox></object></annotation>",
                     "x.xml:4: <xmax> is not a number");
  expect_parse_error("<annotation><size><width>1O</width><height>5</height></size></annotation>",
                     "<width> is not a number");
  expect_parse_error("<voc/>", "expected <annotation>");
  expect_parse_error("", "malformed XML");
  /* an entity is not expanded (and an external one never fetched) */
  const char *ent = "<?xml version=\"1.0\"?>\n<!DOCTYPE a [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n"
                    "<annotation><object><name>&x;</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax>"
                    "<ymax>5</ymax></bndbox></object></annotation>";
  struct od_voc_classes cls;
  od_voc_classes_init(&cls, shape_classes, 4, NULL);
  struct od_voc_image im;
  struct od_err err = {0};
  enum od_status st = od_voc_parse_memory(ent, strlen(ent), "e.xml", NULL, &cls, &im, &err);
  if (st == OD_OK) {
    ck_assert_int_eq(im.n_boxes, 0); /* the name is not a class: nothing from /etc/passwd matched */
    od_voc_image_free(&im);
  }
  od_voc_classes_free(&cls);
  /* "billion laughs": entities are not substituted, and libxml2's own limits stop the expansion */
  char laughs[4096] = "<?xml version=\"1.0\"?>\n<!DOCTYPE annotation [\n<!ENTITY l0 \"lol\">\n";
  for (int i = 1; i < 10; i++) {
    char line[200];
    snprintf(line, sizeof line, "<!ENTITY l%d \"&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;\">\n", i, i - 1, i - 1,
             i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
    strcat(laughs, line);
  }
  strcat(laughs, "]>\n<annotation><object><name>&l9;</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax>"
                 "<ymax>5</ymax></bndbox></object></annotation>\n");
  od_voc_classes_init(&cls, shape_classes, 4, NULL);
  st = od_voc_parse_memory(laughs, strlen(laughs), "laughs.xml", NULL, &cls, &im, &err);
  if (st == OD_OK) {
    ck_assert_int_eq(im.n_boxes, 0);
    od_voc_image_free(&im);
  }
  od_voc_classes_free(&cls);
}
END_TEST

START_TEST(load_skips_and_counts) {
  char root[512];
  snprintf(root, sizeof root, "%s/skips", TMP);
  make_voc(root, 5, -1, 2);
  char p[600];
  snprintf(p, sizeof p, "%s/JPEGImages/a4.jpg", root);
  remove(p); /* listed but missing */
  struct od_voc_set s;
  struct od_err err = {0};
  ck_assert_msg(od_voc_load(root, "ImageSets/Main/trainval.txt", shape_classes, 4, NULL, &s, &err) == OD_OK, "%s",
                err.msg);
  ck_assert_int_eq(s.n, 3);
  ck_assert_int_eq(s.skipped, 2);
  for (int i = 0; i < s.n; i++) ck_assert_int_eq(s.im[i].n_boxes, 2);
  od_voc_set_free(&s);
  /* nothing usable: an error naming the list */
  snprintf(p, sizeof p, "%s/only_bad.txt", root);
  write_text(p, "a2\na4\n");
  ck_assert_int_eq(od_voc_load(root, "only_bad.txt", shape_classes, 4, NULL, &s, &err), OD_ERR_INVALID_ARG);
  ck_assert_msg(strstr(err.msg, "only_bad.txt") && strstr(err.msg, "2 skipped"), "%s", err.msg);
}
END_TEST

/* ---- make-data -------------------------------------------------------------------------------------- */

static bool same_file(const char *a, const char *b) {
  size_t la = 0, lb = 0;
  char *x = read_file(a, &la), *y = read_file(b, &lb);
  bool same = x && y && la == lb && !memcmp(x, y, la);
  free(x);
  free(y);
  return same;
}

START_TEST(make_data_deterministic_and_parses_back) {
  char a[512], b[512];
  snprintf(a, sizeof a, "%s/md_a", TMP);
  snprintf(b, sizeof b, "%s/md_b", TMP);
  struct od_err err = {0};
  struct od_synth_write_opts o = {.out = a, .images = 12, .seed = 5, .size = 80, .val_fraction = 0.25, .n_classes = 5};
  ck_assert_msg(od_synth_write(&o, &err) == OD_OK, "%s", err.msg);
  o.out = b;
  ck_assert(od_synth_write(&o, &err) == OD_OK);
  static const char *const fixed[] = {"label_list.txt", "trainval.txt", "test.txt", "ImageSets/Main/trainval.txt",
                                      "ImageSets/Main/test.txt"};
  char pa[700], pb[700];
  for (int i = 0; i < 5; i++) {
    snprintf(pa, sizeof pa, "%s/%s", a, fixed[i]);
    snprintf(pb, sizeof pb, "%s/%s", b, fixed[i]);
    ck_assert_msg(same_file(pa, pb), "%s differs", fixed[i]);
  }
  for (int k = 0; k < 12; k++) {
    snprintf(pa, sizeof pa, "%s/JPEGImages/%06d.jpg", a, k);
    snprintf(pb, sizeof pb, "%s/JPEGImages/%06d.jpg", b, k);
    ck_assert_msg(same_file(pa, pb), "image %d differs", k);
    snprintf(pa, sizeof pa, "%s/Annotations/%06d.xml", a, k);
    snprintf(pb, sizeof pb, "%s/Annotations/%06d.xml", b, k);
    ck_assert_msg(same_file(pa, pb), "annotation %d differs", k);
  }
  /* another seed gives other images */
  o.seed = 6;
  snprintf(b, sizeof b, "%s/md_c", TMP);
  o.out = b;
  ck_assert(od_synth_write(&o, &err) == OD_OK);
  snprintf(pa, sizeof pa, "%s/JPEGImages/000000.jpg", a);
  snprintf(pb, sizeof pb, "%s/JPEGImages/000000.jpg", b);
  ck_assert(!same_file(pa, pb));

  /* both list forms parse back to the same images; object counts are those drawn */
  size_t len;
  char *labels = read_file((snprintf(pa, sizeof pa, "%s/label_list.txt", a), pa), &len);
  ck_assert_str_eq(labels, "circle\nsquare\ntriangle\ncross\nstar\n");
  free(labels);
  static const char *const names[] = {"circle", "square", "triangle", "cross", "star"};
  struct od_voc_set s1, s2, t1;
  ck_assert(od_voc_load(a, "trainval.txt", names, 5, NULL, &s1, &err) == OD_OK);
  ck_assert(od_voc_load(a, "ImageSets/Main/trainval.txt", names, 5, NULL, &s2, &err) == OD_OK);
  ck_assert(od_voc_load(a, "ImageSets/Main/test.txt", names, 5, NULL, &t1, &err) == OD_OK);
  ck_assert_int_eq(s1.n, 9);
  ck_assert_int_eq(t1.n, 3);
  ck_assert_int_eq(s2.n, s1.n);
  struct od_synth_cfg sc;
  od_synth_cfg_default(&sc, 5, 80, 5);
  for (int i = 0; i < s1.n; i++) {
    ck_assert_str_eq(s1.im[i].image, s2.im[i].image);
    ck_assert_int_eq(s1.im[i].n_boxes, s2.im[i].n_boxes);
    int k = atoi(strrchr(s1.im[i].image, '/') + 1);
    uint8_t *rgb;
    int w, h, n;
    struct od_synth_object objs[OD_SYNTH_MAX_OBJECTS];
    ck_assert(od_synth_draw(&sc, k, &rgb, &w, &h, objs, &n, &err) == OD_OK);
    free(rgb);
    ck_assert_int_ge(n, 1);
    ck_assert_int_le(n, 4);
    ck_assert_int_eq(s1.im[i].n_objects, n);
    ck_assert_int_eq(s1.im[i].n_boxes, n);
    ck_assert_int_eq(s1.im[i].width, w);
    ck_assert_int_eq(s1.im[i].height, h);
    for (int j = 0; j < n; j++) {
      ck_assert_int_eq(s1.im[i].boxes[j].label, objs[j].cls);
      ck_assert(s1.im[i].boxes[j].x1 == objs[j].xmin && s1.im[i].boxes[j].y2 == objs[j].ymax);
      int side = w < h ? w : h; /* 10%..60% of the short side */
      ck_assert_int_ge(objs[j].xmax - objs[j].xmin + 1, side / 10 - 2);
      ck_assert_int_le(objs[j].xmax - objs[j].xmin + 1, side * 6 / 10 + 2);
    }
  }
  od_voc_set_free(&s1);
  od_voc_set_free(&s2);
  od_voc_set_free(&t1);
}
END_TEST

/* ---- augmentation operators ------------------------------------------------------------------------ */

static struct od_aug_sample random_sample(int w, int h, int n, uint64_t seed) {
  struct od_aug_sample s = {0};
  struct od_rng r = od_rng_make(seed, 1);
  uint8_t *rgb = malloc((size_t)w * h * 3);
  for (int i = 0; i < w * h * 3; i++) rgb[i] = (uint8_t)od_rng_int(&r, 0, 256);
  ck_assert(od_aug_sample_from_rgb(&s, rgb, w, h, NULL) == OD_OK);
  free(rgb);
  for (int i = 0; i < n; i++) {
    float x1 = (float)od_rng_range(&r, 0, w / 2), y1 = (float)od_rng_range(&r, 0, h / 2);
    struct od_aug_box b = {x1, y1, x1 + (float)od_rng_range(&r, 2, w / 2 - 1), y1 + (float)od_rng_range(&r, 2, h / 2 - 1),
                           1.0f, i % 4, i == 1};
    ck_assert(od_aug_add_box(&s, b, NULL) == OD_OK);
  }
  return s;
}

START_TEST(flip_twice_is_identity) {
  struct od_aug_sample s = random_sample(37, 23, 5, 3), t = random_sample(37, 23, 5, 3);
  od_aug_flip(&s);
  ck_assert(s.b[0].x1 == 37 - t.b[0].x2 - 1 && s.b[0].x2 == 37 - t.b[0].x1 - 1 && s.b[0].y1 == t.b[0].y1);
  ck_assert(s.px[0] == t.px[36 * 3] && s.px[2] == t.px[36 * 3 + 2]);
  od_aug_flip(&s);
  ck_assert(!memcmp(s.px, t.px, sizeof(float) * 37 * 23 * 3));
  for (int i = 0; i < 5; i++) { /* w - (w - x - 1) - 1: exact up to float rounding */
    ck_assert_float_eq_tol(s.b[i].x1, t.b[i].x1, 1e-5f);
    ck_assert_float_eq_tol(s.b[i].x2, t.b[i].x2, 1e-5f);
    ck_assert(s.b[i].y1 == t.b[i].y1 && s.b[i].y2 == t.b[i].y2 && s.b[i].label == t.b[i].label);
  }
  od_aug_sample_free(&s);
  od_aug_sample_free(&t);
}
END_TEST

START_TEST(mixup_scores_and_canvas) {
  struct od_aug_sample a = random_sample(30, 20, 2, 1), b = random_sample(24, 28, 3, 2);
  float a0 = a.px[0], b0 = b.px[0], bl = b.px[((size_t)27 * 24 + 5) * 3];
  ck_assert(od_aug_mixup(&a, &b, 0.3, NULL) == OD_OK);
  ck_assert_int_eq(a.w, 30);
  ck_assert_int_eq(a.h, 28);
  ck_assert_int_eq(a.n, 5);
  for (int i = 0; i < 2; i++) ck_assert_float_eq_tol(a.b[i].score, 0.3f, 1e-6f);
  for (int i = 2; i < 5; i++) ck_assert_float_eq_tol(a.b[i].score, 0.7f, 1e-6f);
  ck_assert_float_eq(a.px[0], floorf(a0 * 0.3f + b0 * 0.7f)); /* truncated like the uint8 cast */
  ck_assert_float_eq(a.px[((size_t)27 * 30 + 5) * 3], floorf(bl * 0.7f)); /* only b below a's rows */
  ck_assert_float_eq(a.px[((size_t)27 * 30 + 29) * 3], 0);                 /* neither: zero */
  /* factor 1 keeps a, factor 0 gives b */
  struct od_aug_sample c = random_sample(30, 20, 2, 1);
  ck_assert(od_aug_mixup(&c, &b, 1.0, NULL) == OD_OK && c.n == 2 && c.w == 30 && c.b[0].score == 1.0f);
  ck_assert(od_aug_mixup(&c, &b, 0.0, NULL) == OD_OK && c.n == 3 && c.w == 24 && c.b[0].score == 1.0f);
  od_aug_sample_free(&a);
  od_aug_sample_free(&b);
  od_aug_sample_free(&c);
  /* Beta(1.5, 1.5): mean 1/2, variance 1/16 */
  struct od_rng r = od_rng_make(9, 9);
  double m = 0, v = 0;
  for (int i = 0; i < 20000; i++) {
    double x = od_rng_beta(&r, 1.5, 1.5);
    ck_assert(x > 0 && x < 1);
    m += x;
    v += x * x;
  }
  m /= 20000;
  v = v / 20000 - m * m;
  ck_assert_double_eq_tol(m, 0.5, 0.01);
  ck_assert_double_eq_tol(v, 1.0 / 16, 0.004);
}
END_TEST

START_TEST(expand_crop_keep_boxes_inside) {
  const float fill[3] = {123.675f, 116.28f, 103.53f};
  int expanded = 0, cropped = 0;
  for (int t = 0; t < 300; t++) {
    struct od_aug_sample s = random_sample(40, 30, 3, 100 + t);
    struct od_rng r = od_rng_make(77, t);
    od_aug_color_distort(&s, &r);
    ck_assert(od_aug_expand(&s, &r, 4.0, 0.5, fill, NULL) == OD_OK);
    expanded += s.w > 40;
    if (s.w > 40) { /* the fill is the truncated mean; the image is somewhere inside */
      bool corner_filled = false;
      for (int i = 0; i < 4 && !corner_filled; i++) {
        int x = i & 1 ? s.w - 1 : 0, y = i & 2 ? s.h - 1 : 0;
        const float *p = s.px + ((size_t)y * s.w + x) * 3;
        corner_filled = p[0] == 123 && p[1] == 116 && p[2] == 103;
      }
      ck_assert(corner_filled);
    }
    int w0 = s.w;
    ck_assert(od_aug_crop(&s, &r, NULL) == OD_OK);
    cropped += s.w < w0;
    od_aug_random_flip(&s, &r);
    ck_assert_int_ge(s.n, 1); /* a crop keeps at least one box */
    for (int i = 0; i < s.n; i++) {
      const struct od_aug_box *b = &s.b[i];
      ck_assert(b->x1 >= -1 && b->x2 <= s.w && b->x1 < b->x2); /* flip's w - x - 1 may reach -1 */
      ck_assert(b->y1 >= 0 && b->y2 <= s.h && b->y1 < b->y2);
    }
    od_aug_sample_free(&s);
  }
  ck_assert_int_gt(expanded, 90); /* about half */
  ck_assert_int_lt(expanded, 210);
  ck_assert_int_gt(cropped, 50);
}
END_TEST

START_TEST(resize_properties) {
  const float mean[3] = {0, 0, 0}, stdv[3] = {1, 1, 1};
  float *src = malloc(sizeof(float) * 13 * 9 * 3), *dst = malloc(sizeof(float) * 3 * 40 * 40);
  for (int i = 0; i < 13 * 9 * 3; i++) src[i] = 51; /* 51 / 255 = 0.2 */
  for (int m = 0; m < OD_INTERP_COUNT; m++) {
    int sizes[3][2] = {{5, 4}, {13, 9}, {40, 33}};
    for (int k = 0; k < 3; k++) { /* a constant stays constant, shrinking or enlarging */
      ck_assert(od_resize_normalize(src, 13, 9, sizes[k][0], sizes[k][1], (enum od_interp)m, mean, stdv, dst, NULL) == OD_OK);
      for (int i = 0; i < 3 * sizes[k][0] * sizes[k][1]; i++) ck_assert_float_eq_tol(dst[i], 0.2f, 1e-5f);
    }
  }
  /* same size: the identity for every method */
  for (int i = 0; i < 13 * 9 * 3; i++) src[i] = (float)((i * 37) % 256);
  for (int m = 0; m < OD_INTERP_COUNT; m++) {
    ck_assert(od_resize_normalize(src, 13, 9, 13, 9, (enum od_interp)m, mean, stdv, dst, NULL) == OD_OK);
    for (int y = 0; y < 9; y++)
      for (int x = 0; x < 13; x++)
        for (int c = 0; c < 3; c++)
          ck_assert_float_eq_tol(dst[c * 117 + y * 13 + x] * 255, src[(y * 13 + x) * 3 + c], 1e-3f);
  }
  /* by hand, 1 row of 2 -> 4 (bilinear, half-pixel): 0, .25, .75, 1 between the two values;
   * area halving 4 -> 2: means of pairs; nearest 4 -> 2: columns 0 and 2 */
  float row[12] = {0, 0, 0, 255, 255, 255};
  ck_assert(od_resize_normalize(row, 2, 1, 4, 1, OD_INTERP_LINEAR, mean, stdv, dst, NULL) == OD_OK);
  ck_assert_float_eq_tol(dst[0], 0, 1e-6f);
  ck_assert_float_eq_tol(dst[1], 0.25f, 1e-6f);
  ck_assert_float_eq_tol(dst[2], 0.75f, 1e-6f);
  ck_assert_float_eq_tol(dst[3], 1, 1e-6f);
  float row4[12] = {0, 0, 0, 51, 51, 51, 102, 102, 102, 255, 255, 255};
  ck_assert(od_resize_normalize(row4, 4, 1, 2, 1, OD_INTERP_AREA, mean, stdv, dst, NULL) == OD_OK);
  ck_assert_float_eq_tol(dst[0], 0.1f, 1e-6f);
  ck_assert_float_eq_tol(dst[1], 0.7f, 1e-6f);
  ck_assert(od_resize_normalize(row4, 4, 1, 2, 1, OD_INTERP_NEAREST, mean, stdv, dst, NULL) == OD_OK);
  ck_assert_float_eq_tol(dst[0], 0, 1e-6f);
  ck_assert_float_eq_tol(dst[1], 0.4f, 1e-6f);
  free(src);
  free(dst);
}
END_TEST

/* ---- the training source ------------------------------------------------------------------------------ */

struct batch_copy {
  int h, w;
  float *images;
  int n_gt[8];
  struct od_gt_box gt[8 * OD_MAX_GT];
};

static void copy_batch(const struct od_batch *b, struct batch_copy *c) {
  c->h = b->h;
  c->w = b->w;
  c->images = malloc(sizeof(float) * (size_t)b->n * 3 * b->h * b->w);
  memcpy(c->images, b->images, sizeof(float) * (size_t)b->n * 3 * b->h * b->w);
  memcpy(c->n_gt, b->n_gt, sizeof(int) * (size_t)b->n);
  memset(c->gt, 0, sizeof c->gt);
  for (int i = 0; i < b->n; i++)
    memcpy(c->gt + i * OD_MAX_GT, b->gt + i * OD_MAX_GT, sizeof(struct od_gt_box) * (size_t)b->n_gt[i]);
}

static bool same_batch(const struct batch_copy *a, const struct batch_copy *b, int n) {
  return a->h == b->h && a->w == b->w && !memcmp(a->images, b->images, sizeof(float) * (size_t)n * 3 * a->h * a->w) &&
         !memcmp(a->n_gt, b->n_gt, sizeof(int) * (size_t)n) && !memcmp(a->gt, b->gt, sizeof a->gt);
}

START_TEST(batches_deterministic_any_workers) {
  char root[512];
  snprintf(root, sizeof root, "%s", synth_root());
  enum { N = 4, STEPS = 6 };
  struct batch_copy ref[STEPS];
  int worker_counts[2] = {1, 3};
  for (int wc = 0; wc < 2; wc++) {
    struct od_data_cfg cfg = det_cfg(OD_DATA_SYNTHETIC, root);
    cfg.workers = worker_counts[wc];
    struct od_data *d;
    struct od_err err = {0};
    ck_assert_msg(od_data_open(&cfg, N, 3, 128, 128, 7, &d, &err) == OD_OK, "%s", err.msg);
    for (int s = 0; s < STEPS; s++) {
      struct od_batch b;
      ck_assert_msg(od_data_batch(d, s, &b, &err) == OD_OK, "%s", err.msg);
      ck_assert_int_eq(b.n, N);
      ck_assert_int_eq(b.c, 3);
      struct batch_copy c;
      copy_batch(&b, &c);
      if (wc == 0) {
        ref[s] = c;
      } else {
        ck_assert_msg(same_batch(&ref[s], &c, N), "step %d differs with %d workers", s, cfg.workers);
        free(c.images);
      }
    }
    /* out of order (a resume) gives the same batches */
    int order[3] = {4, 1, 2};
    for (int k = 0; k < 3; k++) {
      struct od_batch b;
      ck_assert(od_data_batch(d, order[k], &b, &err) == OD_OK);
      struct batch_copy c;
      copy_batch(&b, &c);
      ck_assert_msg(same_batch(&ref[order[k]], &c, N), "step %d differs when asked out of order", order[k]);
      free(c.images);
    }
    struct od_data_stats st;
    od_data_stats(d, &st);
    ck_assert_int_eq(st.skipped, 0);
    ck_assert_int_gt(st.images_read, 0);
    od_data_close(d);
  }
  /* another seed: other batches */
  struct od_data_cfg cfg = det_cfg(OD_DATA_SYNTHETIC, root);
  struct od_data *d;
  struct od_err err = {0};
  ck_assert(od_data_open(&cfg, N, 3, 128, 128, 8, &d, &err) == OD_OK);
  struct od_batch b;
  ck_assert(od_data_batch(d, 0, &b, &err) == OD_OK);
  struct batch_copy c;
  copy_batch(&b, &c);
  ck_assert(!same_batch(&ref[0], &c, N));
  free(c.images);
  od_data_close(d);
  for (int s = 0; s < STEPS; s++) free(ref[s].images);
}
END_TEST

START_TEST(multiscale_boxes_and_mixup_scores) {
  struct od_data_cfg cfg = det_cfg(OD_DATA_SYNTHETIC, (char *)synth_root());
  cfg.size_min = 64;
  cfg.size_max = 160;
  cfg.size_step = 32;
  struct od_data *d;
  struct od_err err = {0};
  ck_assert(od_data_open(&cfg, 4, 3, 160, 160, 3, &d, &err) == OD_OK);
  int seen[4] = {0}, mixed = 0, boxes = 0;
  for (int s = 0; s < 40; s++) {
    struct od_batch b;
    ck_assert_msg(od_data_batch(d, s, &b, &err) == OD_OK, "%s", err.msg);
    ck_assert_int_eq(b.h, b.w);
    ck_assert(b.h >= 64 && b.h <= 160 && (b.h - 64) % 32 == 0);
    seen[(b.h - 64) / 32]++;
    for (int i = 0; i < b.n; i++) {
      ck_assert_int_le(b.n_gt[i], OD_PAD_BOXES);
      float sc[2];
      int n_sc = 0;
      for (int j = 0; j < b.n_gt[i]; j++) {
        const struct od_gt_box *g = &b.gt[i * OD_MAX_GT + j];
        boxes++;
        ck_assert(g->w > 0 && g->h > 0);
        ck_assert(g->x - g->w / 2 >= -1e-6f && g->x + g->w / 2 <= 1 + 1e-6f);
        ck_assert(g->y - g->h / 2 >= -1e-6f && g->y + g->h / 2 <= 1 + 1e-6f);
        ck_assert(g->label >= 0 && g->label < 4);
        ck_assert(g->score > 0 && g->score <= 1);
        bool known = false;
        for (int k = 0; k < n_sc; k++) known |= fabsf(sc[k] - g->score) < 1e-6f;
        if (!known) {
          ck_assert_int_lt(n_sc, 2); /* an image's boxes carry f or 1 - f */
          sc[n_sc++] = g->score;
        }
      }
      if (n_sc == 2) {
        ck_assert_float_eq_tol(sc[0] + sc[1], 1.0f, 1e-5f);
        mixed++;
      }
    }
    /* the pixels are normalised: a mean near 0, finite */
    double sum = 0;
    for (size_t k = 0; k < (size_t)b.n * 3 * b.h * b.w; k++) {
      ck_assert(isfinite(b.images[k]));
      sum += b.images[k];
    }
    ck_assert(fabs(sum / ((double)b.n * 3 * b.h * b.w)) < 2.5);
  }
  for (int k = 0; k < 4; k++) ck_assert_int_gt(seen[k], 0);
  ck_assert_int_gt(mixed, 5);
  ck_assert_int_gt(boxes, 100);
  od_data_close(d);
}
END_TEST

START_TEST(corrupt_jpeg_skipped_once) {
  char root[512];
  snprintf(root, sizeof root, "%s/corrupt", TMP);
  make_voc(root, 6, 3, 5); /* a3.jpg truncated, a5.xml malformed */
  struct od_data_cfg cfg = det_cfg(OD_DATA_VOC, root);
  cfg.train = "trainval.txt";
  struct od_data *d;
  struct od_err err = {0};
  ck_assert_msg(od_data_open(&cfg, 3, 3, 128, 128, 1, &d, &err) == OD_OK, "%s", err.msg);
  for (int s = 0; s < 12; s++) {
    struct od_batch b;
    ck_assert_msg(od_data_batch(d, s, &b, &err) == OD_OK, "%s", err.msg);
    for (int i = 0; i < b.n; i++) ck_assert_int_ge(b.n_gt[i], 0);
  }
  struct od_data_stats st;
  od_data_stats(d, &st);
  ck_assert_int_eq(st.skipped, 2); /* the XML at open, the JPEG once however often it comes up */
  od_data_close(d);

  /* nothing decodable: an error, not a crash */
  char p[600];
  snprintf(p, sizeof p, "%s/only_corrupt.txt", root);
  write_text(p, "a3\n");
  cfg.train = "only_corrupt.txt";
  ck_assert(od_data_open(&cfg, 2, 3, 128, 128, 1, &d, &err) == OD_OK);
  struct od_batch b;
  ck_assert_int_eq(od_data_batch(d, 0, &b, &err), OD_ERR_IO);
  ck_assert_msg(strstr(err.msg, "no readable image"), "%s", err.msg);
  od_data_close(d);
  /* a missing list names where it looked */
  cfg.train = "nope.txt";
  ck_assert_int_eq(od_data_open(&cfg, 2, 3, 128, 128, 1, &d, &err), OD_ERR_INVALID_ARG);
  ck_assert_msg(strstr(err.msg, "nope.txt") && strstr(err.msg, "ImageSets/Main"), "%s", err.msg);
}
END_TEST

START_TEST(synthetic_in_memory) {
  struct od_data_cfg cfg = det_cfg(OD_DATA_SYNTHETIC, NULL);
  cfg.images = 20;
  struct od_data *d;
  struct od_err err = {0};
  ck_assert_msg(od_data_open(&cfg, 2, 3, 128, 128, 1, &d, &err) == OD_OK, "%s", err.msg);
  struct od_batch b;
  ck_assert(od_data_batch(d, 0, &b, &err) == OD_OK);
  ck_assert(b.n_gt[0] + b.n_gt[1] > 0);
  od_data_close(d);
  /* the in-memory val split is make-data's test split */
  struct od_data_eval *e;
  ck_assert_msg(od_data_open_eval(&cfg, 96, &e, &err) == OD_OK, "%s", err.msg);
  ck_assert_int_eq(od_data_eval_count(e), 4);
  struct od_eval_batch eb;
  ck_assert(od_data_eval_next(e, 8, &eb, &err) == OD_OK);
  ck_assert_int_eq(eb.n, 4);
  ck_assert_ptr_null(eb.info[0].path);
  od_data_eval_close(e);
  /* a root without a list: generated there first */
  char root[512];
  snprintf(root, sizeof root, "%s/generated", TMP);
  cfg.root = root;
  ck_assert_msg(od_data_open(&cfg, 2, 3, 128, 128, 1, &d, &err) == OD_OK, "%s", err.msg);
  od_data_close(d);
  char p[600];
  snprintf(p, sizeof p, "%s/Annotations/000019.xml", root);
  struct stat stt;
  ck_assert_int_eq(stat(p, &stt), 0);
}
END_TEST

/* ---- evaluation ------------------------------------------------------------------------------------ */

START_TEST(eval_iterator) {
  const char *root = synth_root();
  struct od_data_cfg cfg = det_cfg(OD_DATA_SYNTHETIC, (char *)root);
  struct od_data_eval *e;
  struct od_err err = {0};
  ck_assert_msg(od_data_open_eval(&cfg, 96, &e, &err) == OD_OK, "%s", err.msg);
  int total = od_data_eval_count(e);
  ck_assert_int_eq(total, 10); /* 25% of 40 */
  struct od_voc_set ref;
  ck_assert(od_voc_load(root, "test.txt", shape_classes, 4, NULL, &ref, &err) == OD_OK);
  for (int pass = 0; pass < 2; pass++) {
    int seen = 0;
    for (;;) {
      struct od_eval_batch b;
      ck_assert(od_data_eval_next(e, 3, &b, &err) == OD_OK);
      if (!b.n) break;
      ck_assert_int_le(b.n, 3);
      ck_assert(b.h == 96 && b.w == 96 && b.c == 3);
      for (int i = 0; i < b.n; i++, seen++) {
        const struct od_eval_image *in = &b.info[i];
        const struct od_voc_image *r = &ref.im[seen];
        ck_assert_int_eq(in->index, seen);
        ck_assert_str_eq(in->path, r->image);
        ck_assert_int_eq(in->width, r->width);
        ck_assert_int_eq(in->height, r->height);
        ck_assert_int_eq(in->n_gt, r->n_boxes);
        for (int j = 0; j < in->n_gt; j++) {
          ck_assert(in->gt[j].x1 == r->boxes[j].x1 && in->gt[j].y2 == r->boxes[j].y2);
          ck_assert_int_eq(in->gt[j].label, r->boxes[j].label);
          ck_assert_int_eq(in->gt[j].difficult, r->boxes[j].difficult);
        }
      }
    }
    ck_assert_int_eq(seen, total);
    od_data_eval_rewind(e);
  }
  struct od_data_stats st;
  od_data_eval_stats(e, &st);
  ck_assert_int_eq(st.images_read, 2 * total);
  od_voc_set_free(&ref);
  od_data_eval_close(e);

  /* a corrupt val image is left out and counted */
  char croot[512];
  snprintf(croot, sizeof croot, "%s/corrupt_eval", TMP);
  make_voc(croot, 4, 1, -1);
  cfg = det_cfg(OD_DATA_VOC, croot);
  ck_assert(od_data_open_eval(&cfg, 64, &e, &err) == OD_OK);
  struct od_eval_batch b;
  ck_assert(od_data_eval_next(e, 4, &b, &err) == OD_OK);
  ck_assert_int_eq(b.n, 3);
  ck_assert_int_eq(b.info[1].index, 2);
  ck_assert(od_data_eval_next(e, 4, &b, &err) == OD_OK && b.n == 0);
  od_data_eval_stats(e, &st);
  ck_assert_int_eq(st.skipped, 1);
  od_data_eval_close(e);
}
END_TEST

static Suite *voc_suite(void) {
  Suite *s = suite_create("voc");
  TCase *tc = tcase_create("voc");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, list_both_forms);
  tcase_add_test(tc, xml_fields_classes_clipping);
  tcase_add_test(tc, xml_errors_name_the_line);
  tcase_add_test(tc, load_skips_and_counts);
  tcase_add_test(tc, make_data_deterministic_and_parses_back);
  tcase_add_test(tc, flip_twice_is_identity);
  tcase_add_test(tc, mixup_scores_and_canvas);
  tcase_add_test(tc, expand_crop_keep_boxes_inside);
  tcase_add_test(tc, resize_properties);
  tcase_add_test(tc, batches_deterministic_any_workers);
  tcase_add_test(tc, multiscale_boxes_and_mixup_scores);
  tcase_add_test(tc, corrupt_jpeg_skipped_once);
  tcase_add_test(tc, synthetic_in_memory);
  tcase_add_test(tc, eval_iterator);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  mkdirs(TMP);
  SRunner *sr = srunner_create(voc_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
