/* tools/commands.h: the subcommands of onnx-distill. Each takes the arguments after its name and
 * returns the process exit code (0 ok, 1 runtime failure, 2 bad usage or bad input). Only tools/
 * may call exit(); subcommands return their code to main instead. */
#ifndef OD_TOOLS_COMMANDS_H
#define OD_TOOLS_COMMANDS_H

int od_cmd_inspect(int argc, char **argv);
int od_cmd_export(int argc, char **argv);
int od_cmd_train(int argc, char **argv);
int od_cmd_run(int argc, char **argv);
int od_cmd_ops(int argc, char **argv);
int od_cmd_bench(int argc, char **argv);
int od_cmd_eval(int argc, char **argv);
int od_cmd_make_data(int argc, char **argv);

/* Prints "onnx-distill: <status name>: <message>" to stderr and returns the exit code for err. */
struct od_err;
int od_cmd_fail(const struct od_err *err);

#endif
