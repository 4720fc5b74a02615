/* runtime/devices/cuda_stub.c: the CUDA entry points of a build without CUDA (-DOD_CUDA=OFF). */
#include "runtime/device.h"

int od_cuda_device_count(void) { return 0; }

enum od_status od_device_cuda_open(int ordinal, struct od_device **out, struct od_err *err) {
  return od_err_set(err, OD_ERR_NO_DEVICE, "cuda:%d: this build of onnx-distill has no CUDA support "
                                           "(rebuild with -DOD_CUDA=ON)", ordinal);
}
