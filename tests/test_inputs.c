/*
 * test_inputs.c - hostile and unlucky inputs, one class at a time
 * (docs/reliability.md lists the guarantees): files that are not regular
 * files, inputs large enough to expose a quadratic path, derived times that
 * overflow, silently dropped order rows, NUL characters inside strings and
 * keys, messages that must say what is wrong, and "did you mean".
 *
 * Every case asserts the status and the words of the message; the large
 * inputs also assert the answer, and would time the test out if a path
 * turned quadratic again (measured figures: docs/reliability.md).
 */
#define _POSIX_C_SOURCE 200809L
#include "bubblesim.h"
#include "check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static char dir[] = "/tmp/bs-inputs-XXXXXX";

static int parse(const char *text, const bs_override *ov, size_t n, bs_error *err)
{
    bs_config cfg;
    bs_config_init(&cfg);
    int rc = bs_config_parse(&cfg, text, "t.json", ov, n, err);
    bs_config_free(&cfg);
    return rc;
}

/* The parse fails with code and a message holding every needle given. */
static void expect(const char *text, const bs_override *ov, size_t n, int code, const char *needle,
                   const char *needle2)
{
    bs_error err = {{0}};
    int rc = parse(text, ov, n, &err);
    CHECK_MSG(rc == code && strstr(err.message, needle) &&
                  (!needle2 || strstr(err.message, needle2)),
              "%.200s\n  rc %d (want %d), message \"%s\", want \"%s\"%s%s", text, rc, code,
              err.message, needle, needle2 ? " and " : "", needle2 ? needle2 : "");
}

static void expect_ok(const char *text, const bs_override *ov, size_t n)
{
    bs_error err = {{0}};
    int rc = parse(text, ov, n, &err);
    CHECK_MSG(rc == BS_OK, "%.200s\n  rc %d, message \"%s\"", text, rc, err.message);
}

static void expect_set(const char *path, const char *value, const char *needle, const char *needle2)
{
    bs_override ov = {path, value};
    expect("{}", &ov, 1, BS_ERR_INVALID, needle, needle2);
}

/* ------------------------------------------ files that are not files */

static void expect_unreadable(const char *path, const char *kind)
{
    char *text = NULL;
    bs_error err = {{0}};
    int rc = bs_read_text_file(path, &text, &err);
    CHECK_MSG(rc == BS_ERR_INVALID && text == NULL && strstr(err.message, path) &&
                  strstr(err.message, kind) && strstr(err.message, "expected a regular file"),
              "%s: rc %d, message \"%s\"", path, rc, err.message);
    /* The config loader and an order_file go through the same reader. */
    bs_config cfg;
    bs_config_init(&cfg);
    CHECK(bs_config_load(&cfg, path, NULL, 0, &err) == BS_ERR_INVALID && strstr(err.message, kind));
    char config[512];
    snprintf(config, sizeof config,
             "{\"schedule\": \"custom\", \"stages\": 1, \"order_file\": \"%s\"}", path);
    expect(config, NULL, 0, BS_ERR_INVALID, "t.json: order_file: ", kind);
    bs_config_free(&cfg);
}

static void not_regular_files(void)
{
    char fifo[64], sock[64], sub[64];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    snprintf(sock, sizeof sock, "%s/sock", dir);
    snprintf(sub, sizeof sub, "%s/sub", dir);
    /* A FIFO with no writer: opening it for reading would wait forever. */
    CHECK(mkfifo(fifo, 0600) == 0);
    expect_unreadable(fifo, "a FIFO");
    CHECK(mkdir(sub, 0700) == 0);
    expect_unreadable(sub, "a directory");
    expect_unreadable("/dev/null", "a character device");
    expect_unreadable("/dev/zero", "a character device"); /* would never end */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0) {
        char *text = NULL;
        bs_error err = {{0}};
        /* open() of a socket fails (ENXIO): refused, named, no hang. */
        CHECK(bs_read_text_file(sock, &text, &err) != BS_OK && strstr(err.message, sock));
    }
    if (fd >= 0)
        close(fd);
    unlink(sock);
    unlink(fifo);
    rmdir(sub);

    /* A missing order_file names the config, the key and the file. */
    expect("{\"schedule\": \"custom\", \"stages\": 1, \"order_file\": \"no-such.txt\"}", NULL, 0,
           BS_ERR_IO, "t.json: order_file: no-such.txt: cannot open", NULL);

    /* A regular file still reads; "-" is a file name, not standard input. */
    char path[64], *text = NULL;
    bs_error err = {{0}};
    snprintf(path, sizeof path, "%s/-", dir);
    FILE *f = fopen(path, "w");
    CHECK(f && fputs("{\"stages\": 2}", f) >= 0 && fclose(f) == 0);
    CHECK(bs_read_text_file(path, &text, &err) == BS_OK && strcmp(text, "{\"stages\": 2}") == 0);
    bs_text_free(text);
    unlink(path);
}

