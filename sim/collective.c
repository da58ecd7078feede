/*
 * collective.c - time of the collectives data and tensor parallelism use,
 * on a group laid out over nodes (docs/model.md, "Data parallelism").
 *
 * A ring over n devices moves (n-1)/n of the buffer through each link per
 * phase and takes n-1 latency steps per phase (Patarasuk and Yuan 2009;
 * Thakur et al. 2005): a reduce-scatter or an all-gather is one phase, an
 * all-reduce two. A group whose members sit on several nodes, per_node of
 * them on each, is reduced hierarchically (as NCCL's tree/ring hybrids and
 * Horovod's hierarchical all-reduce do): a reduce-scatter inside each node
 * over the fast link, the collective of the 1/per_node shard across the
 * nodes over the slow link, then an all-gather inside each node.
 */
#include "internal.h"

/* One ring phase: (n-1)/n * bytes over the link and n-1 latency steps. */
static double ring_phase_ms(double bytes, int n, double bandwidth, double latency_ms)
{
    if (n <= 1)
        return 0;
    double t = (n - 1) * latency_ms;
    if (bandwidth > 0)
        t += (double)(n - 1) / n * bytes / bandwidth * 1000.0;
    return t;
}

double bs_collective_ms(int kind, double bytes, const bs_group *g)
{
    int n = g->size, per_node = g->per_node;
    if (n <= 1 || !(bytes >= 0))
        return 0;
    if (per_node <= 0 || per_node > n)
        per_node = n;
    int phases = kind == BS_COLLECTIVE_ALL_REDUCE ? 2 : 1;
    if (per_node == n)
        return phases * ring_phase_ms(bytes, n, g->intra_bandwidth, g->intra_latency);
    int nodes = n / per_node;
    if (per_node == 1 || nodes * per_node != n)
        /* Every member on its own node, or an uneven spread: a flat ring
         * whose slowest links are the inter-node ones. */
        return phases * ring_phase_ms(bytes, n, g->inter_bandwidth, g->inter_latency);
    /* Hierarchical: inside the node the whole buffer, across nodes the
     * node's 1/per_node shard. */
    double inside = ring_phase_ms(bytes, per_node, g->intra_bandwidth, g->intra_latency);
    double across = ring_phase_ms(bytes / per_node, nodes, g->inter_bandwidth, g->inter_latency);
    return phases * (inside + across);
}
