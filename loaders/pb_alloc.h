/* loaders/pb_alloc.h: the protobuf-c allocator used for every ONNX message we unpack or build.
 *
 * It zeroes every allocation (calloc): protobuf-c 1.4.1 has known reads of uninitialised memory
 * when unpacking malformed input, which zeroed memory turns into well-defined behaviour. It frees
 * with free(), so a field of an unpacked message may be replaced by memory from malloc/calloc and
 * the old one released with free(). */
#ifndef OD_PB_ALLOC_H
#define OD_PB_ALLOC_H

#include <protobuf-c/protobuf-c.h>

/* Fills a ProtobufCAllocator owned by the caller (no global allocator object exists). */
void od_pb_allocator_init(ProtobufCAllocator *a);

#endif
