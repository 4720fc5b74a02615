/* loaders/voc.h: Pascal VOC datasets (VOCdevkit layout) for detection training and evaluation.
 *
 *   ROOT/JPEGImages/<id>.jpg     the images
 *   ROOT/Annotations/<id>.xml    one annotation per image
 *   list files                   one image per line, in either of the two forms in use:
 *                                  "<id>"                                  (ImageSets/Main/NAME.txt)
 *                                  "JPEGImages/x.jpg Annotations/x.xml"    (PaddleDetection's
 *                                    trainval.txt/test.txt, as the reference experiment wrote them)
 *                                relative paths are relative to ROOT; blank lines and lines that
 *                                start with '#' are skipped
 *
 * Annotations are parsed with libxml2 (XML_PARSE_NONET, no entity substitution, no DTD loading):
 * <size><width>/<height> (optional: the JPEG's size is used when absent), and per <object> its
 * <name>, <difficult> (optional, default 0) and <bndbox> xmin/ymin/xmax/ymax.
 *
 * Box convention, as PaddleDetection's VOCDataSet (static/ppdet/data/source/voc.py, the same in the
 * dygraph tree): the coordinates are kept as written (VOC's 1-based pixel numbers are NOT shifted
 * by -1), then clipped: x1 = max(0, xmin), y1 = max(0, ymin), x2 = min(width - 1, xmax),
 * y2 = min(height - 1, ymax); a box is kept only if x2 > x1 and y2 > y1. The VOC evaluation that
 * goes with it (ppdet/utils/map_utils.py) measures areas with the +1 pixel convention.
 *
 * Class names map to indices through the manifest's class list. An object whose name is not in the
 * list is skipped with one warning per name (PaddleDetection would stop with a KeyError). Errors
 * name the file and line: "Annotations/x.xml:12: <bndbox> has no <xmax>". */
#ifndef OD_VOC_H
#define OD_VOC_H

#include <stdint.h>
#include <stdio.h>

#include "runtime/status.h"

struct od_voc_box {
  float x1, y1, x2, y2; /* pixels, as written in the XML, clipped as above */
  int label;            /* index in the class list */
  int difficult;
};

struct od_voc_image {
  char *image;            /* JPEG path (NULL for images that are not files, e.g. synthetic in memory) */
  char *xml;              /* annotation path */
  int width, height;      /* <size>; 0 when the annotation has none (then use the JPEG's) */
  int n_objects;          /* <object> elements in the annotation, including skipped ones */
  struct od_voc_box *boxes;
  int n_boxes;
  int64_t index;          /* free for the caller (the synthetic source keeps its image number here) */
};

/* One line of a list file. */
struct od_voc_entry {
  char *image, *xml; /* resolved paths */
  int line;          /* 1-based line in the list file */
};

struct od_voc_list {
  char *path; /* the list file */
  struct od_voc_entry *e;
  int n;
};

/* Reads a list file (list_path as given; entries resolved against root). Fails on an unreadable
 * file or one with no entries. */
enum od_status od_voc_read_list(const char *root, const char *list_path, struct od_voc_list *out,
                                struct od_err *err);
void od_voc_list_free(struct od_voc_list *l);

/* The class list and the warn-once state for unknown names. */
struct od_voc_classes {
  const char *const *names;
  int n;
  FILE *warn;               /* where warnings go; NULL: silent */
  char **unknown;           /* names already warned about */
  int n_unknown;
  int64_t skipped_objects;  /* objects with an unknown name */
  int64_t invalid_boxes;    /* boxes dropped because x2 <= x1 or y2 <= y1 after clipping */
};

void od_voc_classes_init(struct od_voc_classes *c, const char *const *names, int n, FILE *warn);
void od_voc_classes_free(struct od_voc_classes *c);
/* The index of name, or -1 (with the one-time warning, counted in skipped_objects). */
int od_voc_class_index(struct od_voc_classes *c, const char *name);

/* Parses one annotation file into *out (image path copied from image_path, may be NULL). On a
 * malformed or incomplete file returns OD_ERR_INVALID_ARG with "path:line: what" in err. */
enum od_status od_voc_parse(const char *xml_path, const char *image_path, struct od_voc_classes *cls,
                            struct od_voc_image *out, struct od_err *err);
/* The same from memory (name is used in messages). */
enum od_status od_voc_parse_memory(const char *buf, size_t len, const char *name, const char *image_path,
                                   struct od_voc_classes *cls, struct od_voc_image *out, struct od_err *err);

/* Clips the boxes of an image whose annotation had no <size> to the decoded width x height, and
 * drops the boxes that become empty (counted in cls->invalid_boxes when cls is not NULL). */
void od_voc_clip(struct od_voc_image *im, int width, int height, struct od_voc_classes *cls);

void od_voc_image_free(struct od_voc_image *im);

/* A whole list, parsed. Entries whose JPEG is missing or whose annotation is malformed are reported
 * on warn ("onnx-distill: skipping ..."), counted in `skipped` and left out; so are annotations
 * without any <object> (as PaddleDetection does), counted in `no_objects`. */
struct od_voc_set {
  struct od_voc_image *im;
  int n;
  int64_t skipped;
  int64_t no_objects;
  int64_t skipped_objects; /* objects with class names not in the list */
};

/* Loads list (relative to root unless absolute) with classes. Fails when nothing usable is left. */
enum od_status od_voc_load(const char *root, const char *list, const char *const *classes, int n_classes, FILE *warn,
                           struct od_voc_set *out, struct od_err *err);
void od_voc_set_free(struct od_voc_set *s);

#endif
