/*
 * run.c - `bubblesim run CONFIG [--set KEY=VALUE]... [--json]
 *          [--timeline FILE.png|FILE.svg [--messages] [--memory]
 *          [--window START:END]] [--trace FILE.json]`.
 *
 * The trace and the timeline's files are one output set (outfile.h): they
 * appear together or not at all. Nothing touches the file system before the
 * config has been read and simulated: a refused run creates no directory.
 */
#include "cli.h"
#include "outfile.h"
#include "sweep.h"
#include "timeline.h"
#include "tune.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The trace into the output set's file; a failure names the file. */
static int write_trace(FILE *f, const char *path, const bs_result *res, const bs_config *cfg,
                       bs_error *err)
{
    int rc = bs_writer_find("trace")->write(f, res, cfg, err);
    if (rc) {
        bs_error why = *err;
        cli_fail(err, rc, "%s: %s", path, why.message);
    }
    return rc;
}

/* Reads CONFIG for `run`: the sections other commands read ("gpu" for
 * verify, "sweep", "tune") are checked as those commands check them and
 * then left out; the rest is parsed with the overrides. Returns the exit
 * code, having printed what was wrong. */
static int load_run_config(bs_config *cfg, const char *path, const bs_override *ov, size_t n_ov)
{
    char *text = NULL, *with_sweep = NULL, *rest = NULL;
    cJSON *root = NULL, *gpu = NULL, *sweep = NULL;
    bs_error err = {{0}};
    int code = EXIT_OK, rc = bs_read_text_file(path, &text, &err);
    if (rc)
        return cli_report(rc, &err);
    /* Only a text that names a section is parsed twice. */
    if ((strstr(text, "\"gpu\"") || strstr(text, "\"sweep\"") || strstr(text, "\"tune\"")) &&
        (root = cJSON_Parse(text)) && cJSON_IsObject(root)) {
        if ((gpu = cJSON_DetachItemFromObjectCaseSensitive(root, "gpu")) &&
            (code = cli_verify_check_gpu(gpu, path)))
            goto done;
        if (!(with_sweep = cJSON_PrintUnformatted(root))) {
            rc = BS_ERR_NOMEM;
            goto failed;
        }
        sweep = cJSON_DetachItemFromObjectCaseSensitive(root, "sweep");
        if (!(rest = cJSON_PrintUnformatted(root))) {
            rc = BS_ERR_NOMEM;
            goto failed;
        }
        if (sweep && (rc = sweep_check_section(with_sweep, path, &err)))
            goto failed;
        if (cJSON_GetObjectItemCaseSensitive(root, "tune") &&
            (rc = bs_tune_check(rest, path, ov, n_ov, &err)))
            goto failed;
    }
    /* Syntax errors and non-objects: the core parser reports them with line
     * and column, so it gets the original text. */
    if ((rc = bs_config_parse(cfg, rest ? rest : text, path, ov, n_ov, &err)))
        goto failed;
    goto done;
failed:
    if (rc == BS_ERR_NOMEM && !err.message[0])
        snprintf(err.message, sizeof err.message, "out of memory");
    code = cli_report_file(path, rc, &err);
done:
    cJSON_Delete(root);
    cJSON_Delete(gpu);
    cJSON_Delete(sweep);
    cJSON_free(with_sweep);
    cJSON_free(rest);
    bs_text_free(text);
    return code;
}