/* ------------------------------------------------ linear in the input */

static void large_inputs(void)
{
    enum { KEYS = 200000 };
    size_t cap = (size_t)KEYS * 24 + (2u << 20), n = 0;
    char *text = malloc(cap);
    CHECK(text != NULL);
    if (!text)
        return;
    /* 200,000 distinct unknown keys (took 56 s with the pairwise duplicate
     * check): refused at once by the per-object limit, at any depth. */
    n += (size_t)snprintf(text + n, cap - n, "{");
    for (int i = 0; i < KEYS; i++)
        n += (size_t)snprintf(text + n, cap - n, "%s\"k%d\": 1", i ? ", " : "", i);
    snprintf(text + n, cap - n, "}");
    expect(text, NULL, 0, BS_ERR_LIMIT,
           "t.json: config: the top-level object: an object with "
           "200000 keys; at most 10000",
           NULL);
    n = (size_t)snprintf(text, cap, "{\"costs\": {");
    for (int i = 0; i < 10001; i++)
        n += (size_t)snprintf(text + n, cap - n, "%s\"k%d\": 1", i ? ", " : "", i);
    snprintf(text + n, cap - n, "}}");
    expect(text, NULL, 0, BS_ERR_LIMIT, "t.json: config: costs: an object with 10001 keys", NULL);
    bs_override big = {"costs", text + 10};
    text[n + 1] = '\0'; /* the inner object alone */
    expect("{}", &big, 1, BS_ERR_LIMIT, "--set costs: value: the value: an object with 10001 keys",
           NULL);
    /* 10,000 keys, the limit: the n log n duplicate check names the first
     * duplicate in file order, not the alphabetically first. */
    n = (size_t)snprintf(text, cap, "{");
    for (int i = 0; i < 9997; i++)
        n += (size_t)snprintf(text + n, cap - n, "%s\"k%d\": 1", i ? ", " : "", i);
    snprintf(text + n, cap - n, "}");
    expect(text, NULL, 0, BS_ERR_INVALID, "t.json: k0: unknown key", NULL);
    snprintf(text + n, cap - n, ", \"k9\": 2, \"k1234\": 2, \"k1234\": 3}");
    expect(text, NULL, 0, BS_ERR_INVALID, "t.json: k9: key appears more than once", NULL);
    /* Duplicates inside a section and in the model's sections. */
    expect("{\"costs\": {\"forward\": 1, \"weight\": 0, \"forward\": 2}}", NULL, 0, BS_ERR_INVALID,
           "costs.forward: key appears more than once", NULL);
    expect("{\"model\": {\"layers\": 8, \"hidden\": 64, \"layers\": 9}}", NULL, 0, BS_ERR_INVALID,
           "model.layers: key appears more than once", NULL);

    /* A long inline order: one device, 100,000 micro-batches. */
    enum { MB = 100000 };
    n = 0;
    n += (size_t)snprintf(text + n, cap - n,
                          "{\"schedule\": \"custom\", \"stages\": 1, \"microbatches\": %d, "
                          "\"order\": [[",
                          MB);
    for (int i = 0; i < MB; i++)
        n += (size_t)snprintf(text + n, cap - n, "%s\"0F%d\", \"0B%d\"", i ? ", " : "", i, i);
    snprintf(text + n, cap - n, "]]}");
    bs_config cfg;
    bs_error err = {{0}};
    bs_config_init(&cfg);
    CHECK_MSG(bs_config_parse(&cfg, text, "t.json", NULL, 0, &err) == BS_OK, "%s", err.message);
    bs_context *ctx = NULL;
    const bs_result *res = NULL;
    CHECK(bs_context_create(&ctx) == BS_OK);
    CHECK_MSG(bs_context_run(ctx, &cfg, NULL, &res, &err) == BS_OK, "%s", err.message);
    CHECK(res && res->makespan == 3.0 * MB); /* forward 1 + backward 2, back to back */
    bs_context_free(&ctx);
    bs_config_free(&cfg);

    /* Many --set: 20,000 overrides of one key, the last one wins. */
    enum { SETS = 20000 };
    bs_override *ov = malloc(SETS * sizeof *ov);
    char(*values)[16] = malloc(SETS * sizeof *values);
    CHECK(ov && values);
    if (ov && values) {
        for (int i = 0; i < SETS; i++) {
            snprintf(values[i], sizeof values[i], "%d", i + 1);
            ov[i] = (bs_override){i % 2 ? "costs.forward" : "microbatches", values[i]};
        }
        bs_config_init(&cfg);
        CHECK_MSG(bs_config_parse(&cfg, "{}", "t.json", ov, SETS, &err) == BS_OK, "%s",
                  err.message);
        CHECK(cfg.microbatches == SETS - 1 && cfg.forward.v[0] == SETS);
        bs_config_free(&cfg);
    }
    free(ov);
    free(values);

    /* A megabyte-long schedule name and key: refused, echoed only in part. */
    n = 0;
    n += (size_t)snprintf(text + n, cap - n, "{\"schedule\": \"");
    memset(text + n, 'g', 1 << 20);
    n += 1 << 20;
    snprintf(text + n, cap - n, "\"}");
    bs_error long_err = {{0}};
    CHECK(parse(text, NULL, 0, &long_err) == BS_ERR_INVALID &&
          strstr(long_err.message, "unknown schedule \"gggg") && strlen(long_err.message) < 1000);
    text[0] = '{';
    text[1] = '"';
    memset(text + 2, 'k', 1 << 20);
    snprintf(text + 2 + (1 << 20), cap - 2 - (1 << 20), "\": 1}");
    CHECK(parse(text, NULL, 0, &long_err) == BS_ERR_INVALID &&
          strstr(long_err.message, ": unknown key;"));
    free(text);
}

