/*
 * help.c - the command table and every help text: `bubblesim --help`,
 * `bubblesim help [CMD|config]` and `bubblesim CMD --help`.
 *
 * A command is one row of cli_commands[]: its name, its entry point and its
 * help (synopsis, one-line summary, the text). The global help is built
 * from the same rows, so it cannot leave out a command or an option that
 * the command's own help gives. tests/cli_help.sh checks that every option
 * a command's source parses appears in its help.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static int cli_demo_command(int argc, char **argv)
{
    if (argc > 0) {
        fprintf(stderr, "bubblesim: demo: takes no arguments, got \"%s\"\n", argv[0]);
        return EXIT_BAD_INPUT;
    }
    return cli_demo();
}

static int cli_help_command(int argc, char **argv);

static const cli_command cli_commands[] = {
    {"run", cli_run,
     "run CONFIG [--set KEY=VALUE]... [--json] [--timeline FILE.png|FILE.svg [--messages] "
     "[--memory] [--window START:END]] [--trace FILE.json]",
     "simulate one config; a table, or the result as JSON",
     "Simulates the pipeline described by the JSON file CONFIG (docs/config.md;\n"
     "`bubblesim help config` lists every key) and prints a table of its metrics\n"
     "(docs/metrics.md). Sections other commands read (\"sweep\", \"tune\", \"gpu\")\n"
     "are checked and otherwise ignored.\n"
     "\n"
     "  --set KEY=VALUE     override a key by dotted path; VALUE is JSON, or a\n"
     "                      string: --set schedule=gpipe --set costs.forward=1.5\n"
     "  --json              print the result object (docs/metrics.md) instead\n"
     "  --timeline FILE     draw the run with gnuplot into FILE.png or FILE.svg,\n"
     "                      FILE.dat, FILE.gp and FILE.sh (redraws) beside it\n"
     "                      (docs/timelines.md)\n"
     "  --messages          with --timeline: draw the transfers too\n"
     "  --memory            with --timeline: a live-activation line per device\n"
     "  --window START:END  with --timeline: only that span of the run, in ms\n"
     "  --trace FILE.json   write a Chrome/Perfetto trace (docs/timelines.md)\n"},
    {"sweep", cli_sweep,
     "sweep CONFIG [--set KEY=VALUE]... [--out DIR [--partial]] [--jobs N] [--plot] [--max-points "
     "N]",
     "simulate every point of CONFIG's \"sweep\"; CSV, JSON and charts",
     "Simulates every combination of the lists in CONFIG's \"sweep\" object (key\n"
     "path -> values; docs/sweeps.md) and prints one CSV row per point, or writes\n"
     "DIR/NAME.csv and DIR/NAME.json (NAME: CONFIG's file name without .json).\n"
     "\"cases\": [{KEY: VALUE, ...}, ...] adds points given one by one (their keys\n"
     "vary together), crossed with the lists; \"baseline\": {KEY: VALUE, ...} adds a\n"
     "speedup column: the baseline point's iteration time over each point's.\n"
     "A point the config or schedule refuses becomes a row with the reason; the\n"
     "base config is checked once first, and a sweep whose every point is refused\n"
     "writes nothing (both exit 2).\n"
     "\n"
     "  --set KEY=VALUE     override a key of the base config (not a swept one)\n"
     "  --out DIR           write DIR/NAME.csv and DIR/NAME.json\n"
     "  --partial           with --out: an interrupted sweep writes the finished\n"
     "                      points to DIR/NAME.partial.csv\n"
     "  --jobs N            worker threads, 1 to 256 (default: every online CPU)\n"
     "  --plot              with --out: draw the charts the swept keys allow\n"
     "  --max-points N      refuse a sweep of more than N points (default 1000000)\n"
     "  --shard K/N         with --out: simulate only the K-th of N equal parts of the\n"
     "                      points (K from 1 to N) into DIR/NAME.shard-K-of-N;\n"
     "                      `bubblesim merge` joins them\n"},
    {"merge", cli_merge, "merge DIR... --out DIR [--plot]",
     "join the shards of a sweep run with --shard K/N",
     "Joins the shard files (NAME.shard-K-of-N) that `bubblesim sweep CONFIG --out\n"
     "DIR --shard K/N` wrote into the directories DIR... and writes DIR/NAME.csv and\n"
     "DIR/NAME.json, byte for byte what the unsharded sweep writes (docs/sweeps.md).\n"
     "Refuses (exit 2) shards of different sweeps or splits, a shard given twice,\n"
     "and a missing shard, naming them.\n"
     "\n"
     "  --out DIR           where the merged files go\n"
     "  --plot              draw the charts the swept keys allow, as sweep --plot\n"},
    {"export", cli_export, CLI_SYNOPSIS_EXPORT,
     "write CONFIG's schedule as PyTorch pipelining text",
     "Writes the op order of CONFIG's schedule in PyTorch pipelining's text\n"
     "format, one row per rank; \"schedule\": \"custom\" with \"order_file\" reads it\n"
     "back (docs/schedules.md).\n"
     "\n"
     "  --format pytorch    compute actions only (the default), what PyTorch 2.15's\n"
     "                      _load_csv reads in its compute_only format\n"
     "  --format pytorch-comms\n"
     "                      with the send, receive and wait actions: its\n"
     "                      compute_comms format\n"
     "  -o FILE             write FILE, whole or not at all (default: standard output)\n"
     "  --set KEY=VALUE     override a config key, as for run\n"},
    {"tune", cli_tune,
     "tune CONFIG [--set KEY=VALUE]... [--top N] [--out DIR] [--jobs N] [--no-prune]",
     "the fastest schedule, D, P, T, V, micro-batch size and ZeRO stage that fit memory",
     "Searches schedule x D x P x T x V x micro-batch size x ZeRO stage (x\n"
     "recomputation) for the model in CONFIG\n"
     "(\"model\", \"hardware\", \"tune\": docs/model.md, docs/tune.md) and prints the\n"
     "fastest candidates that fit the memory limit and the time-memory Pareto\n"
     "front. Exit 2 when nothing fits.\n"
     "\n"
     "  --set KEY=VALUE     override a config key, also tune.* keys\n"
     "  --top N             how many of the fastest to print, 1 to 100000 (default 10)\n"
     "  --out DIR           write DIR/tune.csv (every candidate) and the chart\n"
     "                      DIR/tune.png (tune.gp, tune.dat)\n"
     "  --jobs N            simulation threads, 1 to 256 (default: every online CPU);\n"
     "                      the result does not depend on N\n"
     "  --no-prune          simulate every candidate the schedules accept\n"},
    {"verify", cli_verify,
     "verify CONFIG [--json] [--tolerance PCT] [--reps N] [--warmup N] [--streams] [--set "
     "KEY=VALUE]... [--measured FILE] [--predicted FILE] [--timeline FILE.png|FILE.svg] "
     "[--dry-run] | verify --probe [--json]",
     "run CONFIG's schedule on a GPU and compare it with the prediction",
     "Runs CONFIG's schedule on a GPU (CUDA builds) and sets the measurement\n"
     "beside the prediction (docs/validation.md). Exit 3 without a usable GPU,\n"
     "4 outside the tolerance.\n"
     "\n"
     "  --json              print the comparison as JSON\n"
     "  --tolerance PCT     makespan error bar in %, (0, 1000] (gpu.tolerance)\n"
     "  --reps N            measured repetitions, at least 1 (gpu.reps)\n"
     "  --warmup N          unmeasured repetitions first (gpu.warmup)\n"
     "  --streams           plain streams rather than green contexts (gpu.mode)\n"
     "  --set KEY=VALUE     override a config key; gpu.KEY sets the gpu section\n"
     "  --measured FILE     write the measured result (run --json form, or a\n"
     "                      Perfetto trace when FILE ends in .trace.json)\n"
     "  --predicted FILE    the same for the prediction\n"
     "  --timeline FILE     predicted and measured rows per device, FILE.png|.svg\n"
     "  --dry-run           no GPU: the GPU plan under ideal stream semantics,\n"
     "                      to check the whole path (never a measurement)\n"
     "  --probe             print the GPU, driver, SM count and timer step\n"},
    {"calibrate", cli_calibrate, CLI_SYNOPSIS_CALIBRATE,
     "costs, latency and overhead from a trace of a real run, as a config",
     "Reads a trace of a real pipeline run (tools/pytorch/run_schedule.py; format\n"
     "in docs/validation.md, \"PyTorch runtime\") and writes a config that `run`\n"
     "and `compare` accept: schedule custom with the executed order and the\n"
     "placement, per-chunk F, B or I and W, the message latency, and the\n"
     "runtime's per-op overhead folded into the op costs. Prints what it derived.\n"
     "\n"
     "  -o, --out CONFIG    write the config, whole or not at all\n"},
    {"compare", cli_compare, CLI_SYNOPSIS_COMPARE,
     "CONFIG's prediction beside a measured trace; exit 4 outside tolerance",
     "Simulates CONFIG (one iteration, the traced ops) and sets it beside a\n"
     "trace of a real run (docs/validation.md, \"PyTorch runtime\"): makespan\n"
     "with makespan_error against the median step, the error per step (median,\n"
     "worst), the run's own noise, busy and idle per rank, the error per op.\n"
     "With --noise, also the prediction sampled under the op-to-op variation\n"
     "of NOISE.json (a trace of the same run, e.g. the one CONFIG was\n"
     "calibrated from): its median and 10th..90th percentiles over N engine\n"
     "runs. Exit 4 when the judged error (the sampled one with --noise, else\n"
     "makespan_error) is over the tolerance.\n"
     "\n"
     "  --json              print the comparison as JSON (every op included)\n"
     "  --tolerance PCT     makespan error bar in %, (0, 1000] (default 5)\n"
     "  --noise NOISE.json  sample the prediction under this trace's variation\n"
     "  --samples N         engine runs for it, 1..100000 (default 2000)\n"
     "  --seed S            seed of its draws, 0..2^64-1 (default 1)\n"
     "  --set KEY=VALUE     override a config key, as for run\n"},
    {"demo", cli_demo_command, "demo", "the seed's example: every schedule at P=4, M=8",
     "Runs the seed's example (P=4, M=8, forward 1 ms, backward 2 ms) under every\n"
     "built-in schedule and sets the metrics beside the closed forms. The same\n"
     "as `bubblesim` with no arguments. Takes no options.\n"},
    {"help", cli_help_command, "help [COMMAND | config]",
     "this help; one command's; or every config key",
     "`bubblesim help` prints the overview, `bubblesim help COMMAND` (the same as\n"
     "`bubblesim COMMAND --help`) one command's options, and `bubblesim help\n"
     "config` every config key with its type, range and meaning.\n"},
};

#define N_COMMANDS (sizeof cli_commands / sizeof cli_commands[0])

const cli_command *cli_command_find(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(cli_commands[i].name, name) == 0)
            return &cli_commands[i];
    return NULL;
}

/* Prints "  bubblesim SYNOPSIS", wrapped before an option at 78 columns. */
static void print_synopsis(FILE *out, const char *synopsis)
{
    int col = fprintf(out, "  bubblesim ");
    const char *p = synopsis;
    while (*p) {
        /* A word runs to the next " [" or " |" boundary (one option). */
        const char *end = p + 1;
        while (*end && !(end[0] == ' ' && (end[1] == '[' || end[1] == '|')))
            end++;
        int len = (int)(end - p);
        if (col + len > 78 && col > 20) {
            fputs("\n             ", out);
            col = 13;
            if (*p == ' ') {
                p++;
                len--;
            }
        }
        col += fprintf(out, "%.*s", len, p);
        p = end;
    }
    fputc('\n', out);
}

