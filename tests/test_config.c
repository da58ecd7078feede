/*
 * test_config.c - the config contract: defaults, every kind of error with
 * its key path and expectation, and --set overrides.
 */
#include "bubblesim.h"
#include "check.h"

#include <string.h>

static void expect_error(const char *text, const bs_override *ov, size_t n, int code,
                         const char *needle)
{
    bs_config cfg;
    bs_error err = {{0}};
    bs_config_init(&cfg);
    int rc = bs_config_parse(&cfg, text, "t.json", ov, n, &err);
    CHECK_MSG(rc == code && strstr(err.message, needle) && strncmp(err.message, "t.json", 6) == 0,
              "config %s\n  rc %d (want %d), message \"%s\", want it to contain \"%s\"", text, rc,
              code, err.message, needle);
    /* A failed parse leaves the defaults. */
    CHECK(cfg.stages == 4 && strcmp(cfg.schedule, "1f1b") == 0);
    bs_config_free(&cfg);
}

static void expect_set_error(const char *path, const char *value, const char *needle)
{
    bs_override ov = {path, value};
    bs_config cfg;
    bs_error err = {{0}};
    bs_config_init(&cfg);
    int rc = bs_config_parse(&cfg, "{}", "t.json", &ov, 1, &err);
    CHECK_MSG(rc == BS_ERR_INVALID && strstr(err.message, needle),
              "--set %s=%s: rc %d, message \"%s\", want \"%s\"", path, value, rc, err.message,
              needle);
    bs_config_free(&cfg);
}