/* ------------------------------------------- derived times that overflow */

#define MODEL                                                                                      \
    "\"schedule\": \"1f1b\", \"stages\": 2, \"microbatches\": 4, \"model\": {\"layers\": 4, "      \
    "\"hidden\": 64, \"heads\": 4, \"sequence\": 16, \"vocabulary\": 100}, "

static void derived_times(void)
{
    const char *want = "expected a finite time of at most 1e+15 ms";
    expect("{\"network\": {\"bandwidth\": 1e-300, \"message_bytes\": 1e18}}", NULL, 0,
           BS_ERR_INVALID, "t.json: network.bandwidth: one message takes", want);
    expect("{\"network\": {\"bandwidth\": 1, \"message_bytes\": 1e15}}", NULL, 0, BS_ERR_INVALID,
           "network.bandwidth", "= 1e+18 ms");
    expect("{\"network\": {\"latency\": 1e15, \"bandwidth\": 1e18, \"message_bytes\": 1e18}}", NULL,
           0, BS_ERR_INVALID, "network.bandwidth", want);
    /* At the limit exactly, and a free network with an absurd size: fine. */
    expect_ok("{\"network\": {\"latency\": 1e15}}", NULL, 0);
    expect_ok("{\"network\": {\"bandwidth\": 0, \"message_bytes\": 1e18}}", NULL, 0);

    expect("{" MODEL "\"hardware\": {\"peak_flops\": 1e-300}}", NULL, 0, BS_ERR_INVALID,
           "t.json: hardware.peak_flops: model chunk 0 takes inf ms", want);
    expect("{" MODEL "\"hardware\": {\"peak_flops\": 1e-3, \"efficiency\": 1e-300}}", NULL, 0,
           BS_ERR_INVALID, "hardware.peak_flops", "hardware.efficiency");
    expect("{" MODEL "\"tensor_parallel\": 2, \"hardware\": {\"peak_flops\": 1e12, "
           "\"tp_bandwidth\": 1e-300}}",
           NULL, 0, BS_ERR_INVALID, "t.json: hardware.tp_bandwidth: one tensor-parallel all-reduce",
           want);
    expect("{" MODEL "\"hardware\": {\"peak_flops\": 1e12, \"bandwidth\": 1e-300}}", NULL, 0,
           BS_ERR_INVALID, "network.bandwidth", "hardware.bandwidth");
    expect_ok("{" MODEL "\"hardware\": {\"peak_flops\": 1e12, \"bandwidth\": 1e9}}", NULL, 0);

    /* A library caller filling the config by hand: checked before any run,
     * refused as bad input (not a deadlock). */
    double bad[] = {INFINITY, NAN, -1, 2e15};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bs_config cfg;
        bs_error err = {{0}};
        bs_config_init(&cfg);
        double values[4] = {1, 1, bad[i], 1};
        cfg.backward = (bs_values){4, values};
        CHECK_MSG(bs_config_check(&cfg, "lib", &err) == BS_ERR_INVALID &&
                      strstr(err.message, "lib: costs.backward[2]:"),
                  "%g: %s", bad[i], err.message);
        bs_context *ctx = NULL;
        const bs_result *res = NULL;
        CHECK(bs_context_create(&ctx) == BS_OK);
        CHECK(bs_context_run(ctx, &cfg, NULL, &res, &err) == BS_ERR_INVALID && !res);
        bs_context_free(&ctx);
        cfg.backward = (bs_values){0, NULL}; /* not the config's to free */
        bs_config_free(&cfg);
    }
}