int cli_run(int argc, char **argv)
{
    const char *path = NULL, *format = "table";
    const char *timeline_path = NULL, *trace_path = NULL;
    cli_timeline_options tl_opt = {0};
    cli_outset set;
    bs_override *overrides = calloc((size_t)argc + 1, sizeof *overrides);
    size_t n_overrides = 0;
    bs_config cfg;
    bs_context *ctx = NULL;
    bs_error err = {{0}};
    int rc = BS_OK, code = EXIT_OK;
    bs_config_init(&cfg);
    cli_outset_init(&set);
    if (!overrides) {
        fprintf(stderr, "bubblesim: out of memory\n");
        return EXIT_FAILURE_OTHER;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        char *kv = NULL;
        if (strcmp(a, "--json") == 0) {
            format = "json";
        } else if (strcmp(a, "--timeline") == 0 || strcmp(a, "--trace") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "bubblesim: run: %s needs a FILE\n", a);
                code = EXIT_BAD_INPUT;
                goto done;
            }
            *(strcmp(a, "--trace") == 0 ? &trace_path : &timeline_path) = argv[++i];
        } else if (strcmp(a, "--messages") == 0) {
            tl_opt.with_messages = 1;
        } else if (strcmp(a, "--memory") == 0) {
            tl_opt.with_memory = 1;
        } else if (strcmp(a, "--window") == 0 || strncmp(a, "--window=", 9) == 0) {
            const char *w = a[8] == '=' ? a + 9 : i + 1 < argc ? argv[++i] : NULL;
            if (!w || cli_timeline_parse_window(w, &tl_opt)) {
                fprintf(stderr,
                        "bubblesim: run: --window %s: expected START:END in ms, 0 <= START < "
                        "END\n",
                        w ? w : "(missing)");
                code = EXIT_BAD_INPUT;
                goto done;
            }
        } else if (strcmp(a, "--set") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "bubblesim: run: --set needs KEY=VALUE\n");
                code = EXIT_BAD_INPUT;
                goto done;
            }
            kv = argv[++i];
        } else if (strncmp(a, "--set=", 6) == 0) {
            kv = argv[i] + 6;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "bubblesim: run: unknown option \"%s\" (see bubblesim --help)\n", a);
            code = EXIT_BAD_INPUT;
            goto done;
        } else if (!path) {
            path = a;
        } else {
            fprintf(stderr, "bubblesim: run: one CONFIG expected, got \"%s\" and \"%s\"\n", path,
                    a);
            code = EXIT_BAD_INPUT;
            goto done;
        }
        if (kv && cli_parse_override(kv, &overrides[n_overrides++])) {
            fprintf(stderr, "bubblesim: run: --set %s: expected KEY=VALUE\n", kv);
            code = EXIT_BAD_INPUT;
            goto done;
        }
    }
    if (!path) {
        fprintf(stderr, "bubblesim: run: missing CONFIG (a JSON file; see bubblesim --help)\n");
        code = EXIT_BAD_INPUT;
        goto done;
    }
    if (!timeline_path && (tl_opt.with_memory || tl_opt.windowed || tl_opt.with_messages)) {
        fprintf(stderr, "bubblesim: run: --messages, --memory and --window draw into the "
                        "--timeline picture; add --timeline FILE.png\n");
        code = EXIT_BAD_INPUT;
        goto done;
    }
    /* Unwritable outputs fail before any simulation, checked without
     * creating anything (the directories are made once the run is good). */
    if ((timeline_path && (rc = cli_timeline_check_name(timeline_path, &err))) ||
        (timeline_path && (rc = cli_check_file_dir(timeline_path, &err))) ||
        (trace_path && (rc = cli_check_file_dir(trace_path, &err)))) {
        code = cli_report(rc, &err);
        goto done;
    }
    if (timeline_path || trace_path)
        cli_install_interrupt_cleanup();
    const bs_result *res;
    bs_run_options opts = {.record_messages = trace_path || tl_opt.with_messages};
    if ((code = load_run_config(&cfg, path, overrides, n_overrides)))
        goto done;
    if ((rc = bs_context_create(&ctx)) || (rc = bs_context_run(ctx, &cfg, &opts, &res, &err))) {
        code = cli_report_file(path, rc, &err);
        goto done;
    }
    rc = bs_writer_find(format)->write(stdout, res, &cfg, &err);
    if (rc || fflush(stdout) != 0) {
        fprintf(stderr, "bubblesim: cannot write to standard output\n");
        code = EXIT_FAILURE_OTHER;
    }
    if (code == EXIT_OK && (trace_path || timeline_path)) {
        FILE *trace = NULL;
        if ((timeline_path && (rc = cli_timeline_check(timeline_path, res, &tl_opt, &err))) ||
            (timeline_path && (rc = cli_prepare_file_dir(timeline_path, &err))) ||
            (trace_path && (rc = cli_prepare_file_dir(trace_path, &err))) ||
            (trace_path && (rc = cli_outset_add(&set, trace_path, &trace, &err)) < 0) ||
            (trace && (rc = write_trace(trace, trace_path, res, &cfg, &err))) ||
            (timeline_path &&
             (rc = cli_timeline_stage(&set, timeline_path, res, &cfg, &tl_opt, &err))) ||
            (rc = cli_outset_commit(&set, &err)))
            code = cli_report(rc, &err);
        else if (set.gnuplot_missing)
            code = cli_chart_missing_report(&set);
    }
done:
    cli_outset_abort(&set);
    bs_context_free(&ctx);
    bs_config_free(&cfg);
    free(overrides);
    return code;
}