void cli_print_usage(FILE *out)
{
    fputs("bubblesim " BS_VERSION ": pipeline-parallel schedules, simulated\n\nusage:\n"
          "  bubblesim                 the seed's example (the same as bubblesim demo)\n",
          out);
    for (size_t i = 0; i < N_COMMANDS; i++)
        print_synopsis(out, cli_commands[i].synopsis);
    fputs("  bubblesim --help | --version\n\ncommands:\n", out);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-8s %s\n", cli_commands[i].name, cli_commands[i].summary);
    fputs("\n`bubblesim COMMAND --help` or `bubblesim help COMMAND` explains every\n"
          "option; `bubblesim help config` lists every config key.\n\nschedules:",
          out);
    for (size_t i = 0; i < bs_schedule_count(); i++)
        fprintf(out, "%s %s", i ? "," : "", bs_schedule_at(i)->name);
    fputs("\nexit codes: 0 ok, 1 out of memory or internal error, 2 bad input or usage,\n"
          "3 deadlock (verify: no usable GPU), 4 verify or compare outside its tolerance.\n"
          "docs: docs/config.md (keys), docs/metrics.md (definitions), docs/README.md\n",
          out);
}

int cli_command_help(const cli_command *cmd, FILE *out)
{
    fputs("usage:\n", out);
    print_synopsis(out, cmd->synopsis);
    fprintf(out, "\n%s", cmd->help);
    return ferror(out) ? EXIT_FAILURE_OTHER : EXIT_OK;
}

