/* tools/commands.h: the subcommands of onnx-distill. Each takes the arguments after its name and
 * returns the process exit code (0 ok, 1 runtime failure, 2 bad usage or bad input). Only tools/
 * may call exit(); subcommands return their code to main instead. */
#ifndef OD_TOOLS_COMMANDS_H
#define OD_TOOLS_COMMANDS_H

#include <stdbool.h>

int od_cmd_inspect(int argc, char **argv);
int od_cmd_export(int argc, char **argv);
int od_cmd_train(int argc, char **argv);
int od_cmd_run(int argc, char **argv);
int od_cmd_ops(int argc, char **argv);
int od_cmd_bench(int argc, char **argv);
int od_cmd_eval(int argc, char **argv);
int od_cmd_make_data(int argc, char **argv);

/* Re-executes the program once with OpenBLAS's AVX-512 kernels when its dispatcher fell back to
 * AVX2 on an AVX-512 CPU (tools/blas_tune.c). Returns when nothing needs changing. */
void od_tool_tune_blas(char **argv);

/* Parses a base-10 integer in [lo, hi] (whole string); false otherwise. */
bool od_arg_int(const char *s, long lo, long hi, int *out);

/* Monotonic clock in milliseconds, for timings the commands print. */
double od_now_ms(void);

/* Prints "onnx-distill: <status name>: <message>" to stderr and returns the exit code for err. */
struct od_err;
int od_cmd_fail(const struct od_err *err);

#endif
