/* loaders/voc.c: Pascal VOC list files and annotations (see voc.h).
 *
 * libxml2 is used with XML_PARSE_NONET (no network), without XML_PARSE_NOENT (entities are not
 * substituted, so an "entity expansion" file cannot blow up) and without DTD loading;
 * XML_PARSE_NOERROR/NOWARNING keep libxml2 from printing, and its error (message and line) is read
 * back from the parser context instead. Files are read into memory first so that a missing file
 * gets a plain "cannot open" message. */
#include "loaders/voc.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#define OD_VOC_MAX_XML (64u << 20) /* an annotation is a few KB; refuse absurd files */

/* ---- small helpers ------------------------------------------------------------------------------- */

static char *join_path(const char *root, const char *rel) {
  if (rel[0] == '/' || !root || !root[0]) return strdup(rel);
  size_t a = strlen(root), b = strlen(rel);
  char *p = malloc(a + b + 2);
  if (!p) return NULL;
  memcpy(p, root, a);
  size_t k = a;
  if (k && p[k - 1] != '/') p[k++] = '/';
  memcpy(p + k, rel, b + 1);
  return p;
}

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') s++;
  size_t n = strlen(s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n')) s[--n] = '\0';
  return s;
}

static bool is_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* ---- list files ----------------------------------------------------------------------------------- */

void od_voc_list_free(struct od_voc_list *l) {
  if (!l) return;
  for (int i = 0; i < l->n; i++) {
    free(l->e[i].image);
    free(l->e[i].xml);
  }
  free(l->e);
  free(l->path);
  memset(l, 0, sizeof *l);
}

static enum od_status add_entry(struct od_voc_list *l, int *cap, const char *root, const char *img, const char *xml,
                                int line, struct od_err *err) {
  if (l->n == *cap) {
    int nc = *cap ? *cap * 2 : 64;
    struct od_voc_entry *e = realloc(l->e, sizeof *e * (size_t)nc);
    if (!e) return od_err_set(err, OD_ERR_OOM, "%s: out of memory", l->path);
    l->e = e;
    *cap = nc;
  }
  struct od_voc_entry *e = &l->e[l->n];
  e->image = join_path(root, img);
  e->xml = join_path(root, xml);
  e->line = line;
  if (!e->image || !e->xml) {
    free(e->image);
    free(e->xml);
    return od_err_set(err, OD_ERR_OOM, "%s: out of memory", l->path);
  }
  l->n++;
  return OD_OK;
}

enum od_status od_voc_read_list(const char *root, const char *list_path, struct od_voc_list *out,
                                struct od_err *err) {
  struct od_voc_list l = {0};
  if (!(l.path = strdup(list_path))) return od_err_set(err, OD_ERR_OOM, "out of memory");
  FILE *f = fopen(list_path, "r");
  if (!f) {
    enum od_status st = od_err_set(err, OD_ERR_IO, "%s: cannot open the list file: %s", list_path, strerror(errno));
    od_voc_list_free(&l);
    return st;
  }
  char *line = NULL;
  size_t cap_line = 0;
  int cap = 0, lineno = 0;
  enum od_status st = OD_OK;
  while (st == OD_OK && getline(&line, &cap_line, f) >= 0) {
    lineno++;
    char *s = trim(line);
    if (!s[0] || s[0] == '#') continue;
    char *tok[3] = {0};
    int nt = 0;
    for (char *save = NULL, *t = strtok_r(s, " \t", &save); t && nt < 3; t = strtok_r(NULL, " \t", &save))
      tok[nt++] = t;
    if (nt == 1) { /* an id: the VOCdevkit layout */
      size_t n = strlen(tok[0]);
      char *img = malloc(n + 20), *xml = malloc(n + 20);
      if (!img || !xml) {
        st = od_err_set(err, OD_ERR_OOM, "%s: out of memory", list_path);
      } else {
        snprintf(img, n + 20, "JPEGImages/%s.jpg", tok[0]);
        snprintf(xml, n + 20, "Annotations/%s.xml", tok[0]);
        st = add_entry(&l, &cap, root, img, xml, lineno, err);
      }
      free(img);
      free(xml);
    } else if (nt == 2) {
      st = add_entry(&l, &cap, root, tok[0], tok[1], lineno, err);
    } else {
      st = od_err_set(err, OD_ERR_INVALID_ARG,
                      "%s:%d: expected '<id>' or '<image.jpg> <annotation.xml>', got more than two fields", list_path,
                      lineno);
    }
  }
  free(line);
  if (st == OD_OK && ferror(f)) st = od_err_set(err, OD_ERR_IO, "%s: read error", list_path);
  fclose(f);
  if (st == OD_OK && l.n == 0)
    st = od_err_set(err, OD_ERR_INVALID_ARG, "%s: the list has no entries (only blank lines or comments)", list_path);
  if (st != OD_OK) {
    od_voc_list_free(&l);
    return st;
  }
  *out = l;
  return OD_OK;
}

