/* loaders/pb_diagnose.c: finds the first wire-format problem of a protobuf message (see pb_diagnose.h).
 *
 * The protobuf wire format (https://protobuf.dev/programming-guides/encoding/) is a sequence of
 * fields, each a tag varint (field_number << 3 | wire_type) followed by a payload whose size the
 * wire type gives: 0 varint (1-10 bytes), 1 fixed 8 bytes, 2 a varint length then that many bytes,
 * 5 fixed 4 bytes. Wire types 3 and 4 open and close groups (deprecated, unused by ONNX, rejected by
 * protobuf-c); 6 and 7 do not exist.
 *
 * The walk accepts exactly what protobuf-c 1.4.1's protobuf_c_message_unpack accepts, so that a file
 * it rejects gets a reason. Its limits, from protobuf-c.c: a tag takes at most 5 bytes, a varint at
 * most 10, a length prefix at most 5 and at most INT_MAX; a known field must carry the wire type of
 * its type (bool excepted: protobuf-c reads a bool from any wire type); a repeated numeric field may
 * come packed (one length-delimited run of values) or one value per tag; fixed-size packed runs must
 * be a whole number of values; every varint of a packed run must end inside the run. Unknown field
 * numbers are legal (files from newer ONNX versions) and skipped. Two things it rejects beyond
 * protobuf-c: field number 0 in any encoding (invalid protobuf) and messages nested deeper than
 * PB_MAX_DEPTH (protobuf-c recurses without a limit; Google's parsers stop at 100 too).
 *
 * Nested messages are walked with an explicit stack of frames, not recursion, and nothing is
 * allocated. Field paths ("graph.node[3].attribute[1].t") are only built once a problem is found:
 * the index of a repeated field is the number of earlier fields with its number in the enclosing
 * message, counted by walking that message again up to the field. */
#include "loaders/pb_diagnose.h"

#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Messages nested deeper than this are refused (the root message is depth 1). ONNX nests about 3
 * levels per subgraph (graph.node[i].attribute[j].g), so 100 leaves room for 30 nested subgraphs. */
#define PB_MAX_DEPTH 100

enum pb_wire {
  PB_WIRE_VARINT = 0,
  PB_WIRE_FIXED64 = 1,
  PB_WIRE_LEN = 2,
  PB_WIRE_START_GROUP = 3,
  PB_WIRE_END_GROUP = 4,
  PB_WIRE_FIXED32 = 5,
};

/* Most bytes protobuf-c reads for a tag, a varint value and a length prefix (protobuf-c.c:
 * parse_tag_and_wiretype, scan_varint, scan_length_prefixed_data). */
#define PB_TAG_MAX_BYTES 5
#define PB_VARINT_MAX_BYTES 10
#define PB_LEN_MAX_BYTES 5

/* One message being walked. */
struct pb_frame {
  const ProtobufCMessageDescriptor *desc;
  const ProtobufCFieldDescriptor *field; /* the field of the parent holding it; NULL for the root */
  uint32_t number;                       /* that field's number */
  size_t tag_at;                         /* offset of that field's tag in the buffer */
  size_t start;                          /* first byte of the message's content */
  size_t end;                            /* one past the last byte that may be read */
  size_t pos;                            /* next byte to read */
  uint64_t declared;                     /* length its prefix declares */
  bool cut;                              /* declared runs past the end of the file: end is clamped */
};

/* The walk's state: the buffer and the stack of open messages (stack[0] is the root). */
struct pb_walk {
  const uint8_t *buf;
  size_t len;
  struct pb_frame stack[PB_MAX_DEPTH];
  size_t depth;
};

/* The head of one field: its tag and the extent of its payload. */
struct pb_head {
  size_t tag_at;     /* offset of the tag */
  uint64_t tag;      /* the tag varint: number << 3 | wire type */
  uint64_t number;   /* field number */
  unsigned wire;     /* wire type */
  size_t data_at;    /* first payload byte (after the length prefix for wire type 2) */
  uint64_t data_len; /* payload bytes (declared length for wire type 2) */
};

/* Why a field head could not be read. */
enum pb_head_fail {
  PB_HEAD_OK = 0,
  PB_HEAD_TAG_TRUNCATED,
  PB_HEAD_TAG_TOO_LONG,
  PB_HEAD_FIELD_ZERO,
  PB_HEAD_GROUP,
  PB_HEAD_BAD_WIRE,
  PB_HEAD_VARINT_TRUNCATED,
  PB_HEAD_VARINT_TOO_LONG,
  PB_HEAD_FIXED_TRUNCATED,
  PB_HEAD_LEN_TRUNCATED,
  PB_HEAD_LEN_TOO_LONG,
  PB_HEAD_LEN_TOO_BIG,
  PB_HEAD_LEN_OVERRUN,
};

