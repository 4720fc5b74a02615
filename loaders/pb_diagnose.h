/* loaders/pb_diagnose.h: explains why a protobuf message failed to unpack.
 *
 * protobuf-c only says "failed"; users need to know what and where. od_pb_diagnose walks the wire
 * format with the generated descriptors (field numbers, wire types, nested messages) and reports
 * the first problem with its field path and byte offset, e.g.
 *   "graph.node[3].attribute[1].t.raw_data (field 9) at byte 5123: declares 4000 bytes but only 120 remain"
 * It accepts what protobuf_c_message_unpack accepts, except messages nested deeper than 100
 * (protobuf-c recurses without a limit, so those overflow its stack) and field number 0; the
 * importer calls it before unpacking. It reads each tag once and skips payloads, so it costs far
 * less than the unpack. */
#ifndef OD_PB_DIAGNOSE_H
#define OD_PB_DIAGNOSE_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "runtime/status.h"

/* Describes the first wire-format problem of buf as a message of type desc into err and returns
 * OD_ERR_INVALID_MODEL; returns OD_OK (err untouched) when it finds none. */
enum od_status od_pb_diagnose(const uint8_t *buf, size_t len, const ProtobufCMessageDescriptor *desc,
                              struct od_err *err);

#endif
