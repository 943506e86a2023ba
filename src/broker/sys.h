/*
 * sys.h - the $SYS topics (sys.c), published by worker 0.
 */
#ifndef TERN_BROKER_SYS_H
#define TERN_BROKER_SYS_H

struct worker;

/* Worker 0, every tick: publishes the $SYS topics when sys_interval has
 * passed (mosquitto's topics, retained). */
void sys_tick(struct worker *w);

/* Frees worker 0's $SYS state. */
void sys_free(struct worker *w);

#endif
