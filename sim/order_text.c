/*
 * order_text.c - PyTorch pipelining's schedule text format (torch 2.15's
 * _dump_csv / _load_csv), read and write.
 *
 * A schedule is one row per rank (device), actions separated by commas:
 * `{stage}{type}{micro-batch}` with type F (forward), B (full backward),
 * I (input gradient) or W (weight gradient); an empty field is an idle slot;
 * an overlapped pair is written `(0F7;7B3)OVERLAP_F_B`. The compute_comms
 * format adds SEND_F, RECV_F, SEND_B, RECV_B, WAIT_SEND_F, WAIT_SEND_B (with
 * a micro-batch) and UNSHARD, RESHARD, REDUCE_GRAD, WAIT_REDUCE_GRAD. They
 * parse into bs_action.comm; the custom schedule checks them against the
 * compute order, and the engine models the messages itself. A name PyTorch
 * does not know is reported as "unknown action NAME".
 *
 * Reading and writing are exact inverses on what bubblesim generates: the
 * writers emit no idle slots, so a written program read back is the same
 * op list, with or without the communication actions.
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

/* PyTorch 2.15's action names beyond F, B, I and W, longest first where
 * one is a prefix of another, indexed by BS_COMM_*. */
static const char *const comm_names[] = {
    [BS_COMM_SEND_F] = "SEND_F",           [BS_COMM_RECV_F] = "RECV_F",
    [BS_COMM_SEND_B] = "SEND_B",           [BS_COMM_RECV_B] = "RECV_B",
    [BS_COMM_WAIT_SEND_F] = "WAIT_SEND_F", [BS_COMM_WAIT_SEND_B] = "WAIT_SEND_B",
    [BS_COMM_UNSHARD] = "UNSHARD",         [BS_COMM_RESHARD] = "RESHARD",
    [BS_COMM_REDUCE_GRAD] = "REDUCE_GRAD", [BS_COMM_WAIT_REDUCE_GRAD] = "WAIT_REDUCE_GRAD",
};

const char *bs_comm_name(int comm)
{
    return comm > BS_COMM_NONE && comm <= BS_COMM_WAIT_REDUCE_GRAD ? comm_names[comm] : "?";
}

static int is_name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || c == '_';
}

/* One `{stage}{type}{mb}` compute or communication action in text[0..len).
 * The action's name is the run of capitals and underscores after the
 * stage; a name PyTorch does not know is reported as such, with the name. */
static const char *parse_single(const char *text, size_t len, bs_action *out, int *is_op, char *buf,
                                size_t size)
{
    size_t at = 0, name_len = 0;
    uint32_t stage, mb;
    *is_op = 0;
    if (!read_number(text, len, &at, UINT16_MAX, &stage))
        return "expected a stage number first, as in \"0F0\" (stage, type, micro-batch)";
    while (at + name_len < len && is_name_char(text[at + name_len]))
        name_len++;
    const char *name = text + at;
    for (int c = BS_COMM_SEND_F; c <= BS_COMM_WAIT_REDUCE_GRAD; c++) {
        if (strlen(comm_names[c]) != name_len || memcmp(name, comm_names[c], name_len) != 0)
            continue;
        at += name_len;
        out->comm = c;
        out->comm_stage = stage;
        out->comm_has_mb = read_number(text, len, &at, UINT32_MAX / 2, &mb);
        out->comm_mb = out->comm_has_mb ? mb : 0;
        if (at != len)
            return "unexpected text after a communication action";
        int needs_mb = c <= BS_COMM_WAIT_SEND_B;
        if (needs_mb && !out->comm_has_mb)
            return "expected a micro-batch number after a send, receive or wait-send action, as "
                   "in \"1RECV_F0\"";
        return NULL;
    }
    int kind = -1;
    if (name_len == 1) {
        switch (*name) {
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
        }
    }
    if (kind < 0) {
        if (name_len == 0)
            return "expected an action name after the stage: F, B, I, W, or a PyTorch 2.15 "
                   "communication action (docs/schedules.md)";
        snprintf(buf, size,
                 "unknown action %.*s; PyTorch 2.15 knows F, B, I, W, SEND_F, RECV_F, SEND_B, "
                 "RECV_B, WAIT_SEND_F, WAIT_SEND_B, UNSHARD, RESHARD, REDUCE_GRAD, "
                 "WAIT_REDUCE_GRAD",
                 (int)(name_len < 40 ? name_len : 40), name);
        return buf;
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
    /* Messages that quote the text live in a buffer that outlasts the
     * call; one reader at a time, as the library's users call it. */
    static _Thread_local char buf[256];
    if (text[0] != '(') {
        int is_op;
        return parse_single(text, len, out, &is_op, buf, sizeof buf);
    }
    const char *close = memchr(text, ')', len), *semi = memchr(text, ';', len);
    if (!close || !semi || semi > close)
        return "an overlapped pair is written \"(0F7;7B3)\" or \"(0F7;7B3)OVERLAP_F_B\"";
    size_t rest = len - (size_t)(close + 1 - text);
    if (rest != 0 &&
        !(rest == strlen("OVERLAP_F_B") && starts_with(close + 1, rest, 0, "OVERLAP_F_B")))
        return "unexpected text after an overlapped pair; expected nothing or OVERLAP_F_B";
    int first, second;
    const char *why =
        parse_single(text + 1, (size_t)(semi - text - 1), out, &first, buf, sizeof buf);
    if (!why)
        why = parse_single(semi + 1, (size_t)(close - semi - 1), out, &second, buf, sizeof buf);
    if (why)
        return why;
    if (!first || !second)
        return "an overlapped pair holds two compute actions";
    out->op[0].reserved = BS_OP_OVERLAP_NEXT;
    return NULL;
}

int bs_order_write(FILE *out, const bs_program *prog, uint32_t limit, bs_error *err)
{
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
                fprintf(out, "(%u%c%u;%u%c%u)OVERLAP_F_B", op->stage, bs_op_letter(op->kind),
                        op->microbatch, b->stage, bs_op_letter(b->kind), b->microbatch);
                i++;
            } else {
                fprintf(out, "%u%c%u", op->stage, bs_op_letter(op->kind), op->microbatch);
            }
        }
        fputc('\n', out);
    }
    if (ferror(out))
        return bs_fail(err, BS_ERR_IO, "cannot write the schedule text");
    return BS_OK;
}

