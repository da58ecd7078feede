/*
 * op_format.c - an op as text for messages ("F(s3,m2)"), and the letter of
 * each op kind that every writer of op names uses. Its own file
 * because both the builder (schedule.c) and the validator (validate.c) print
 * ops, and the builder calls the validator: a shared leaf keeps the two from
 * depending on each other.
 */
#include "internal.h"

#include <stdio.h>

/* Contract in bubblesim.h. */
char bs_op_letter(int kind)
{
    static const char letter[] = {'F', 'B', 'I', 'W', 'O', 'D'};
    return kind >= 0 && (size_t)kind < sizeof letter ? letter[kind] : '?';
}

const char *bs_op_format(const bs_op *op, char *buf, size_t size)
{
    if (op->kind == BS_OP_OPTIMIZER)
        snprintf(buf, size, "OPT(iteration %u)", op->microbatch);
    else
        snprintf(buf, size, "%c(s%u,m%u)", bs_op_letter(op->kind), op->stage, op->microbatch);
    return buf;
}
