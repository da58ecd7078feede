/*
 * order_text.c - PyTorch pipelining's schedule text format, read and write.
 *
 * A schedule is one row per rank (device), actions separated by commas:
 * `{stage}{type}{micro-batch}` with type F (forward), B (full backward),
 * I (input gradient) or W (weight gradient); an empty field is an idle slot;
 * an overlapped pair is written `(0F7;7B3)OVERLAP_F_B`. PyTorch's comms
 * lowering adds SEND_F/RECV_F/SEND_B/RECV_B actions, and its runtime adds
 * UNSHARD/RESHARD/REDUCE_GRAD and the waits WAIT_SEND_F/WAIT_SEND_B/
 * WAIT_REDUCE_GRAD (PyTorch 2.15's compute_comms dumps); the engine
 * models communication itself, so those parse as no-ops. Anything else
 * is an error that says what was expected.
 *
 * Reading and writing are exact inverses on what bubblesim generates: the
 * writer emits no idle slots and no comms, so a written program read back
 * is the same op list.
 */
#include "internal.h"

#include <string.h>

/* Reads a decimal number of at most `max` from text[*at]. */
static int read_number(const char *text, size_t len, size_t *at, uint32_t max, uint32_t *out)
{
    size_t i = *at;
    uint64_t v = 0;
    if (i >= len || text[i] < '0' || text[i] > '9')
        return 0;
    while (i < len && text[i] >= '0' && text[i] <= '9') {
        v = v * 10 + (uint64_t)(text[i] - '0');
        if (v > max)
            return 0;
        i++;
    }
    *at = i;
    *out = (uint32_t)v;
    return 1;
}

static int starts_with(const char *text, size_t len, size_t at, const char *word)
{
    size_t n = strlen(word);
    return at + n <= len && memcmp(text + at, word, n) == 0;
}

/* One `{stage}{type}{mb}` compute action or a no-op, in text[0..len). */
static const char *parse_single(const char *text, size_t len, bs_action *out, int *is_op)
{
    /* The WAIT_* actions come first: they start with W, and a wait is not
     * a weight-gradient op. */
    static const char *const no_ops[] = {
        "WAIT_SEND_F", "WAIT_SEND_B", "WAIT_REDUCE_GRAD", "SEND_F",  "RECV_F",
        "SEND_B",      "RECV_B",      "UNSHARD",          "RESHARD", "REDUCE_GRAD"};
    size_t at = 0;
    uint32_t stage, mb;
    *is_op = 0;
    if (!read_number(text, len, &at, UINT16_MAX, &stage))
        return "expected a stage number first, as in \"0F0\" (stage, type, micro-batch)";
    for (size_t k = 0; k < sizeof no_ops / sizeof no_ops[0]; k++) {
        if (starts_with(text, len, at, no_ops[k])) {
            at += strlen(no_ops[k]);
            read_number(text, len, &at, UINT32_MAX, &mb);
            return at == len ? NULL : "unexpected text after a communication action";
        }
    }
    int kind;
    switch (at < len ? text[at] : '\0') {
    case 'F':
        kind = BS_OP_FORWARD;
        break;
    case 'B':
        kind = BS_OP_BACKWARD;
        break;
    case 'I':
        kind = BS_OP_INPUT_GRAD;
        break;
    case 'W':
        kind = BS_OP_WEIGHT_GRAD;
        break;
    default:
        return "unknown action type; expected F (forward), B (backward), I (input gradient) or "
               "W (weight gradient) after the stage";
    }
    at++;
    if (!read_number(text, len, &at, UINT32_MAX / 2, &mb))
        return "expected a micro-batch number after the type, as in \"0F0\"";
    if (at != len)
        return "unexpected text after the micro-batch number";
    bs_op *op = &out->op[out->count++];
    *op = (bs_op){mb, (uint16_t)stage, (uint8_t)kind, 0};
    *is_op = 1;
    return NULL;
}

const char *bs_action_parse(const char *text, size_t len, bs_action *out)
{
    memset(out, 0, sizeof *out);
    while (len > 0 && (text[0] == ' ' || text[0] == '\t')) {
        text++;
        len--;
    }
    while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t' || text[len - 1] == '\r'))
        len--;
    if (len >= 2 && text[0] == '"' && text[len - 1] == '"') {
        text++;
        len -= 2;
    }
    if (len == 0)
        return NULL; /* idle slot */
    if (text[0] != '(') {
        int is_op;
        return parse_single(text, len, out, &is_op);
    }
    const char *close = memchr(text, ')', len), *semi = memchr(text, ';', len);
    if (!close || !semi || semi > close)
        return "an overlapped pair is written \"(0F7;7B3)\" or \"(0F7;7B3)OVERLAP_F_B\"";
    size_t rest = len - (size_t)(close + 1 - text);
    if (rest != 0 &&
        !(rest == strlen("OVERLAP_F_B") && starts_with(close + 1, rest, 0, "OVERLAP_F_B")))
        return "unexpected text after an overlapped pair; expected nothing or OVERLAP_F_B";
    int first, second;
    const char *why = parse_single(text + 1, (size_t)(semi - text - 1), out, &first);
    if (!why)
        why = parse_single(semi + 1, (size_t)(close - semi - 1), out, &second);
    if (why)
        return why;
    if (!first || !second)
        return "an overlapped pair holds two compute actions";
    out->op[0].reserved = BS_OP_OVERLAP_NEXT;
    return NULL;
}

int bs_order_write(FILE *out, const bs_program *prog, uint32_t limit, bs_error *err)
{
    static const char letter[] = {'F', 'B', 'I', 'W'};
    /* PyTorch's text has no decode step and no loop back to stage 0. */
    if (prog->flags & BS_PROGRAM_DECODE_LOOP)
        return bs_fail(err, BS_ERR_INVALID,
                       "schedule: a decode program has no PyTorch pipelining text (its format has "
                       "no decode step); export a forward or training schedule");
    for (int d = 0; d < prog->devices; d++) {
        int first = 1;
        for (size_t i = prog->device_first[d]; i < prog->device_first[d + 1]; i++) {
            const bs_op *op = &prog->ops[i];
            if (op->kind == BS_OP_OPTIMIZER || op->microbatch >= limit)
                continue;
            fputs(first ? "" : ",", out);
            first = 0;
            if ((op->reserved & BS_OP_OVERLAP_NEXT) && i + 1 < prog->device_first[d + 1]) {
                const bs_op *b = op + 1;
                fprintf(out, "(%u%c%u;%u%c%u)OVERLAP_F_B", op->stage, letter[op->kind],
                        op->microbatch, b->stage, letter[b->kind], b->microbatch);
                i++;
            } else {
                fprintf(out, "%u%c%u", op->stage, letter[op->kind], op->microbatch);
            }
        }
        fputc('\n', out);
    }
    if (ferror(out))
        return bs_fail(err, BS_ERR_IO, "cannot write the schedule text");
    return BS_OK;
}