/* One row being written: actions separated by commas. */
typedef struct row_writer {
    FILE *out;
    int started;
} row_writer;

static void put(row_writer *w, unsigned stage, const char *name, uint32_t mb)
{
    fprintf(w->out, "%s%u%s%u", w->started ? "," : "", stage, name, mb);
    w->started = 1;
}

static int is_backward(const bs_op *op)
{
    return op->kind == BS_OP_BACKWARD || op->kind == BS_OP_INPUT_GRAD;
}

/* The communication actions a compute op needs before it (before = 1: its
 * receives) or produces after it (its sends); only across devices. */
static void put_comms(row_writer *w, const bs_program *prog, const bs_op *op, int d, int before)
{
    unsigned s = op->stage, last = (unsigned)prog->stages - 1;
    if (op->kind == BS_OP_FORWARD) {
        if (before && s > 0 && prog->stage_device[s - 1] != d)
            put(w, s, "RECV_F", op->microbatch);
        if (!before && s < last && prog->stage_device[s + 1] != d)
            put(w, s, "SEND_F", op->microbatch);
    } else if (is_backward(op)) {
        if (before && s < last && prog->stage_device[s + 1] != d)
            put(w, s, "RECV_B", op->microbatch);
        if (!before && s > 0 && prog->stage_device[s - 1] != d)
            put(w, s, "SEND_B", op->microbatch);
    }
}

int bs_order_write_comms(FILE *out, const bs_program *prog, uint32_t limit, bs_error *err)
{
    static const char *const name[] = {"F", "B", "I", "W"};
    int forward_only = (prog->flags & BS_PROGRAM_FORWARD_ONLY) != 0;
    unsigned last = (unsigned)prog->stages - 1;
    for (int d = 0; d < prog->devices; d++) {
        size_t first = prog->device_first[d], end = prog->device_first[d + 1];
        row_writer w = {out, 0};
        for (size_t i = first; i < end; i++) {
            const bs_op *op = &prog->ops[i];
            if (op->kind == BS_OP_OPTIMIZER || op->microbatch >= limit)
                continue;
            size_t n = (op->reserved & BS_OP_OVERLAP_NEXT) && i + 1 < end ? 2 : 1;
            for (size_t k = 0; k < n; k++)
                put_comms(&w, prog, &op[k], d, 1);
            if (n == 2) {
                fprintf(out, "%s(%u%c%u;%u%c%u)OVERLAP_F_B", w.started ? "," : "", op[0].stage,
                        bs_op_letter(op[0].kind), op[0].microbatch, op[1].stage,
                        bs_op_letter(op[1].kind), op[1].microbatch);
                w.started = 1;
            } else {
                put(&w, op->stage, name[op->kind], op->microbatch);
            }
            /* The local backward proves the forward's receiver has it, so
             * the forward's send is waited for here (as PyTorch does). */
            for (size_t k = 0; k < n; k++)
                if (is_backward(&op[k]) && op[k].stage < last &&
                    prog->stage_device[op[k].stage + 1] != d)
                    put(&w, op[k].stage, "WAIT_SEND_F", op[k].microbatch);
            for (size_t k = 0; k < n; k++)
                put_comms(&w, prog, &op[k], d, 0);
            i += n - 1;
        }
        /* The other sends are waited for at the end of the row. */
        for (size_t i = first; i < end; i++) {
            const bs_op *op = &prog->ops[i];
            unsigned s = op->stage;
            if (op->kind == BS_OP_OPTIMIZER || op->microbatch >= limit)
                continue;
            if (forward_only && op->kind == BS_OP_FORWARD && s < last &&
                prog->stage_device[s + 1] != d)
                put(&w, s, "WAIT_SEND_F", op->microbatch);
            if (is_backward(op) && s > 0 && prog->stage_device[s - 1] != d)
                put(&w, s, "WAIT_SEND_B", op->microbatch);
        }
        fputc('\n', out);
    }
    if (ferror(out))
        return bs_fail(err, BS_ERR_IO, "cannot write the schedule text");
    return BS_OK;
}