/* ------------------------------------------- nothing silently accepted */

#define CUSTOM2 "{\"schedule\": \"custom\", \"stages\": 2, \"microbatches\": 1, \"order\": "

/* The config parses, and building its program fails with needle. */
static void expect_run_error(const char *text, const char *needle)
{
    bs_config cfg;
    bs_error err = {{0}};
    bs_context *ctx = NULL;
    const bs_result *res = NULL;
    bs_config_init(&cfg);
    CHECK(bs_context_create(&ctx) == BS_OK);
    int rc = bs_config_parse(&cfg, text, "t.json", NULL, 0, &err);
    if (rc == BS_OK)
        rc = bs_context_run(ctx, &cfg, NULL, &res, &err);
    CHECK_MSG(rc == BS_ERR_INVALID && strstr(err.message, needle), "%s\n  rc %d, message \"%s\"",
              text, rc, err.message);
    bs_context_free(&ctx);
    bs_config_free(&cfg);
}

static void order_rows(void)
{
    /* Rows of no action stay in place: device 1's row is empty, so device 1
     * misses its ops; the row after it is not moved up to device 1. */
    const char *idle[] = {"[]", "[null]", "[\"\"]", "[\" \"]", "[\"\\t\", null, \"  \"]"};
    for (size_t i = 0; i < sizeof idle / sizeof idle[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, CUSTOM2 "[[\"0F0\", \"0B0\"], %s]}", idle[i]);
        expect_run_error(text, "stage 1, micro-batch 0: no forward op on device 1");
        snprintf(text, sizeof text, CUSTOM2 "[%s, [\"1F0\", \"1B0\"]]}", idle[i]);
        expect_run_error(text, "stage 0, micro-batch 0: no forward op on device 0");
        /* Three rows for two devices: counted, never dropped to fit. */
        snprintf(text, sizeof text, CUSTOM2 "[[\"0F0\", \"0B0\"], %s, [\"1F0\", \"1B0\"]]}",
                 idle[i]);
        expect_run_error(text, "order: has 3 rows of actions; expected one per device, stages = 2");
    }
    expect_run_error(CUSTOM2 "[[]]}", "order: has 1 rows of actions; expected one per device");
    /* A device that owns no model chunk has a row of no action. */
    bs_config cfg;
    bs_error err = {{0}};
    bs_context *ctx = NULL;
    const bs_result *res = NULL;
    bs_config_init(&cfg);
    CHECK(bs_context_create(&ctx) == BS_OK);
    CHECK_MSG(bs_config_parse(&cfg,
                              CUSTOM2 "[[\"0F0\", \"1F0\", \"1B0\", \"0B0\"], []], "
                                      "\"placement\": [0, 0]}",
                              "t.json", NULL, 0, &err) == BS_OK &&
                  bs_context_run(ctx, &cfg, NULL, &res, &err) == BS_OK,
              "%s", err.message);
    CHECK(res && res->makespan == 6.0);
    bs_context_free(&ctx);
    bs_config_free(&cfg);

    /* A '#' would make the row a comment line of the text form. */
    expect(CUSTOM2 "[[\"#\", \"0F0\"], [\"1F0\"]]}", NULL, 0, BS_ERR_INVALID,
           "order[0][0]: \"#\" is not an action; an inline order has no comments", NULL);
    expect(CUSTOM2 "[[\"0F0\", \"0B0\"], [\" # device 1\"], [\"1F0\", \"1B0\"]]}", NULL, 0,
           BS_ERR_INVALID, "order[1][0]", "no comments");
    expect(CUSTOM2 "[[\"0F0\", \"0B0\"], [\"1F0\", \"#1B0\"]]}", NULL, 0, BS_ERR_INVALID,
           "order[1][1]", "no comments");
    /* Idle slots between actions stay allowed. */
    expect_ok(CUSTOM2 "[[\"0F0\", null, \"\", \" \", \"0B0\"], [\"1F0\", \"1B0\"]]}", NULL, 0);
}

