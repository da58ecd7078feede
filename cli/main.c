/*
 * main.c - the bubblesim command: dispatch to subcommands, help, version,
 * and the one mapping from library status to exit code.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: bubblesim                      the seed's example: every schedule at P=4, M=8\n"
    "       bubblesim run CONFIG [--set KEY=VALUE]... [--json]\n"
    "                     [--timeline FILE.png|FILE.svg [--messages]] [--trace FILE.json]\n"
    "       bubblesim sweep CONFIG [--out DIR [--partial]] [--jobs N] [--plot] [--max-points N]\n"
    "       bubblesim verify CONFIG [--json] [--tolerance PCT] [--reps N] | verify --probe\n"
    "       bubblesim export CONFIG --format pytorch [-o FILE] [--set KEY=VALUE]...\n"
    "       bubblesim tune CONFIG [--set KEY=VALUE]... [--top N] [--out DIR] [--jobs N]\n"
    "       bubblesim calibrate TRACE.json -o CONFIG\n"
    "       bubblesim compare CONFIG TRACE.json [--json] [--tolerance PCT] [--set KEY=VALUE]...\n"
    "       bubblesim --help | --version\n"
    "\n"
    "run       simulate the pipeline described by the JSON file CONFIG and print a table\n"
    "          (or, with --json, the result object). --set overrides a key by dotted\n"
    "          path, e.g. --set costs.forward=1.5 --set schedule=gpipe --set stages=8.\n"
    "          --timeline draws the run with gnuplot (FILE.gp and FILE.dat beside it;\n"
    "          --messages adds the transfers); --trace writes a Chrome/Perfetto trace.\n"
    "\n"
    "sweep     simulate every combination of the lists in CONFIG's \"sweep\" object\n"
    "          (key path -> values) on N threads (default: all CPUs); CSV on standard\n"
    "          output, or DIR/NAME.csv and DIR/NAME.json with --out; --plot draws the\n"
    "          charts that apply (docs/sweeps.md). Refuses more than --max-points\n"
    "          points (default 1000000).\n"
    "\n"
    "export    write CONFIG's schedule as PyTorch pipelining text (one row per rank);\n"
    "          \"schedule\": \"custom\" with \"order_file\" reads it back (docs/schedules.md).\n"
    "\n"
    "tune      search schedule x P x T x V x micro-batch size for the model in CONFIG\n"
    "          (\"model\", \"hardware\", \"tune\": docs/tune.md); print the fastest that\n"
    "          fit the memory limit and the time-memory Pareto front; --out writes\n"
    "          DIR/tune.csv and the chart DIR/tune.png. Exit 2 when nothing fits.\n"
    "\n"
    "verify    run CONFIG's schedule on a GPU and compare it with the prediction\n"
    "          (docs/validation.md); exit 3 without a usable GPU, 4 outside --tolerance.\n"
    "          --timeline FILE.png draws predicted and measured rows; --dry-run checks\n"
    "          the whole path without a GPU (no measurement).\n"
    "\n"
    "calibrate derive per-chunk costs, message latency and per-op overhead from a\n"
    "          trace of a real run (tools/pytorch/run_schedule.py) and write them with\n"
    "          the executed order and placement as a custom-schedule CONFIG.\n"
    "\n"
    "compare   CONFIG's prediction beside a measured trace: makespan error, busy and\n"
    "          idle per rank, per-op error, the run's own noise; exit 4 outside\n"
    "          --tolerance (percent, default 5).\n"
    "\n"
    "schedules:";

int cli_exit_code(int status)
{
    switch (status) {
    case BS_OK:
        return EXIT_OK;
    case BS_ERR_INVALID:
    case BS_ERR_LIMIT:
    case BS_ERR_IO:
        return EXIT_BAD_INPUT;
    case BS_ERR_DEADLOCK:
        return EXIT_DEADLOCK;
    default:
        return EXIT_FAILURE_OTHER;
    }
}

int cli_report(int rc, const bs_error *err)
{
    fprintf(stderr, "bubblesim: %s\n", err->message);
    return cli_exit_code(rc);
}

int cli_report_file(const char *path, int rc, const bs_error *err)
{
    const char *msg = err->message[0] ? err->message : "out of memory";
    /* Schedule constraints and engine errors come back without the file
     * name; messages about the file itself already start with it. */
    if (rc == BS_ERR_IO || strncmp(msg, path, strlen(path)) == 0)
        fprintf(stderr, "bubblesim: %s\n", msg);
    else
        fprintf(stderr, "bubblesim: %s: %s\n", path, msg);
    return cli_exit_code(rc);
}

int cli_parse_override(char *kv, bs_override *ov)
{
    char *eq = kv ? strchr(kv, '=') : NULL;
    if (!eq || eq == kv)
        return -1;
    *eq = '\0';
    ov->path = kv;
    ov->value = eq + 1;
    return 0;
}

static void print_usage(FILE *out)
{
    fputs(usage, out);
    for (size_t i = 0; i < bs_schedule_count(); i++)
        fprintf(out, "%s %s", i ? "," : "", bs_schedule_at(i)->name);
    fputs("\nexit codes: 0 ok, 2 bad input or usage, 3 deadlock (verify: no usable GPU),\n"
          "4 verify or compare outside its tolerance.\n"
          "docs: docs/config.md (keys), docs/metrics.md (definitions)\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return cli_demo();
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        print_usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("bubblesim %s\n", BS_VERSION);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "run") == 0)
        return cli_run(argc - 2, argv + 2);
    if (strcmp(argv[1], "sweep") == 0)
        return cli_sweep(argc - 2, argv + 2);
    if (strcmp(argv[1], "export") == 0)
        return cli_export(argc - 2, argv + 2);
    if (strcmp(argv[1], "tune") == 0)
        return cli_tune(argc - 2, argv + 2);
    if (strcmp(argv[1], "verify") == 0)
        return cli_verify(argc - 2, argv + 2);
    if (strcmp(argv[1], "calibrate") == 0)
        return cli_calibrate(argc - 2, argv + 2);
    if (strcmp(argv[1], "compare") == 0)
        return cli_compare(argc - 2, argv + 2);
    fprintf(stderr, "bubblesim: unknown command \"%s\"\n", argv[1]);
    print_usage(stderr);
    return EXIT_BAD_INPUT;
}