/* `bubblesim help config`: every key the library's schema tables accept. */
static int print_config_keys(FILE *out)
{
    bs_config_key k;
    const char *section = "";
    fputs("config keys (docs/config.md, docs/model.md, docs/tune.md); a dotted path is\n"
          "also what --set takes:\n",
          out);
    for (size_t i = 0; i < bs_config_key_count(); i++) {
        if (bs_config_key_at(i, &k) != BS_OK)
            continue;
        if (strcmp(section, k.doc) != 0) {
            section = k.doc;
            fprintf(out, "\n%s:\n", section);
        }
        fprintf(out, "  %-34s %s; %s\n  %-34s %s\n", k.path, k.type, k.range, "", k.description);
    }
    /* The sections the commands themselves read (their keys are checked by
     * those commands, and by run). */
    static const struct {
        const char *path, *type, *description;
    } sections[] = {
        {"sweep", "object", "sweep: key path -> list of values, crossed (docs/sweeps.md)"},
        {"sweep.cases", "array of objects", "sweep: points one by one, each key path -> value"},
        {"sweep.baseline", "object", "sweep: swept key -> value; adds the speedup column"},
        {"tune", "object", "tune: devices, global_batch, memory_limit, the values to search"},
        {"gpu", "object", "verify: the GPU check's settings (docs/validation.md)"},
    };
    fputs("\nsections other commands read (run checks and ignores them):\n", out);
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
        fprintf(out, "  %-34s %s\n  %-34s %s\n", sections[i].path, sections[i].type, "",
                sections[i].description);
    return ferror(out) ? EXIT_FAILURE_OTHER : EXIT_OK;
}

static int cli_help_command(int argc, char **argv)
{
    if (argc == 0) {
        cli_print_usage(stdout);
        return EXIT_OK;
    }
    if (argc > 1) {
        fprintf(stderr, "bubblesim: help: one topic expected, got \"%s\" and \"%s\"\n", argv[0],
                argv[1]);
        return EXIT_BAD_INPUT;
    }
    if (strcmp(argv[0], "config") == 0 || strcmp(argv[0], "keys") == 0)
        return print_config_keys(stdout);
    const cli_command *cmd = cli_command_find(argv[0]);
    if (!cmd) {
        fprintf(stderr, "bubblesim: help: unknown topic \"%s\"; expected config or one of",
                argv[0]);
        for (size_t i = 0; i < N_COMMANDS; i++)
            fprintf(stderr, "%s %s", i ? "," : "", cli_commands[i].name);
        fputc('\n', stderr);
        return EXIT_BAD_INPUT;
    }
    return cli_command_help(cmd, stdout);
}