static void nul_characters(void)
{
    const char *want = "holds \\u0000 (a NUL character)";
    expect("{\"schedule\": \"gpipe\\u0000junk\"}", NULL, 0, BS_ERR_INVALID,
           "t.json: config: line 1, column 20: the string value of \"schedule\"", want);
    expect("{\"stages\\u0000junk\": 2}", NULL, 0, BS_ERR_INVALID, "the key \"stages\\u0000junk\"",
           want);
    expect("{\"costs\": {\n  \"forward\\u0000\": 3}}", NULL, 0, BS_ERR_INVALID,
           "line 2, column 11: the key \"forward\\u0000\"", want);
    expect("{\"updates\": \"\\u0000\"}", NULL, 0, BS_ERR_INVALID, "value of \"updates\"", want);
    expect(CUSTOM2 "[[\"0F0\\u0000\", \"0B0\"], [\"1F0\", \"1B0\"]]}", NULL, 0, BS_ERR_INVALID,
           "value of \"order\"", want);
    expect("{\"model\": {\"recompute\": \"full\\u0000\"}}", NULL, 0, BS_ERR_INVALID,
           "value of \"recompute\"", want);
    /* An escaped backslash followed by u0000 is six ordinary characters. */
    expect("{\"schedule\": \"\\\\u0000\"}", NULL, 0, BS_ERR_INVALID, "unknown schedule", NULL);
    /* The file reader refuses it for every caller (sweep, tune and verify
     * parse their own sections); an escaped backslash stays fine. */
    char path[64], *text = NULL;
    bs_error err = {{0}};
    snprintf(path, sizeof path, "%s/nul.json", dir);
    FILE *f = fopen(path, "w");
    CHECK(f && fputs("{\"sweep\": {\"schedule\": [\"1f1b\",\n \"x\\u0000\"]}}", f) >= 0 &&
          fclose(f) == 0);
    CHECK_MSG(bs_read_text_file(path, &text, &err) == BS_ERR_INVALID && !text &&
                  strstr(err.message, "nul.json: line 2, column 4: the string value of "
                                      "\"schedule\" holds \\u0000"),
              "%s", err.message);
    f = fopen(path, "w");
    CHECK(f && fputs("{\"a\": \"\\\\u0000\"}", f) >= 0 && fclose(f) == 0);
    CHECK_MSG(bs_read_text_file(path, &text, &err) == BS_OK, "%s", err.message);
    bs_text_free(text);
    unlink(path);
    /* Through --set: the value is JSON when it parses as JSON. */
    expect_set("schedule", "\"gpipe\\u0000x\"", "--set schedule: value: line 1, column 7", want);
    expect_set("costs", "{\"forward\\u0000\": 1}", "--set costs", "the key \"forward\\u0000\"");
}

/* ------------------------------------------------------------ messages */