/* ---- classes -------------------------------------------------------------------------------------- */

void od_voc_classes_init(struct od_voc_classes *c, const char *const *names, int n, FILE *warn) {
  memset(c, 0, sizeof *c);
  c->names = names;
  c->n = n;
  c->warn = warn;
}

void od_voc_classes_free(struct od_voc_classes *c) {
  for (int i = 0; i < c->n_unknown; i++) free(c->unknown[i]);
  free(c->unknown);
  c->unknown = NULL;
  c->n_unknown = 0;
}

int od_voc_class_index(struct od_voc_classes *c, const char *name) {
  for (int i = 0; i < c->n; i++)
    if (!strcmp(c->names[i], name)) return i;
  c->skipped_objects++;
  for (int i = 0; i < c->n_unknown; i++)
    if (!strcmp(c->unknown[i], name)) return -1;
  if (c->warn) {
    fprintf(c->warn, "onnx-distill: warning: objects of class '%s' are skipped: it is not in data.classes (", name);
    for (int i = 0; i < c->n && i < 8; i++) fprintf(c->warn, "%s%s", i ? ", " : "", c->names[i]);
    fprintf(c->warn, "%s)\n", c->n > 8 ? ", ..." : "");
  }
  char **u = realloc(c->unknown, sizeof *u * (size_t)(c->n_unknown + 1));
  if (u) {
    c->unknown = u;
    if ((u[c->n_unknown] = strdup(name))) c->n_unknown++;
  }
  return -1;
}

/* ---- annotations ---------------------------------------------------------------------------------- */

void od_voc_image_free(struct od_voc_image *im) {
  if (!im) return;
  free(im->image);
  free(im->xml);
  free(im->boxes);
  memset(im, 0, sizeof *im);
}

static xmlNodePtr child(xmlNodePtr parent, const char *name) {
  for (xmlNodePtr n = parent ? parent->children : NULL; n; n = n->next)
    if (n->type == XML_ELEMENT_NODE && !xmlStrcmp(n->name, (const xmlChar *)name)) return n;
  return NULL;
}

/* The trimmed text of element `name` under parent, as a number. Returns 0 ok, 1 missing, 2 not a number. */
static int child_number(xmlNodePtr parent, const char *name, double *v, xmlNodePtr *where) {
  xmlNodePtr n = child(parent, name);
  *where = n ? n : parent;
  if (!n) return 1;
  xmlChar *txt = xmlNodeGetContent(n);
  if (!txt) return 2;
  char *s = trim((char *)txt), *end = NULL;
  errno = 0;
  double x = strtod(s, &end);
  int bad = !s[0] || *end || errno == ERANGE || !isfinite(x);
  xmlFree(txt);
  if (bad) return 2;
  *v = x;
  return 0;
}

static char *child_text(xmlNodePtr parent, const char *name) {
  xmlNodePtr n = child(parent, name);
  if (!n) return NULL;
  xmlChar *txt = xmlNodeGetContent(n);
  if (!txt) return NULL;
  char *s = strdup(trim((char *)txt));
  xmlFree(txt);
  return s;
}

static long line_of(xmlNodePtr n) { return n ? xmlGetLineNo(n) : 0; }

#define FAIL(node, ...)                                                                             \
  do {                                                                                              \
    char what_[512];                                                                                \
    snprintf(what_, sizeof what_, __VA_ARGS__);                                                     \
    st = od_err_set(err, OD_ERR_INVALID_ARG, "%s:%ld: %s", name, line_of(node), what_);             \
    goto done;                                                                                      \
  } while (0)

static void clip_boxes(struct od_voc_image *im, int w, int h, struct od_voc_classes *cls, const char *name) {
  int k = 0;
  for (int i = 0; i < im->n_boxes; i++) {
    struct od_voc_box b = im->boxes[i];
    if (b.x1 < 0) b.x1 = 0;
    if (b.y1 < 0) b.y1 = 0;
    if (w > 0 && b.x2 > (float)(w - 1)) b.x2 = (float)(w - 1);
    if (h > 0 && b.y2 > (float)(h - 1)) b.y2 = (float)(h - 1);
    if (b.x2 > b.x1 && b.y2 > b.y1) {
      im->boxes[k++] = b;
    } else {
      if (cls) {
        cls->invalid_boxes++;
        if (cls->warn)
          fprintf(cls->warn, "onnx-distill: warning: %s: empty box after clipping (%g, %g, %g, %g) skipped\n",
                  name ? name : "?", b.x1, b.y1, b.x2, b.y2);
      }
    }
  }
  im->n_boxes = k;
}

