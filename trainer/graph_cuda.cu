/* trainer/graph_cuda.cu: capturing a training step's work as a CUDA graph and replaying it (see
 * trainer/train_cuda.h, struct od_cuda_graph).
 *
 * A step whose shapes are fixed enqueues the same kernels with the same arguments every time, so
 * trainer/step_device.c records it once (cudaStreamBeginCapture in thread-local mode on the
 * device's stream, then the step's normal code, then cudaStreamEndCapture and
 * cudaGraphInstantiate) and later runs it with one cudaGraphLaunch: the host no longer pays a
 * launch per kernel (hundreds per step for a detector). Per-step numbers reach the graph through
 * device memory written before the launch (trainer/optim_cuda.cu, struct od_cuda_step).
 *
 * The graph bakes in every device pointer its kernels were given. The device's workspace
 * (od_cuda_workspace) is the one such pointer the trainer does not own, and it moves when some
 * later call needs a bigger one: the graph remembers it (od_cuda_graph_current). The rest (the
 * programs' arenas and node state, the trainer's buffers) the caller checks.
 *
 * Built with nvcc into odcore, and as C++ into odcore_emu, where the emulation records and replays
 * the same calls (ops/cuda/emu.h, "Stream capture"). */
#include <stdlib.h>

#include "ops/cuda/common.cuh"

extern "C" {
#include "trainer/train_cuda.h"
}

struct od_cuda_graph {
  struct od_device *dev;
  cudaGraphExec_t exec;
  void *workspace; /* od_cuda_workspace's buffer when captured */
  size_t nodes;
};

extern "C" enum od_status od_cuda_capture_begin(struct od_device *dev, struct od_err *err) {
  if (!dev || dev->kind != OD_DEVICE_CUDA) return od_err_set(err, OD_ERR_INVALID_ARG, "graph capture needs a CUDA device");
  (void)cudaGetLastError(); /* a stale error would be taken for one of the capture */
  OD_CUDA_TRY(err, cudaStreamBeginCapture(od_cuda_stream(dev), cudaStreamCaptureModeThreadLocal));
  return OD_OK;
}

extern "C" enum od_status od_cuda_capture_end(struct od_device *dev, bool ok, struct od_cuda_graph **out,
                                              struct od_err *err) {
  *out = NULL;
  cudaGraph_t graph = NULL;
  cudaError_t e = cudaStreamEndCapture(od_cuda_stream(dev), &graph);
  if (e != cudaSuccess || !ok) {
    if (graph) (void)cudaGraphDestroy(graph);
    (void)cudaGetLastError();
    if (ok) return od_err_set(err, OD_ERR_CUDA, "%s: the capture failed: %s", dev->name, cudaGetErrorString(e));
    return OD_OK;
  }
  struct od_cuda_graph *g = (struct od_cuda_graph *)calloc(1, sizeof *g);
  if (!g) {
    (void)cudaGraphDestroy(graph);
    return od_err_set(err, OD_ERR_OOM, "out of memory");
  }
  g->dev = dev;
  if ((e = cudaGraphGetNodes(graph, NULL, &g->nodes)) == cudaSuccess)
    e = cudaGraphInstantiate(&g->exec, graph, 0);
  (void)cudaGraphDestroy(graph); /* the executable graph does not need it */
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    free(g);
    return od_err_set(err, OD_ERR_CUDA, "%s: cudaGraphInstantiate: %s", dev->name, cudaGetErrorString(e));
  }
  enum od_status st = od_cuda_workspace(dev, 0, &g->workspace, err); /* the current one (allocated if none yet) */
  if (st != OD_OK) {
    od_cuda_graph_destroy(g);
    return st;
  }
  *out = g;
  return OD_OK;
}

extern "C" enum od_status od_cuda_graph_launch(struct od_cuda_graph *g, struct od_err *err) {
  cudaError_t e = cudaGraphLaunch(g->exec, od_cuda_stream(g->dev));
  if (e == cudaSuccess) return OD_OK;
  (void)cudaGetLastError(); /* nothing was enqueued: the caller may run the work without the graph */
  return od_err_set(err, OD_ERR_CUDA, "%s: cudaGraphLaunch: %s", g->dev->name, cudaGetErrorString(e));
}

extern "C" bool od_cuda_graph_current(const struct od_cuda_graph *g) {
  void *ws = NULL;
  struct od_err err = {};
  return od_cuda_workspace(g->dev, 0, &ws, &err) == OD_OK && ws == g->workspace;
}

extern "C" size_t od_cuda_graph_size(const struct od_cuda_graph *g) { return g ? g->nodes : 0; }

extern "C" void od_cuda_graph_destroy(struct od_cuda_graph *g) {
  if (!g) return;
  if (g->exec) (void)cudaGraphExecDestroy(g->exec);
  free(g);
}
