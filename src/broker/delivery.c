/*
 * delivery.c - what a delivery owns: one message reference, with more
 * than one subscription identifier their array, and the acknowledgement
 * handle of a message from a cluster's durable queue.
 */
#include "broker/delivery.h"

#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "util/msg.h"

void delivery_clear(struct delivery *d)
{
	if (d->ack)
		cluster_ack_done(d->ack);
	msg_unref(d->msg);
	if (d->n_sub_ids > 1)
		free(d->sub_ids);
	memset(d, 0, sizeof(*d));
}

void delivery_release(struct delivery *d)
{
	if (d->ack)
		cluster_ack_drop(d->ack);
	d->ack = NULL;
	delivery_clear(d);
}