/* Reads a varint of at most max_bytes from [pos, end). Returns its size in bytes, or 0 when it
 * does not end within max_bytes or within the buffer; *truncated then says which. */
static size_t pb_varint_scan(const uint8_t *buf, size_t pos, size_t end, size_t max_bytes,
                             uint64_t *value, bool *truncated) {
  uint64_t v = 0;
  size_t avail = end - pos;
  size_t n = avail < max_bytes ? avail : max_bytes;
  for (size_t i = 0; i < n; i++) {
    uint8_t b = buf[pos + i];
    if (i < 10) v |= (uint64_t)(b & 0x7f) << (7 * i); /* bits past 64 are dropped, as protobuf-c does */
    if (!(b & 0x80)) {
      if (value) *value = v;
      return i + 1;
    }
  }
  *truncated = avail < max_bytes;
  return 0;
}

/* Reads the tag and payload extent of the field at pos in [pos, end). Checks everything protobuf-c
 * checks while scanning a message, except whether the tag's wire type fits the field's type. On
 * PB_HEAD_LEN_OVERRUN h is complete (data_len is the declared length). */
static enum pb_head_fail pb_head_read(const uint8_t *buf, size_t pos, size_t end, struct pb_head *h) {
  bool truncated = false;
  memset(h, 0, sizeof *h);
  h->tag_at = pos;
  size_t n = pb_varint_scan(buf, pos, end, PB_TAG_MAX_BYTES, &h->tag, &truncated);
  if (n == 0) return truncated ? PB_HEAD_TAG_TRUNCATED : PB_HEAD_TAG_TOO_LONG;
  h->number = h->tag >> 3;
  h->wire = (unsigned)(h->tag & 7);
  pos += n;
  h->data_at = pos;
  if (h->number == 0) return PB_HEAD_FIELD_ZERO;
  switch (h->wire) {
    case PB_WIRE_VARINT:
      n = pb_varint_scan(buf, pos, end, PB_VARINT_MAX_BYTES, NULL, &truncated);
      if (n == 0) return truncated ? PB_HEAD_VARINT_TRUNCATED : PB_HEAD_VARINT_TOO_LONG;
      h->data_len = n;
      return PB_HEAD_OK;
    case PB_WIRE_FIXED64:
    case PB_WIRE_FIXED32:
      h->data_len = h->wire == PB_WIRE_FIXED64 ? 8 : 4;
      return end - pos < h->data_len ? PB_HEAD_FIXED_TRUNCATED : PB_HEAD_OK;
    case PB_WIRE_LEN: {
      uint64_t declared = 0;
      n = pb_varint_scan(buf, pos, end, PB_LEN_MAX_BYTES, &declared, &truncated);
      if (n == 0) return truncated ? PB_HEAD_LEN_TRUNCATED : PB_HEAD_LEN_TOO_LONG;
      h->data_at = pos + n;
      h->data_len = declared;
      if (declared > INT_MAX) return PB_HEAD_LEN_TOO_BIG;
      return declared > end - h->data_at ? PB_HEAD_LEN_OVERRUN : PB_HEAD_OK;
    }
    case PB_WIRE_START_GROUP:
    case PB_WIRE_END_GROUP:
      return PB_HEAD_GROUP;
    default:
      return PB_HEAD_BAD_WIRE;
  }
}

/* The descriptor of field number in desc, or NULL for an unknown field (fields[] is sorted by id). */
static const ProtobufCFieldDescriptor *pb_field_find(const ProtobufCMessageDescriptor *desc,
                                                     uint64_t number) {
  size_t lo = 0, hi = desc->n_fields;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    uint32_t id = desc->fields[mid].id;
    if (id == number) return &desc->fields[mid];
    if (id < number) lo = mid + 1;
    else hi = mid;
  }
  return NULL;
}

/* The wire type a field of type t is written with when not packed. */
static unsigned pb_type_wire(ProtobufCType t) {
  switch (t) {
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
      return PB_WIRE_FIXED32;
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
      return PB_WIRE_FIXED64;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE:
      return PB_WIRE_LEN;
    default:
      return PB_WIRE_VARINT;
  }
}

static bool pb_type_packable(ProtobufCType t) {
  return t != PROTOBUF_C_TYPE_STRING && t != PROTOBUF_C_TYPE_BYTES && t != PROTOBUF_C_TYPE_MESSAGE;
}

