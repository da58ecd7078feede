/*
 * sweep_result.c - how a sweep's points map to the values of its axes,
 * shared by the sweep itself (sweep.c) and its charts (sweep_plot.c), so
 * that neither depends on the other.
 */
#include "sweep.h"

size_t sweep_value_index(const sweep_result *s, size_t point, size_t axis)
{
    /* The stride of an axis is the product of the dimensions after it; a
     * zipped axis shares its dimension (and so its index) with the axis
     * before it, and zipped axes follow their leader directly, so every
     * axis of a group gets the leader's stride. */
    size_t stride = 1;
    for (size_t k = s->n_axes; k-- > axis + 1;)
        if (!s->axes[k].zipped)
            stride *= s->axes[k].count;
    return point / stride % s->axes[axis].count;
}

size_t sweep_axis_leader(const sweep_result *s, size_t axis)
{
    while (axis > 0 && s->axes[axis].zipped)
        axis--;
    return axis;
}
