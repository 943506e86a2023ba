/*
 * delivery.c - what a delivery owns: one message reference and, with more
 * than one subscription identifier, their array.
 */
#include "broker/delivery.h"

#include <stdlib.h>
#include <string.h>

#include "util/msg.h"

void delivery_clear(struct delivery *d)
{
	msg_unref(d->msg);
	if (d->n_sub_ids > 1)
		free(d->sub_ids);
	memset(d, 0, sizeof(*d));
}
