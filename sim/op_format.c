/*
 * op_format.c - an op as text for messages ("F(s3,m2)"). Its own file
 * because both the builder (schedule.c) and the validator (validate.c) print
 * ops, and the builder calls the validator: a shared leaf keeps the two from
 * depending on each other.
 */
#include "internal.h"

#include <stdio.h>

const char *bs_op_format(const bs_op *op, char *buf, size_t size)
{
    static const char letter[] = {'F', 'B', 'I', 'W', 'O', 'D'};
    if (op->kind == BS_OP_OPTIMIZER)
        snprintf(buf, size, "OPT(iteration %u)", op->microbatch);
    else
        snprintf(buf, size, "%c(s%u,m%u)", op->kind < sizeof letter ? letter[op->kind] : '?',
                 op->stage, op->microbatch);
    return buf;
}