void od_voc_clip(struct od_voc_image *im, int width, int height, struct od_voc_classes *cls) {
  clip_boxes(im, width, height, cls, im->xml);
}

/* The first error libxml2 reports (later ones are often consequences of it). */
struct first_error {
  int have, line;
  char msg[400];
};

static void on_xml_error(void *user, xmlErrorPtr e) {
  xmlParserCtxtPtr ctxt = user;
  struct first_error *fe = ctxt ? ctxt->_private : NULL;
  if (!fe || fe->have || !e || e->level < XML_ERR_ERROR) return;
  fe->have = 1;
  fe->line = e->line;
  snprintf(fe->msg, sizeof fe->msg, "%s", e->message ? e->message : "not well-formed");
  trim(fe->msg);
}

enum od_status od_voc_parse_memory(const char *buf, size_t len, const char *name, const char *image_path,
                                   struct od_voc_classes *cls, struct od_voc_image *out, struct od_err *err) {
  if (!name) name = "<memory>";
  if (len > OD_VOC_MAX_XML) return od_err_set(err, OD_ERR_INVALID_ARG, "%s: %zu bytes is too large for an annotation", name, len);
  xmlInitParser();
  xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
  if (!ctxt) return od_err_set(err, OD_ERR_OOM, "%s: cannot create an XML parser", name);
  enum od_status st = OD_OK;
  struct od_voc_image im = {0};
  int cap = 0;
  char *cname = NULL;
  struct first_error fe = {0};
  ctxt->_private = &fe;
  if (ctxt->sax) ctxt->sax->serror = on_xml_error; /* userData is the context itself */
  xmlDocPtr doc = xmlCtxtReadMemory(ctxt, buf, (int)len, name, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  if (!doc || fe.have) {
    if (!fe.have) { /* no callback came: what the context recorded */
      xmlErrorPtr e = xmlCtxtGetLastError(ctxt);
      snprintf(fe.msg, sizeof fe.msg, "%s", e && e->message ? e->message : "not well-formed");
      trim(fe.msg);
      fe.line = e ? e->line : 0;
    }
    st = od_err_set(err, OD_ERR_INVALID_ARG, "%s:%d: malformed XML: %s", name, fe.line, fe.msg);
    goto done;
  }
  xmlNodePtr root = xmlDocGetRootElement(doc);
  if (!root) FAIL(root, "the document has no root element");
  if (xmlStrcmp(root->name, (const xmlChar *)"annotation")) FAIL(root, "the root element is <%s>, expected <annotation>", (const char *)root->name);
  xmlNodePtr size = child(root, "size"), where = NULL;
  if (size) {
    double w = 0, h = 0;
    int rw = child_number(size, "width", &w, &where);
    if (rw == 2) FAIL(where, "<width> is not a number");
    int rh = child_number(size, "height", &h, &where);
    if (rh == 2) FAIL(where, "<height> is not a number");
    if (rw == 0 && rh == 0) {
      if (w < 0 || h < 0 || w > 1e6 || h > 1e6) FAIL(size, "image size %g x %g is out of range", w, h);
      im.width = (int)w; /* 0 x 0 (some tools write it) means unknown */
      im.height = (int)h;
      if (!im.width || !im.height) im.width = im.height = 0;
    }
  }
  for (xmlNodePtr o = root->children; o; o = o->next) {
    if (o->type != XML_ELEMENT_NODE || xmlStrcmp(o->name, (const xmlChar *)"object")) continue;
    im.n_objects++;
    free(cname);
    cname = child_text(o, "name");
    if (!cname) FAIL(o, "<object> has no <name>");
    if (!cname[0]) FAIL(child(o, "name"), "<object> has an empty <name>");
    xmlNodePtr bb = child(o, "bndbox");
    if (!bb) FAIL(o, "<object> '%s' has no <bndbox>", cname);
    static const char *const keys[4] = {"xmin", "ymin", "xmax", "ymax"};
    double v[4];
    for (int k = 0; k < 4; k++) {
      int r = child_number(bb, keys[k], &v[k], &where);
      if (r) FAIL(where, r == 1 ? "<bndbox> has no <%s>" : "<%s> is not a number", keys[k]);
    }
    double diff = 0;
    if (child_number(o, "difficult", &diff, &where) == 2) FAIL(where, "<difficult> is not a number");
    int label = cls ? od_voc_class_index(cls, cname) : 0;
    if (label < 0) continue;
    if (im.n_boxes == cap) {
      cap = cap ? cap * 2 : 8;
      struct od_voc_box *b = realloc(im.boxes, sizeof *b * (size_t)cap);
      if (!b) {
        st = od_err_set(err, OD_ERR_OOM, "%s: out of memory", name);
        goto done;
      }
      im.boxes = b;
    }
    im.boxes[im.n_boxes++] = (struct od_voc_box){(float)v[0], (float)v[1], (float)v[2], (float)v[3], label, diff != 0};
  }
  clip_boxes(&im, im.width, im.height, cls, name);
  if ((image_path && !(im.image = strdup(image_path))) || !(im.xml = strdup(name))) {
    st = od_err_set(err, OD_ERR_OOM, "%s: out of memory", name);
    goto done;
  }
done:
  free(cname);
  if (doc) xmlFreeDoc(doc);
  xmlFreeParserCtxt(ctxt);
  if (st != OD_OK) {
    od_voc_image_free(&im);
    return st;
  }
  *out = im;
  return OD_OK;
}
#undef FAIL

enum od_status od_voc_parse(const char *xml_path, const char *image_path, struct od_voc_classes *cls,
                            struct od_voc_image *out, struct od_err *err) {
  FILE *f = fopen(xml_path, "rb");
  if (!f) return od_err_set(err, OD_ERR_IO, "%s: cannot open: %s", xml_path, strerror(errno));
  char *buf = NULL;
  size_t len = 0, cap = 0;
  enum od_status st = OD_OK;
  for (;;) {
    if (len == cap) {
      if (cap >= OD_VOC_MAX_XML) {
        st = od_err_set(err, OD_ERR_INVALID_ARG, "%s: larger than %u bytes; not an annotation", xml_path, OD_VOC_MAX_XML);
        break;
      }
      cap = cap ? cap * 2 : 8192;
      char *nb = realloc(buf, cap);
      if (!nb) {
        st = od_err_set(err, OD_ERR_OOM, "%s: out of memory", xml_path);
        break;
      }
      buf = nb;
    }
    size_t got = fread(buf + len, 1, cap - len, f);
    len += got;
    if (got == 0) {
      if (ferror(f)) st = od_err_set(err, OD_ERR_IO, "%s: read error", xml_path);
      break;
    }
  }
  fclose(f);
  if (st == OD_OK) st = od_voc_parse_memory(buf ? buf : "", len, xml_path, image_path, cls, out, err);
  free(buf);
  return st;
}

/* ---- a whole list --------------------------------------------------------------------------------- */

void od_voc_set_free(struct od_voc_set *s) {
  if (!s) return;
  for (int i = 0; i < s->n; i++) od_voc_image_free(&s->im[i]);
  free(s->im);
  memset(s, 0, sizeof *s);
}

enum od_status od_voc_load(const char *root, const char *list, const char *const *classes, int n_classes, FILE *warn,
                           struct od_voc_set *out, struct od_err *err) {
  char *list_path = join_path(root, list);
  if (!list_path) return od_err_set(err, OD_ERR_OOM, "out of memory");
  struct od_voc_list l;
  enum od_status st = od_voc_read_list(root, list_path, &l, err);
  free(list_path);
  if (st != OD_OK) return st;
  struct od_voc_set s = {0};
  s.im = calloc((size_t)l.n, sizeof *s.im);
  if (!s.im) {
    od_voc_list_free(&l);
    return od_err_set(err, OD_ERR_OOM, "out of memory");
  }
  struct od_voc_classes cls;
  od_voc_classes_init(&cls, classes, n_classes, warn);
  for (int i = 0; i < l.n && st == OD_OK; i++) {
    const struct od_voc_entry *e = &l.e[i];
    if (!is_file(e->image)) {
      if (warn) fprintf(warn, "onnx-distill: skipping %s:%d: %s: no such image file\n", l.path, e->line, e->image);
      s.skipped++;
      continue;
    }
    struct od_err pe = {0};
    struct od_voc_image im;
    enum od_status ps = od_voc_parse(e->xml, e->image, &cls, &im, &pe);
    if (ps == OD_ERR_OOM) {
      *err = pe;
      st = ps;
      break;
    }
    if (ps != OD_OK) {
      if (warn) fprintf(warn, "onnx-distill: skipping %s (listed at %s:%d)\n", pe.msg, l.path, e->line);
      s.skipped++;
      continue;
    }
    if (im.n_objects == 0) { /* PaddleDetection leaves these out */
      s.no_objects++;
      od_voc_image_free(&im);
      continue;
    }
    s.im[s.n++] = im;
  }
  s.skipped_objects = cls.skipped_objects;
  od_voc_classes_free(&cls);
  if (st == OD_OK && s.n == 0)
    st = od_err_set(err, OD_ERR_INVALID_ARG,
                    "%s: no usable image: %lld skipped (missing or malformed), %lld without objects", l.path,
                    (long long)s.skipped, (long long)s.no_objects);
  od_voc_list_free(&l);
  if (st != OD_OK) {
    od_voc_set_free(&s);
    return st;
  }
  *out = s;
  return OD_OK;
}
