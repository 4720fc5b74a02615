/* loaders/pb_alloc.c: zeroing protobuf-c allocator (see pb_alloc.h). */
#include "loaders/pb_alloc.h"

#include <stdlib.h>

static void *pb_zalloc(void *data, size_t size) {
  (void)data;
  return calloc(1, size ? size : 1);
}

static void pb_free(void *data, void *ptr) {
  (void)data;
  free(ptr);
}

void od_pb_allocator_init(ProtobufCAllocator *a) {
  a->alloc = pb_zalloc;
  a->free = pb_free;
  a->allocator_data = NULL;
}