static const char *pb_wire_name(unsigned wire) {
  switch (wire) {
    case PB_WIRE_VARINT: return "varint";
    case PB_WIRE_FIXED64: return "64-bit";
    case PB_WIRE_LEN: return "length-delimited";
    case PB_WIRE_START_GROUP: return "start-group";
    case PB_WIRE_END_GROUP: return "end-group";
    case PB_WIRE_FIXED32: return "32-bit";
    default: return "invalid";
  }
}

/* Whether a field with this tag would be parsed as a packed run of values. */
static bool pb_is_packed(const ProtobufCFieldDescriptor *fd, unsigned wire) {
  return fd && fd->label == PROTOBUF_C_LABEL_REPEATED && wire == PB_WIRE_LEN &&
         pb_type_packable(fd->type);
}

/* Counts the fields numbered number in [start, end) of buf: the index of the next one. */
static size_t pb_count_fields(const uint8_t *buf, size_t start, size_t end, uint64_t number) {
  size_t count = 0;
  struct pb_head h;
  for (size_t pos = start; pos < end;) {
    if (pb_head_read(buf, pos, end, &h) != PB_HEAD_OK) break; /* cannot happen: already walked */
    if (h.number == number) count++;
    pos = h.data_at + (size_t)h.data_len;
  }
  return count;
}

/* Appends one path component (".name" or ".name[index]") to path, which holds size bytes. */
static void pb_path_append(char *path, size_t size, const char *name, bool indexed, size_t index) {
  size_t used = strlen(path);
  if (used + 1 >= size) return;
  const char *dot = used ? "." : "";
  if (indexed) snprintf(path + used, size - used, "%s%s[%zu]", dot, name, index);
  else snprintf(path + used, size - used, "%s%s", dot, name);
}

/* Whether the path names one element of a repeated field (messages, strings, bytes; a packed run
 * holds many values, so numeric fields are named without an index). */
static bool pb_field_indexed(const ProtobufCFieldDescriptor *fd) {
  return fd && fd->label == PROTOBUF_C_LABEL_REPEATED && !pb_type_packable(fd->type);
}

/* Messages nested deeper than this have the middle of their path elided ("a.b.c.<90 more>.x.y"). */
#define PB_PATH_KEEP 4

/* Writes the path of the open messages, and of field fd/number at tag_at in the innermost one when
 * number != 0, into path ("graph.node[3].attribute[1]"). The root message contributes nothing. */
static void pb_path_build(const struct pb_walk *w, const ProtobufCFieldDescriptor *fd, uint64_t number,
                          size_t tag_at, char *path, size_t size) {
  path[0] = '\0';
  for (size_t d = 1; d < w->depth; d++) {
    if (w->depth > 2 * PB_PATH_KEEP + 2 && d == PB_PATH_KEEP + 1) {
      size_t skip = w->depth - 2 * PB_PATH_KEEP - 1;
      char more[32];
      snprintf(more, sizeof more, "<%zu more>", skip);
      pb_path_append(path, size, more, false, 0);
      d += skip - 1;
      continue;
    }
    const struct pb_frame *f = &w->stack[d];
    const struct pb_frame *parent = &w->stack[d - 1];
    bool indexed = pb_field_indexed(f->field);
    size_t index = indexed ? pb_count_fields(w->buf, parent->start, f->tag_at, f->number) : 0;
    pb_path_append(path, size, f->field->name, indexed, index);
  }
  if (number == 0) {
    if (!path[0]) snprintf(path, size, "%s", w->stack[0].desc->short_name);
    return;
  }
  const struct pb_frame *top = &w->stack[w->depth - 1];
  bool indexed = pb_field_indexed(fd);
  size_t index = indexed ? pb_count_fields(w->buf, top->start, tag_at, number) : 0;
  pb_path_append(path, size, fd ? fd->name : "<unknown>", indexed, index);
}

/* Records the problem of field fd/number (0: of the innermost message itself) at byte at. */
static enum od_status pb_fail(const struct pb_walk *w, const ProtobufCFieldDescriptor *fd,
                              uint64_t number, size_t at, const char *reason, struct od_err *err) {
  char path[512];
  pb_path_build(w, fd, number, at, path, sizeof path);
  if (number == 0) return od_err_set(err, OD_ERR_INVALID_MODEL, "%s at byte %zu: %s", path, at, reason);
  return od_err_set(err, OD_ERR_INVALID_MODEL, "%s (field %" PRIu64 ") at byte %zu: %s", path, number,
                    at, reason);
}

/* The note added when a field runs into the end of the file rather than of its enclosing message. */
static const char *pb_eof_note(const struct pb_walk *w, size_t end) {
  return end == w->len ? " (the file ends there: is it truncated?)" : "";
}