int main(void)
{
    bs_config cfg;
    bs_error err = {{0}};
    bs_config_init(&cfg);

    /* Defaults: the documented contract. */
    CHECK(bs_config_parse(&cfg, "{}", "t.json", NULL, 0, &err) == BS_OK);
    CHECK(strcmp(cfg.schedule, "1f1b") == 0 && cfg.stages == 4 && cfg.microbatches == 8 &&
          cfg.virtual_stages == 1 && cfg.iterations == 1 && cfg.group_size == 0);
    CHECK(cfg.forward.count == 1 && cfg.forward.v[0] == 1 && cfg.backward.v[0] == 2 &&
          cfg.weight.v[0] == 0 && cfg.optimizer == 0);
    CHECK(cfg.activation_bytes == 0 && cfg.weight_bytes == 0 && cfg.latency == 0 &&
          cfg.bandwidth == 0 && cfg.message_bytes == 0);

    /* The full contract parses. */
    const char *full = "{\"schedule\": \"interleaved\", \"stages\": 4, \"microbatches\": 8,"
                       " \"virtual_stages\": 2, \"iterations\": 3, \"group_size\": 4,"
                       " \"costs\": {\"forward\": [1, 2, 3, 4], \"backward\": 2.5,"
                       " \"weight\": 0.5, \"optimizer\": 1},"
                       " \"memory\": {\"activation_bytes\": 1e9, \"weight_bytes\": 2e9},"
                       " \"network\": {\"latency\": 0.01, \"bandwidth\": 5e10,"
                       " \"message_bytes\": 1048576}}";
    CHECK_MSG(bs_config_parse(&cfg, full, "t.json", NULL, 0, &err) == BS_OK, "%s", err.message);
    CHECK(strcmp(cfg.schedule, "interleaved") == 0 && cfg.virtual_stages == 2 &&
          cfg.iterations == 3 && cfg.group_size == 4);
    CHECK(cfg.forward.count == 4 && cfg.forward.v[3] == 4 && cfg.backward.v[0] == 2.5);
    CHECK(cfg.activation_bytes == 1e9 && cfg.bandwidth == 5e10 && cfg.message_bytes == 1048576);

    /* Overrides by dotted path; JSON values, or strings when not JSON. */
    bs_override ov[] = {{"schedule", "gpipe"},
                        {"stages", "8"},
                        {"costs.forward", "[1,1,1,1,1,1,1,2]"},
                        {"network.latency", "0.25"}};
    CHECK_MSG(bs_config_parse(&cfg, full, "t.json", ov, 4, &err) == BS_OK, "%s", err.message);
    CHECK(strcmp(cfg.schedule, "gpipe") == 0 && cfg.stages == 8 && cfg.forward.count == 8 &&
          cfg.forward.v[7] == 2 && cfg.latency == 0.25);
    bs_config_free(&cfg);

    /* Errors: file name, key path, what was expected. */
    expect_error("{\n  \"stages\": 4,\n  oops\n}", NULL, 0, BS_ERR_INVALID,
                 "syntax error at line 3, column");
    expect_error("{\"stages\": 4", NULL, 0, BS_ERR_INVALID, "JSON syntax error at line 1");
    expect_error("[1, 2]", NULL, 0, BS_ERR_INVALID, "expected a JSON object");
    expect_error("{\"stagse\": 4}", NULL, 0, BS_ERR_INVALID,
                 "stagse: unknown key; did you mean \"stages\"? expected");
    expect_error("{\"costs\": {\"fwd\": 1}}", NULL, 0, BS_ERR_INVALID,
                 "costs.fwd: unknown key; expected one of forward, backward, weight, optimizer");
    expect_error("{\"stages\": \"4\"}", NULL, 0, BS_ERR_INVALID,
                 "stages: expected an integer from 1 to 4096, got a string");
    expect_error("{\"stages\": 2.5}", NULL, 0, BS_ERR_INVALID, "stages: expected an integer");
    expect_error("{\"stages\": 0}", NULL, 0, BS_ERR_INVALID, "stages: expected an integer from 1");
    expect_error("{\"stages\": 5000}", NULL, 0, BS_ERR_INVALID, "got 5000");
    expect_error("{\"microbatches\": -1}", NULL, 0, BS_ERR_INVALID, "microbatches: expected");
    expect_error("{\"costs\": {\"forward\": 0}}", NULL, 0, BS_ERR_INVALID,
                 "costs.forward: expected a finite number > 0, got 0");
    expect_error("{\"costs\": {\"backward\": -2}}", NULL, 0, BS_ERR_INVALID,
                 "costs.backward: expected a finite number >= 0, got -2");
    expect_error("{\"costs\": {\"forward\": 1e999}}", NULL, 0, BS_ERR_INVALID,
                 "costs.forward: expected a finite number > 0, got inf");
    expect_error("{\"costs\": {\"forward\": [1, -1, 1, 1]}}", NULL, 0, BS_ERR_INVALID,
                 "costs.forward[1]: expected a finite number > 0, got -1");
    expect_error("{\"costs\": {\"forward\": []}}", NULL, 0, BS_ERR_INVALID, "an empty array");
    expect_error("{\"costs\": {\"forward\": [1, 2, 3]}}", NULL, 0, BS_ERR_INVALID,
                 "costs.forward: has 3 values; expected 1, P=4");
    expect_error("{\"costs\": 3}", NULL, 0, BS_ERR_INVALID,
                 "costs: expected an object, got a number");
    expect_error("{\"network\": {\"bandwidth\": null}}", NULL, 0, BS_ERR_INVALID,
                 "network.bandwidth: expected a finite number >= 0, got null");
    expect_error("{\"schedule\": \"zigzag\"}", NULL, 0, BS_ERR_INVALID,
                 "schedule: unknown schedule \"zigzag\"; expected one of gpipe, 1f1b");
    expect_error("{\"schedule\": 3}", NULL, 0, BS_ERR_INVALID,
                 "schedule: expected a schedule name");
    expect_error("{\"stages\": 4, \"stages\": 8}", NULL, 0, BS_ERR_INVALID,
                 "stages: key appears more than once");
    /* Sizes too large to simulate on this machine. */
    expect_error("{\"stages\": 4096, \"microbatches\": 100000}", NULL, 0, BS_ERR_LIMIT,
                 "ops exceeds the limit");
    expect_error("{\"stages\": 4096, \"virtual_stages\": 32}", NULL, 0, BS_ERR_LIMIT,
                 "virtual_stages: P*V = 131072 model chunks exceeds the limit");
    expect_error("{\"microbatches\": 2000000000, \"iterations\": 2000000000}", NULL, 0,
                 BS_ERR_LIMIT, "iterations: M*iterations");

    /* Override errors name the override. */
    expect_set_error("costs.fwd", "1", "--set costs.fwd: unknown key");
    expect_set_error("cost.forward", "1", "--set cost.forward: unknown section");
    expect_set_error("stages", "four", "stages: expected an integer from 1 to 4096, got a string");
    expect_set_error("", "1", "--set: expected KEY=VALUE");
    expect_set_error("stages", "4x", "stages: expected an integer from 1 to 4096, got a string");
    expect_set_error("costs", "{\"fwd\": 2}", "costs.fwd: unknown key");
    {
        bs_override whole[] = {{"costs", "{\"forward\": 2}"}, {"schedule", "1f1b"}};
        bs_config c;
        bs_config_init(&c);
        CHECK_MSG(bs_config_parse(&c, "{\"schedule\": \"gpipe\"}", "t.json", whole, 2, &err) ==
                      BS_OK,
                  "%s", err.message);
        CHECK(c.forward.v[0] == 2 && strcmp(c.schedule, "1f1b") == 0);
        bs_config_free(&c);
    }
    /* The overridden text, for tools that read other sections: values in,
     * other keys kept, the same checks as bs_config_parse. */
    {
        bs_override ov[] = {{"costs.forward", "2"}, {"schedule", "gpipe"}, {"model.layers", "8"}};
        char *out = NULL;
        CHECK_MSG(bs_config_apply_overrides("{\"tune\": {\"devices\": 8}, \"schedule\": \"1f1b\"}",
                                            "t.json", ov, 3, &out, &err) == BS_OK,
                  "%s", err.message);
        CHECK_MSG(out && strcmp(out, "{\"tune\":{\"devices\":8},\"schedule\":\"gpipe\","
                                     "\"costs\":{\"forward\":2},\"model\":{\"layers\":8}}") == 0,
                  "got %s", out ? out : "(null)");
        bs_text_free(out);
        bs_override bad = {"costs.fwd", "1"};
        out = NULL;
        CHECK(bs_config_apply_overrides("{}", "t.json", &bad, 1, &out, &err) == BS_ERR_INVALID &&
              out == NULL && strstr(err.message, "--set costs.fwd: unknown key"));
        CHECK(bs_config_apply_overrides("[1]", "t.json", NULL, 0, &out, &err) == BS_ERR_INVALID &&
              out == NULL && strstr(err.message, "t.json: expected a JSON object"));
    }
    return check_finish("config");
}