static void messages(void)
{
    expect("{\"microbatches\": 3e9}", NULL, 0, BS_ERR_INVALID,
           "microbatches: expected an integer from 1 to 2147483647 (2^31-1), got 3e+09", NULL);
    expect("{\"iterations\": -1}", NULL, 0, BS_ERR_INVALID, "from 1 to 2147483647", NULL);
    char key[201];
    memset(key, 'a', 200);
    key[200] = '\0';
    expect_set(key, "1",
               "--set aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...: the key path has 200 "
               "characters; key paths such as costs.forward have at most 127",
               NULL);
    key[127] = '\0';
    expect_set(key, "1", "unknown key", NULL); /* at the limit: looked up as usual */
    expect_set("", "1", "--set: expected KEY=VALUE", "got an empty key");
    /* Echoed names and values never carry control bytes to a terminal. */
    const char *escapes[] = {"{\"sche\\u001b[31mdule\": 1}", "{\"schedule\": \"x\\ny\\r\\t\"}",
                             "{\"costs\": {\"\\u007f\\u0007\": 1}}"};
    for (size_t i = 0; i < sizeof escapes / sizeof escapes[0]; i++) {
        bs_error err = {{0}};
        CHECK(parse(escapes[i], NULL, 0, &err) == BS_ERR_INVALID);
        int clean = 1;
        for (const char *c = err.message; *c; c++)
            clean &= (unsigned char)*c >= 0x20 && *c != 0x7f;
        CHECK_MSG(clean && strchr(err.message, '?'), "%s: %s", escapes[i], err.message);
    }
}

/* ------------------------------------------------------- did you mean */

static void suggestions(void)
{
    expect("{\"stagse\": 4}", NULL, 0, BS_ERR_INVALID,
           "stagse: unknown key; did you mean \"stages\"?", NULL);
    expect("{\"Microbatches\": 4}", NULL, 0, BS_ERR_INVALID, "did you mean \"microbatches\"?",
           NULL);
    expect("{\"netwrok\": {}}", NULL, 0, BS_ERR_INVALID, "did you mean \"network\"?", NULL);
    expect("{\"costs\": {\"backwrad\": 1}}", NULL, 0, BS_ERR_INVALID,
           "costs.backwrad: unknown key; did you mean \"backward\"?", NULL);
    expect("{\"memory\": {\"activation_byte\": 1}}", NULL, 0, BS_ERR_INVALID,
           "did you mean \"activation_bytes\"?", NULL);
    expect("{\"tensor_paralel\": 2}", NULL, 0, BS_ERR_INVALID, "did you mean \"tensor_parallel\"?",
           NULL);
    expect("{" MODEL "\"hardware\": {\"peak_flop\": 1e12}}", NULL, 0, BS_ERR_INVALID,
           "hardware.peak_flop: unknown key; did you mean \"peak_flops\"?", NULL);
    expect("{\"model\": {\"layer\": 4}}", NULL, 0, BS_ERR_INVALID, "did you mean \"layers\"?",
           NULL);
    expect("{\"schedule\": \"1fb1\"}", NULL, 0, BS_ERR_INVALID,
           "unknown schedule \"1fb1\"; did you mean \"1f1b\"?", NULL);
    expect("{\"schedule\": \"GPipe\"}", NULL, 0, BS_ERR_INVALID, "did you mean \"gpipe\"?", NULL);
    expect("{\"schedule\": \"zb-h3\"}", NULL, 0, BS_ERR_INVALID, "did you mean \"zb-h", NULL);
    expect_set("schedule", "interleave", "did you mean \"interleaved\"?", NULL);
    expect_set("netwrk.latency", "1", "unknown section \"netwrk\"; did you mean \"network\"?",
               NULL);
    expect_set("costs.forwad", "1", "--set costs.forwad: unknown key; did you mean \"forward\"?",
               NULL);
    expect_set("stags", "1", "did you mean \"stages\"?", NULL);
    /* Nothing close: no guess. */
    bs_error err = {{0}};
    const char *far[] = {"{\"xyz\": 1}", "{\"costs\": {\"fwd\": 1}}", "{\"schedule\": \"foo\"}",
                         "{\"q\": 1}"};
    for (size_t i = 0; i < sizeof far / sizeof far[0]; i++)
        CHECK_MSG(parse(far[i], NULL, 0, &err) == BS_ERR_INVALID &&
                      !strstr(err.message, "did you mean"),
                  "%s: %s", far[i], err.message);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    not_regular_files();
    large_inputs();
    derived_times();
    order_rows();
    nul_characters();
    messages();
    suggestions();
    rmdir(dir);
    return check_finish("inputs");
}