/* Checks the values of a packed run (h is a length-delimited field of a repeated numeric type).
 * Writes the reason into reason and returns false on a problem. */
static bool pb_packed_check(const struct pb_walk *w, const ProtobufCFieldDescriptor *fd,
                            const struct pb_head *h, char *reason, size_t size) {
  size_t n = (size_t)h->data_len;
  switch (pb_type_wire(fd->type)) {
    case PB_WIRE_FIXED32:
    case PB_WIRE_FIXED64: {
      size_t width = pb_type_wire(fd->type) == PB_WIRE_FIXED32 ? 4 : 8;
      if (n % width == 0) return true;
      snprintf(reason, size, "packed %zu-byte values take %zu bytes, not a multiple of %zu", width, n,
               width);
      return false;
    }
    default: {
      size_t end = h->data_at + n;
      size_t index = 0;
      for (size_t pos = h->data_at; pos < end; index++) {
        bool truncated = false;
        size_t k = pb_varint_scan(w->buf, pos, end, PB_VARINT_MAX_BYTES, NULL, &truncated);
        if (k == 0) {
          snprintf(reason, size, "packed value %zu at byte %zu: %s", index, pos,
                   truncated ? "varint runs past the end of the packed run" : "varint longer than 10 bytes");
          return false;
        }
        pos += k;
      }
      return true;
    }
  }
}

/* Opens the message held by field fd (head h) of the innermost frame. The caller checked depth. */
static void pb_push(struct pb_walk *w, const ProtobufCFieldDescriptor *fd, const struct pb_head *h,
                    size_t end, bool cut) {
  struct pb_frame *f = &w->stack[w->depth++];
  f->desc = fd->descriptor;
  f->field = fd;
  f->number = fd->id;
  f->tag_at = h->tag_at;
  f->start = h->data_at;
  f->end = end;
  f->pos = h->data_at;
  f->declared = h->data_len;
  f->cut = cut;
}

enum od_status od_pb_diagnose(const uint8_t *buf, size_t len, const ProtobufCMessageDescriptor *desc,
                              struct od_err *err) {
  if (len == 0) return od_err_set(err, OD_ERR_INVALID_MODEL, "file is empty");
  if (!buf || !desc) return od_err_set(err, OD_ERR_INTERNAL, "od_pb_diagnose: NULL buffer or descriptor");

  /* The stack is large (PB_MAX_DEPTH frames), but a few kilobytes: it lives on the C stack. */
  struct pb_walk w;
  w.buf = buf;
  w.len = len;
  w.depth = 1;
  w.stack[0] = (struct pb_frame){.desc = desc, .start = 0, .end = len, .pos = 0, .declared = len};
  char reason[256];

  while (w.depth > 0) {
    struct pb_frame *f = &w.stack[w.depth - 1];
    if (f->pos >= f->end) {
      if (f->cut) {
        /* The message's content parsed cleanly up to the end of the file, so the problem is its
         * length: report it at the field that opened it. */
        snprintf(reason, sizeof reason, "declares %" PRIu64 " bytes but only %zu remain%s", f->declared,
                 f->end - f->start, pb_eof_note(&w, f->end));
        const ProtobufCFieldDescriptor *fd = f->field;
        size_t tag_at = f->tag_at;
        w.depth--;
        return pb_fail(&w, fd, fd->id, tag_at, reason, err);
      }
      w.depth--;
      if (w.depth > 0) {
        struct pb_frame *parent = &w.stack[w.depth - 1];
        parent->pos = f->start + (size_t)f->declared;
      }
      continue;
    }

    struct pb_head h;
    enum pb_head_fail fail = pb_head_read(buf, f->pos, f->end, &h);
    const ProtobufCFieldDescriptor *fd = fail == PB_HEAD_TAG_TRUNCATED || fail == PB_HEAD_TAG_TOO_LONG
                                             ? NULL
                                             : pb_field_find(f->desc, h.number);
    size_t left = h.data_at <= f->end ? f->end - h.data_at : 0;
    switch (fail) {
      case PB_HEAD_OK:
      case PB_HEAD_LEN_OVERRUN:
        break;
      case PB_HEAD_TAG_TRUNCATED:
        snprintf(reason, sizeof reason, "field tag cut short%s", pb_eof_note(&w, f->end));
        return pb_fail(&w, NULL, 0, f->pos, reason, err);
      case PB_HEAD_TAG_TOO_LONG:
        return pb_fail(&w, NULL, 0, f->pos, "field tag longer than 5 bytes (corrupt data)", err);
      case PB_HEAD_FIELD_ZERO:
        snprintf(reason, sizeof reason, "field number 0 is invalid (tag 0x%" PRIx64 ", %s; corrupt data?)",
                 h.tag, pb_wire_name(h.wire));
        return pb_fail(&w, NULL, 0, f->pos, reason, err);
      case PB_HEAD_GROUP:
        snprintf(reason, sizeof reason, "%s wire type %u: groups are not used by ONNX (corrupt data?)",
                 pb_wire_name(h.wire), h.wire);
        return pb_fail(&w, fd, h.number, f->pos, reason, err);
      case PB_HEAD_BAD_WIRE:
        snprintf(reason, sizeof reason, "invalid wire type %u (corrupt data?)", h.wire);
        return pb_fail(&w, fd, h.number, f->pos, reason, err);
      case PB_HEAD_VARINT_TRUNCATED:
        snprintf(reason, sizeof reason, "truncated varint: %zu bytes remain, none ends it%s", left,
                 pb_eof_note(&w, f->end));
        return pb_fail(&w, fd, h.number, f->pos, reason, err);
      case PB_HEAD_VARINT_TOO_LONG:
        return pb_fail(&w, fd, h.number, f->pos, "varint longer than 10 bytes", err);
      case PB_HEAD_FIXED_TRUNCATED:
        snprintf(reason, sizeof reason, "truncated fixed%s: needs %" PRIu64 " bytes but only %zu remain%s",
                 h.wire == PB_WIRE_FIXED64 ? "64" : "32", h.data_len, left, pb_eof_note(&w, f->end));
        return pb_fail(&w, fd, h.number, f->pos, reason, err);
      case PB_HEAD_LEN_TRUNCATED:
        snprintf(reason, sizeof reason, "truncated length prefix%s", pb_eof_note(&w, f->end));
        return pb_fail(&w, fd, h.number, f->pos, reason, err);
      case PB_HEAD_LEN_TOO_LONG:
        return pb_fail(&w, fd, h.number, f->pos, "length prefix longer than 5 bytes", err);
      case PB_HEAD_LEN_TOO_BIG:
        snprintf(reason, sizeof reason, "declares %" PRIu64 " bytes, more than protobuf's 2 GiB limit",
                 h.data_len);
        return pb_fail(&w, fd, h.number, f->pos, reason, err);
    }

    /* A known field must carry its type's wire type, or be a packed run of a repeated numeric
     * field. protobuf-c reads bools from any wire type, so they pass. */
    if (fd && fd->type != PROTOBUF_C_TYPE_BOOL && h.wire != pb_type_wire(fd->type) &&
        !pb_is_packed(fd, h.wire)) {
      snprintf(reason, sizeof reason, "expected %s%s, got %s", pb_wire_name(pb_type_wire(fd->type)),
               fd->label == PROTOBUF_C_LABEL_REPEATED && pb_type_packable(fd->type)
                   ? " (or a packed length-delimited run)"
                   : "",
               pb_wire_name(h.wire));
      return pb_fail(&w, fd, h.number, f->pos, reason, err);
    }

    bool is_message = fd && fd->type == PROTOBUF_C_TYPE_MESSAGE && fd->descriptor;
    if (fail == PB_HEAD_LEN_OVERRUN) {
      /* When the field runs into the end of the file, the file was most likely cut short: walk into
       * the message as far as the file goes, to name the innermost field that is cut. Elsewhere
       * the length itself is wrong, and what follows belongs to other fields. */
      if (is_message && f->end == len && w.depth < PB_MAX_DEPTH) {
        pb_push(&w, fd, &h, len, true);
        continue;
      }
      snprintf(reason, sizeof reason, "declares %" PRIu64 " bytes but only %zu remain%s", h.data_len, left,
               pb_eof_note(&w, f->end));
      return pb_fail(&w, fd, h.number, f->pos, reason, err);
    }

    if (pb_is_packed(fd, h.wire) && !pb_packed_check(&w, fd, &h, reason, sizeof reason))
      return pb_fail(&w, fd, h.number, f->pos, reason, err);

    if (is_message && h.wire == PB_WIRE_LEN) {
      if (w.depth >= PB_MAX_DEPTH) {
        snprintf(reason, sizeof reason, "messages nested more than %d deep", PB_MAX_DEPTH);
        return pb_fail(&w, fd, h.number, f->pos, reason, err);
      }
      pb_push(&w, fd, &h, h.data_at + (size_t)h.data_len, false);
      continue;
    }
    f->pos = h.data_at + (size_t)h.data_len;
  }
  return OD_OK;
}
